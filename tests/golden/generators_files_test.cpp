// The ddim UNet golden weights (generators/unet_small/weights.pt, torch zip): key names, order and
// shapes from weights_keys.json, SHA-256 and parameter count from the MANIFEST, finite values; and
// the same facts for every golden UNet directory from its own run_info.json.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "core/checkpoint.h"
#include "core/hash.h"
#include "core/torch_bridge.h"
#include "tests/support/golden.h"

namespace dmeval {
namespace {

using namespace dmeval::test;

TEST(GoldenGeneratorsWeights, UnetSmallStateDict) {
  DMEVAL_REQUIRE_GOLDEN();
  const std::string path = golden_path("generators/unet_small/weights.pt");
  auto rows = markdown_table(read_text(golden_path("generators/MANIFEST.md")), "file");
  std::string row_text;
  for (const auto& r : rows)
    if (!r.empty() && r[0] == "weights.pt") row_text = r[1];
  ASSERT_FALSE(row_text.empty()) << "MANIFEST has no weights.pt row";
  auto sha = regex_find(row_text, "sha256 ([0-9a-f]{64})");
  auto params = regex_find(row_text, "([\\d,]+) parameters");
  ASSERT_TRUE(sha && params);
  EXPECT_EQ(sha256_file(path), *sha);

  Checkpoint ck = Checkpoint::open(path);
  EXPECT_EQ(ck.format(), CheckpointFormat::kTorchZip);
  auto keys = nlohmann::json::parse(read_text(golden_path("generators/unet_small/weights_keys.json")));
  auto entries = ck.tensors();
  ASSERT_EQ(entries.size(), keys.size());
  long long total = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    EXPECT_EQ(entries[i].path, keys[i][0].get<std::string>());  // same order as the state dict
    EXPECT_EQ(ck.shape(entries[i].value), keys[i][1].get<std::vector<int64_t>>()) << entries[i].path;
    total += checked_numel(ck.shape(entries[i].value));
  }
  EXPECT_EQ(total, parse_grouped_int(*params));

  // Values: libtorch's torch::pickle_load cannot read Python state dicts (it rejects the
  // OrderedDict's BUILD of _metadata), so the value path is cross-checked on the LPIPS zip files
  // (golden_paired_files); here every tensor must read and be finite.
  for (const auto& e : entries) {
    torch::Tensor t = to_torch(ck.read(e.value));
    EXPECT_TRUE(torch::isfinite(t).all().item<bool>()) << e.path;
  }
}

// Every golden UNet directory of every golden root (the project's unet_deep too): weights.pt keys,
// order and shapes from its weights_keys.json, SHA-256 and parameter count from its run_info.json.
TEST(GoldenGeneratorsWeights, EveryUnetDirectory) {
  DMEVAL_REQUIRE_GOLDEN();
  const auto dirs = golden_dirs_with("generators", "weights_keys.json");
  ASSERT_FALSE(dirs.empty());
  for (const std::string& dir : dirs) {
    SCOPED_TRACE(dir);
    auto info = nlohmann::json::parse(read_text(dir + "/run_info.json"));
    EXPECT_EQ(sha256_file(dir + "/weights.pt"), info["sha256_weights_pt"].get<std::string>());
    Checkpoint ck = Checkpoint::open(dir + "/weights.pt");
    auto keys = nlohmann::json::parse(read_text(dir + "/weights_keys.json"));
    auto entries = ck.tensors();
    ASSERT_EQ(entries.size(), keys.size());
    long long total = 0;
    for (size_t i = 0; i < entries.size(); ++i) {
      EXPECT_EQ(entries[i].path, keys[i][0].get<std::string>());
      EXPECT_EQ(ck.shape(entries[i].value), keys[i][1].get<std::vector<int64_t>>()) << entries[i].path;
      total += checked_numel(ck.shape(entries[i].value));
    }
    EXPECT_EQ(total, info["num_params"].get<long long>());
  }
}

}  // namespace
}  // namespace dmeval
