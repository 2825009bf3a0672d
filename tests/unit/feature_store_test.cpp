// Feature storage: the memory and the spilled (memory-mapped .npy) modes hold the same rows, a kept
// file is a valid .npy, a temporary one disappears once mapped, and errors name the file.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "core/error.h"
#include "core/npy.h"
#include "core/torch_bridge.h"
#include "metrics/feature_store.h"
#include "tests/support/temp_dir.h"

namespace dmeval {
namespace {

using test::TempDir;

TEST(FeatureStore, SpilledEqualsInMemoryAndIsAValidNpy) {
  TempDir d;
  torch::manual_seed(0);
  FeatureStore mem(5), kept(5, d.file("kept.npy"), true), temp(5, d.file("temp.npy"), false);
  for (int b = 0; b < 4; ++b) {
    torch::Tensor rows = torch::randn({3 + b, 5}, torch::kFloat64);
    mem.append(rows);
    kept.append(rows);
    temp.append(rows);
  }
  EXPECT_EQ(kept.size(), 18);
  torch::Tensor a = mem.rows(), b = kept.rows(), c = temp.rows();
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_TRUE(torch::equal(a, c));
  EXPECT_EQ(b.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(to_torch(read_npy_file(d.file("kept.npy"))), a));
  EXPECT_FALSE(std::filesystem::exists(d.file("temp.npy")));
  // The mapping is private: writing to it does not change the file.
  b.mul_(2);
  EXPECT_TRUE(torch::equal(to_torch(read_npy_file(d.file("kept.npy"))), a));
  EXPECT_THROW(kept.append(torch::zeros({1, 5})), Error);
}

TEST(FeatureStore, EmptyAndErrors) {
  TempDir d;
  FeatureStore e(7, d.file("e.npy"), true);
  EXPECT_EQ(e.rows().size(0), 0);
  EXPECT_EQ(e.rows().size(1), 7);
  try {
    FeatureStore bad(3, d.file("missing/dir/x.npy"), true);
    FAIL() << "expected an error";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("missing/dir/x.npy"), std::string::npos) << err.what();
  }
  FeatureStore m(3);
  EXPECT_THROW(m.append(torch::zeros({2, 4})), Error);
}

}  // namespace
}  // namespace dmeval
