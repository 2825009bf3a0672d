#include <gtest/gtest.h>

#include "core/error.h"
#include "core/hash.h"
#include "core/known_files.h"
#include "core/tensor_data.h"
#include "tests/support/temp_dir.h"

namespace dmeval {
namespace {

TEST(Hash, StandardTestVectors) {
  // FIPS 180-2 / RFC 1321 test vectors.
  EXPECT_EQ(sha256_hex("abc", 3), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  test::TempDir dir;
  EXPECT_EQ(sha256_file(dir.write("e", "")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(md5_file(dir.write("m", "abc")), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_THROW(sha256_file(dir.file("missing")), Error);
}

TEST(KnownFiles, IdentifiesByDigest) {
  const KnownFile* f =
      identify_known_file("6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2", "");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->name, "pt_inception-2015-12-05-6726825d.pth");
  EXPECT_EQ(identify_known_file("00", "11"), nullptr);
}

TEST(TensorData, GatherStridedMatchesIndexFormula) {
  std::vector<float> storage(60);
  for (int i = 0; i < 60; ++i) storage[i] = static_cast<float>(i);
  std::vector<int64_t> sizes = {3, 4, 2}, strides = {1, 6, 24};
  auto out = gather_strided(reinterpret_cast<uint8_t*>(storage.data()), 60, 4, 5, sizes, strides);
  const float* o = reinterpret_cast<const float*>(out.data());
  int k = 0;
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 4; ++b)
      for (int c = 0; c < 2; ++c) EXPECT_EQ(o[k++], 5 + a * 1 + b * 6 + c * 24);
  EXPECT_THROW(gather_strided(reinterpret_cast<uint8_t*>(storage.data()), 60, 4, 20, sizes, strides), Error);
}

}  // namespace
}  // namespace dmeval
