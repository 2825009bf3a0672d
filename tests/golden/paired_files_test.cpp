// Every file of the paired (SR) golden set, driven by the "File list" table of paired/MANIFEST.md:
// size and SHA-256, and per content type what the table states (torch zip/legacy dict of N tensors
// with M values, PNG/JPG dimensions, npy dtype and shape, JSON). Zip checkpoints are also compared
// with libtorch's own reader, and each legacy LPIPS weight file with its zip re-save.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/byte_source.h"
#include "core/checkpoint.h"
#include "core/hash.h"
#include "core/image.h"
#include "core/npy.h"
#include "core/torch_bridge.h"
#include "tests/support/golden.h"

namespace dmeval {
namespace {

using namespace dmeval::test;

// Tensors of a zip checkpoint as libtorch's torch::pickle_load reads them (an independent reader).
std::map<std::string, torch::Tensor> libtorch_load(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  c10::IValue v = torch::pickle_load(bytes);
  std::map<std::string, torch::Tensor> out;
  for (const auto& kv : v.toGenericDict()) out[kv.key().toStringRef()] = kv.value().toTensor();
  return out;
}

void check_checkpoint(const std::string& path, const std::string& content) {
  auto m = regex_find(
      content, "torch (zip|legacy pickle), dict of (\\d+) tensors \\(torch\\.(\\w+)\\), (\\d+) values", 0);
  ASSERT_TRUE(m) << "unparsed content column: " << content;
  auto kind = regex_find(content, "torch (zip|legacy pickle)");
  auto count = regex_find(content, "dict of (\\d+) tensors");
  auto dtype = regex_find(content, "\\(torch\\.(\\w+)\\)");
  auto values = regex_find(content, ", (\\d+) values");
  Checkpoint ck = Checkpoint::open(path);
  EXPECT_EQ(ck.format(), *kind == "zip" ? CheckpointFormat::kTorchZip : CheckpointFormat::kTorchLegacy)
      << path;
  auto tensors = ck.tensors();
  EXPECT_EQ(std::to_string(tensors.size()), *count) << path;
  long long n = 0;
  for (const auto& e : tensors) {
    TensorData d = ck.read(e.value);
    EXPECT_STREQ(dtype_name(d.dtype), dtype->c_str()) << path << ":" << e.path;
    n += d.numel();
  }
  EXPECT_EQ(std::to_string(n), *values) << path;
  if (ck.format() == CheckpointFormat::kTorchZip) {
    auto ref = libtorch_load(path);
    ASSERT_EQ(ref.size(), tensors.size()) << path;
    for (const auto& e : tensors) {
      ASSERT_TRUE(ref.count(e.path)) << path << ":" << e.path;
      EXPECT_TRUE(torch::equal(to_torch(ck.read(e.value)), ref[e.path].contiguous()))
          << path << ":" << e.path;
    }
  }
}

TEST(GoldenPairedFiles, EveryListedFileMatchesItsManifestRow) {
  DMEVAL_REQUIRE_GOLDEN();
  auto rows = markdown_table(read_text(golden_path("paired/MANIFEST.md")), "file");
  int checked = 0, checkpoints = 0, images = 0, arrays = 0;
  for (const auto& row : rows) {
    if (row.size() < 4 || row[2].size() != 64) continue;  // only the File list table has sha256 cells
    const std::string path = golden_path("paired/" + row[0]);
    const std::string& content = row[3];
    SCOPED_TRACE(row[0]);
    EXPECT_EQ(std::to_string(FileSource(path).size()), row[1]);
    EXPECT_EQ(sha256_file(path), row[2]);
    if (content.rfind("torch ", 0) == 0) {
      check_checkpoint(path, content);
      ++checkpoints;
    } else if (content.rfind("PNG ", 0) == 0 || content.rfind("JPG ", 0) == 0) {
      auto wh = parse_dims(content.substr(4, content.find(' ', 4) - 4));
      Image img = decode_image_file(path);
      EXPECT_EQ(img.width, wh.at(0));
      EXPECT_EQ(img.height, wh.at(1));
      ++images;
    } else if (content.rfind("npy ", 0) == 0) {
      TensorData t = read_npy_file(path);
      EXPECT_EQ(std::string("npy ") + dtype_name(t.dtype), content.substr(0, content.find(' ', 4)));
      EXPECT_EQ(t.shape, parse_dims(content.substr(content.find('['))));
      ++arrays;
    } else if (content == "JSON") {
      EXPECT_NO_THROW(nlohmann::json::parse(read_text(path)));
    }
    ++checked;
  }
  EXPECT_GT(checked, 0) << "no File list table found in paired/MANIFEST.md";
  EXPECT_GT(checkpoints, 0);
  EXPECT_GT(images, 0);
  EXPECT_GT(arrays, 0);
}

TEST(GoldenPairedFiles, LegacyLpipsWeightsEqualTheirZipResaves) {
  DMEVAL_REQUIRE_GOLDEN();
  const std::string dir = golden_path("paired/lpips/weights_v0.1");
  int pairs = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    if (entry.path().extension() != ".pth") continue;
    std::string zip = dir + "/" + name.substr(0, name.size() - 4) + "_zip.pt";
    if (!std::filesystem::exists(zip)) continue;
    Checkpoint legacy = Checkpoint::open(entry.path().string());
    Checkpoint zipped = Checkpoint::open(zip);
    auto a = load_tensors(legacy), b = load_tensors(zipped);
    ASSERT_EQ(a.size(), b.size()) << name;
    for (const auto& [k, t] : a) {
      ASSERT_TRUE(b.count(k)) << name << ":" << k;
      EXPECT_TRUE(torch::equal(t, b[k])) << name << ":" << k;
    }
    ++pairs;
  }
  EXPECT_GT(pairs, 0);
}

}  // namespace
}  // namespace dmeval
