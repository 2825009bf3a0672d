// Golden files of the Inception area that the file-format layer must read exactly: the random-
// weight Inception checkpoint (legacy torch.save, TF-ordered strided views), the truncated header
// of the real weight file, the .npz statistics/feature files and the PNG images. Every expected
// value is read from inception/MANIFEST.md, images/images.json or the files themselves.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <map>
#include <regex>

#include "core/checkpoint.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/image.h"
#include "core/npy.h"
#include "core/torch_bridge.h"
#include "tests/support/golden.h"

namespace dmeval {
namespace {

using namespace dmeval::test;

std::string manifest() {
  return read_text(golden_path("inception/MANIFEST.md"));
}

TEST(GoldenInceptionWeights, RandomWeightFileMatchesManifest) {
  DMEVAL_REQUIRE_GOLDEN();
  const std::string section = markdown_section(manifest(), "inception-random.pth");
  ASSERT_FALSE(section.empty()) << "MANIFEST has no inception-random.pth section";
  const std::string path = golden_path("inception/inception-random.pth");
  auto sha = regex_find(section, "SHA-256 `([0-9a-f]{64})`");
  auto size = regex_find(section, "size (\\d+) bytes");
  auto entries = regex_find(section, "\\(([\\d,]+) entries");
  auto numbers = regex_find(section, "entries, ([\\d,]+) numbers");
  auto nbt_count_text = regex_find(section, "(\\d+) int64 `num_batches_tracked` scalars = (\\d+)", 1);
  auto nbt_value_text = regex_find(section, "(\\d+) int64 `num_batches_tracked` scalars = (\\d+)", 2);
  ASSERT_TRUE(sha && size && entries && numbers && nbt_count_text && nbt_value_text)
      << "MANIFEST layout changed";

  EXPECT_EQ(sha256_file(path), *sha);
  Checkpoint ck = Checkpoint::open(path);
  EXPECT_EQ(std::to_string(FileSource(path).size()), *size);
  EXPECT_EQ(ck.format(), CheckpointFormat::kTorchLegacy);
  auto tensors = ck.tensors();
  EXPECT_EQ(static_cast<long long>(tensors.size()), parse_grouped_int(*entries));
  long long values = 0;
  int nbt_count = 0;
  for (const auto& e : tensors) {
    TensorData d = ck.read(e.value);
    values += d.numel();
    if (e.path.find("num_batches_tracked") != std::string::npos) {
      ++nbt_count;
      ASSERT_EQ(d.dtype, DType::kInt64);
      EXPECT_EQ(d.data<int64_t>()[0], std::stoll(*nbt_value_text)) << e.path;
    }
  }
  EXPECT_EQ(values, parse_grouped_int(*numbers));
  EXPECT_EQ(nbt_count, std::stoi(*nbt_count_text));
}

TEST(GoldenInceptionWeights, StridedViewsAgreeWithLibtorch) {
  // Reading honours storage offsets and the non-contiguous strides of the TF-ordered storages:
  // compare every tensor with libtorch's own as_strided over the same raw storage.
  DMEVAL_REQUIRE_GOLDEN();
  Checkpoint ck = Checkpoint::open(golden_path("inception/inception-random.pth"));
  const PickleDoc& doc = ck.doc();
  int non_contiguous = 0;
  for (const auto& e : ck.tensors()) {
    const TensorRef& t = doc.tensor(doc.at(e.value));
    const StorageRef& s = doc.storages[t.storage];
    torch::Tensor got = to_torch(ck.read(e.value));
    torch::Tensor storage = to_torch(ck.read_storage(t.storage));
    ASSERT_EQ(storage.numel(), s.numel);
    torch::Tensor view = storage.as_strided(t.sizes, t.strides, t.offset);
    torch::Tensor expect = view.contiguous();
    ASSERT_TRUE(torch::equal(got, expect)) << e.path;
    if (!view.is_contiguous()) ++non_contiguous;
  }
  EXPECT_GT(non_contiguous, 0) << "expected TF-ordered (non-contiguous) views in the Inception file";
}

TEST(GoldenInceptionTruncatedHeader, ListsEveryEntryAndReportsTruncation) {
  DMEVAL_REQUIRE_GOLDEN();
  // The real file's first bytes: same structure as inception-random.pth (per the manifest).
  Checkpoint header = Checkpoint::open(golden_path("pt_inception-2015-12-05-truncated-header.pth"));
  Checkpoint full = Checkpoint::open(golden_path("inception/inception-random.pth"));
  auto entries = regex_find(markdown_section(manifest(), "inception-random.pth"), "\\(([\\d,]+) entries");
  ASSERT_TRUE(entries);
  auto h = header.tensors();
  auto f = full.tensors();
  ASSERT_EQ(static_cast<long long>(h.size()), parse_grouped_int(*entries));
  ASSERT_EQ(h.size(), f.size());
  int truncated = 0;
  const uint64_t file_size = FileSource(header.path()).size();
  for (size_t i = 0; i < h.size(); ++i) {
    EXPECT_EQ(h[i].path, f[i].path);
    EXPECT_EQ(header.shape(h[i].value), full.shape(f[i].value)) << h[i].path;
    EXPECT_EQ(header.dtype(h[i].value), full.dtype(f[i].value)) << h[i].path;
    const TensorRef& th = header.doc().tensor(header.doc().at(h[i].value));
    const TensorRef& tf = full.doc().tensor(full.doc().at(f[i].value));
    EXPECT_EQ(th.strides, tf.strides) << h[i].path;
    EXPECT_EQ(th.offset, tf.offset) << h[i].path;
    if (header.storage_problem(th.storage).empty()) {
      EXPECT_NO_THROW(header.read(h[i].value)) << h[i].path;
      continue;
    }
    ++truncated;
    try {
      header.read(h[i].value);
      ADD_FAILURE() << h[i].path << " has missing data but read() succeeded";
    } catch (const Error& e) {
      std::string m = e.what();
      EXPECT_NE(m.find("truncated"), std::string::npos) << m;
      EXPECT_NE(m.find(std::to_string(file_size)), std::string::npos)
          << "must state the bytes present: " << m;
      EXPECT_NE(m.find("bytes"), std::string::npos) << m;
    }
  }
  EXPECT_GT(truncated, 0);
  EXPECT_LT(truncated, static_cast<int>(h.size()));
}

TEST(GoldenInceptionArrays, NpzFilesHaveTheManifestsArrays) {
  DMEVAL_REQUIRE_GOLDEN();
  const std::string md = manifest();
  // "### <file>.npz" sections with "* arrays: `name` dtype [dims]; ..." lines.
  std::regex section_re("### ([a-z0-9_]+\\.npz)");
  std::regex array_re("`([a-z0-9_]+)` (float32|float64|int64|uint8) \\[([0-9, ]+)\\]");
  int files = 0, arrays = 0;
  for (auto it = std::sregex_iterator(md.begin(), md.end(), section_re); it != std::sregex_iterator(); ++it) {
    std::string file = (*it)[1];
    std::string sec = markdown_section(md, "### " + file);
    auto line = regex_find(sec, "\\* arrays: ([^\\n]+)", 1);
    if (!line) continue;
    NpzReader z = NpzReader::open(golden_path("inception/" + file));
    ++files;
    for (auto a = std::sregex_iterator(line->begin(), line->end(), array_re); a != std::sregex_iterator();
         ++a) {
      TensorData t = z.read((*a)[1]);
      EXPECT_STREQ(dtype_name(t.dtype), (*a)[2].str().c_str()) << file << ":" << (*a)[1];
      EXPECT_EQ(t.shape, parse_dims((*a)[3])) << file << ":" << (*a)[1];
      ++arrays;
    }
  }
  EXPECT_GE(files, 4);
  EXPECT_GE(arrays, 10);
}

TEST(GoldenInceptionArrays, CompressedStatsReadExactly) {
  // stats2048_{a,b}.npz are np.savez_compressed (deflate); their traces are stated in the manifest
  // and every value is a multiple of 2^-16, so the sums are exact in float64.
  DMEVAL_REQUIRE_GOLDEN();
  const std::string sec = markdown_section(manifest(), "stats2048_a.npz");
  for (const char* which : {"a", "b"}) {
    auto tr = regex_find(sec, std::string("tr\\(sigma_") + which + "\\) = ([0-9.]+)");
    ASSERT_TRUE(tr) << "manifest states no trace for " << which;
    NpzReader z = NpzReader::open(golden_path(std::string("inception/stats2048_") + which + ".npz"));
    TensorData sigma = z.read("sigma");
    TensorData mu = z.read("mu");
    ASSERT_EQ(sigma.dtype, DType::kFloat64);
    ASSERT_EQ(sigma.shape.size(), 2u);
    ASSERT_EQ(mu.shape[0], sigma.shape[0]);
    double trace = 0;
    for (int64_t i = 0; i < sigma.shape[0]; ++i) trace += sigma.data<double>()[i * sigma.shape[1] + i];
    EXPECT_DOUBLE_EQ(trace, std::stod(*tr)) << which;
  }
  auto dmu = regex_find(sec, "mu_a − mu_b‖² = ([0-9.]+)");
  ASSERT_TRUE(dmu);
  TensorData a = NpzReader::open(golden_path("inception/stats2048_a.npz")).read("mu");
  TensorData b = NpzReader::open(golden_path("inception/stats2048_b.npz")).read("mu");
  double d2 = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    double d = a.data<double>()[i] - b.data<double>()[i];
    d2 += d * d;
  }
  EXPECT_NEAR(d2, std::stod(*dmu), 1e-12 * std::stod(*dmu));
}

TEST(GoldenInceptionImages, DecodeToTheListedSizes) {
  DMEVAL_REQUIRE_GOLDEN();
  auto list = nlohmann::json::parse(read_text(golden_path("inception/images/images.json")));
  ASSERT_GT(list.size(), 0u);
  for (const auto& rec : list) {
    const std::string path = golden_path("inception/" + rec["file"].get<std::string>());
    EXPECT_EQ(sha256_file(path), rec["sha256"].get<std::string>()) << path;
    Image img = decode_image_file(path);
    EXPECT_EQ(img.height, rec["height"].get<int>()) << path;
    EXPECT_EQ(img.width, rec["width"].get<int>()) << path;
    if (rec["png_mode"] == "L") {  // gray: replicated to three equal channels
      for (size_t p = 0; p < img.pixels.size(); p += 3) {
        ASSERT_EQ(img.pixels[p], img.pixels[p + 1]) << path;
        ASSERT_EQ(img.pixels[p], img.pixels[p + 2]) << path;
      }
    }
  }
}

}  // namespace
}  // namespace dmeval
