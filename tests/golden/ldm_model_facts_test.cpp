// golden_ldm_model_facts: the two released LDM-4 configs (dmeval's presets lsun_bedrooms-ldm-vq-4 and
// cin256-v2) build the networks the real checkpoints hold: for every model in
// $DMEVAL_GOLDEN_DIR/ldm/model_facts/ldm_sizes.json (its "config" names the preset), the UNet's
// parameter count, fp32 bytes, every `model.diffusion_model.*` key, shape and their order, the
// sampling path of the first stage (codebook + post_quant_conv + decoder: count and keys), the
// conditioning stage's size, the layer counts by type, and the config flags (EMA, timesteps, scale).
// Exact: these are structural facts.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <tuple>

#include "core/error.h"
#include "generators/ldm/ldm_config.h"
#include "generators/ldm/ldm_unet.h"
#include "generators/ldm/vq_decoder.h"
#include "generators/model_cost.h"
#include "tests/support/golden.h"
#include "tests/support/temp_dir.h"

namespace dmeval {
namespace {

using json = nlohmann::json;
using test::golden_path;
using test::read_text;

int64_t numel(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

TEST(GoldenLdmModelFacts, PresetsBuildTheReleasedNetworks) {
  DMEVAL_REQUIRE_GOLDEN();
  const json sizes = json::parse(read_text(golden_path("ldm/model_facts/ldm_sizes.json")));
  ASSERT_FALSE(sizes.empty());
  for (auto it = sizes.begin(); it != sizes.end(); ++it) {
    const json& f = it.value();
    const std::string preset = std::filesystem::path(f.at("config").get<std::string>()).stem().string();
    SCOPED_TRACE(it.key() + " (preset " + preset + ")");
    const LdmConfig c = resolve_ldm_config(preset);
    EXPECT_EQ(c.use_ema, f.at("use_ema").get<bool>());
    EXPECT_EQ(c.timesteps, f.at("num_timesteps").get<int64_t>());
    EXPECT_EQ(c.scale_factor, f.at("scale_factor").get<double>());
    const json keys =
        json::parse(read_text(golden_path("ldm/model_facts/" + it.key() + "_state_dict_keys.json")));
    std::vector<std::pair<std::string, std::vector<int64_t>>> unet_keys;
    std::map<std::string, std::vector<int64_t>> first_stage_keys;
    for (const auto& k : keys) {
      const std::string name = k.at(0);
      if (name.rfind("model.diffusion_model.", 0) == 0)
        unet_keys.emplace_back(name.substr(22), k.at(1).get<std::vector<int64_t>>());
      for (const char* part : {"decoder.", "quantize.", "post_quant_conv."})
        if (name.rfind(std::string("first_stage_model.") + part, 0) == 0)
          first_stage_keys[name.substr(18)] = k.at(1).get<std::vector<int64_t>>();
    }
    torch::NoGradGuard no_grad;
    {
      LdmUNet unet(c.unet);
      EXPECT_EQ(numel(*unet), f.at("unet_params").get<int64_t>());
      EXPECT_EQ(4 * numel(*unet), f.at("unet_fp32_bytes").get<int64_t>());
      auto params = unet->named_parameters(true);
      ASSERT_EQ(params.size(), unet_keys.size());
      size_t i = 0;
      for (const auto& p : params) {
        EXPECT_EQ(p.key(), unet_keys[i].first) << "position " << i;
        EXPECT_EQ(p.value().sizes().vec(), unet_keys[i].second) << p.key();
        ++i;
      }
      int64_t conv2d = 0, linear = 0, conv1d = 0;
      for (const LayerInfo& l : list_layers(*unet))
        (l.type == "Conv2d" ? conv2d : l.type == "Conv1d" ? conv1d : linear) += 1;
      const json& counts = f.at("unet_module_counts");
      EXPECT_EQ(conv2d, counts.at("Conv2d").get<int64_t>());
      EXPECT_EQ(linear, counts.at("Linear").get<int64_t>());
      EXPECT_EQ(conv1d, counts.at("Conv1d").get<int64_t>());
    }
    {
      VqFirstStage fs(c.first_stage);
      EXPECT_EQ(numel(*fs),
                f.at("sampling_decode_path_params(codebook+post_quant_conv+decoder)").get<int64_t>());
      auto params = fs->named_parameters(true);
      int64_t decoder = 0;
      for (const auto& p : params)
        if (p.key().rfind("decoder.", 0) == 0) decoder += p.value().numel();
      EXPECT_EQ(decoder, f.at("first_stage_decoder_params").get<int64_t>());
      EXPECT_EQ(params.size(), first_stage_keys.size());
      for (const auto& p : params) {
        ASSERT_TRUE(first_stage_keys.count(p.key())) << p.key();
        EXPECT_EQ(p.value().sizes().vec(), first_stage_keys.at(p.key())) << p.key();
      }
    }
    EXPECT_EQ(c.n_classes * c.class_embed_dim, f.at("cond_stage_params").get<int64_t>());
  }
}

// A config file reads as JSON or YAML (a JSON document is YAML too) into the same model; configs that
// name what dmeval does not build are refused naming the file.
TEST(GoldenLdmModelFacts, ConfigFilesReadAndBadOnesAreRefused) {
  DMEVAL_REQUIRE_GOLDEN();
  const std::string json_path = golden_path("ldm/ldm_cond/config.json");
  const LdmConfig a = resolve_ldm_config(json_path);
  test::TempDir dir;
  const std::string text = read_text(json_path);
  const LdmConfig b = resolve_ldm_config(dir.write("config.yaml", text));
  EXPECT_EQ(a.unet.model_channels, b.unet.model_channels);
  EXPECT_EQ(a.unet.channel_mult, b.unet.channel_mult);
  EXPECT_EQ(a.unet.context_dim, b.unet.context_dim);
  EXPECT_EQ(a.n_classes, b.n_classes);
  EXPECT_EQ(a.linear_end, b.linear_end);
  EXPECT_EQ(a.first_stage.n_embed, b.first_stage.n_embed);

  json kl = json::parse(text);
  kl["params"]["first_stage_config"]["target"] = "ldm.models.autoencoder.AutoencoderKL";
  json wrong_context = json::parse(text);
  wrong_context["params"]["unet_config"]["params"]["context_dim"] = 7;
  json unknown = json::parse(text);
  unknown["params"]["unet_config"]["params"]["use_scale_shift_norm"] = true;
  for (const auto& [name, tree, what] : std::vector<std::tuple<std::string, json, std::string>>{
           {"kl.json", kl, "not a VQ model"},
           {"context.json", wrong_context, "context_dim"},
           {"scale_shift.json", unknown, "use_scale_shift_norm"}}) {
    const std::string path = dir.write(name, tree.dump());
    try {
      resolve_ldm_config(path);
      ADD_FAILURE() << name << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(resolve_ldm_config(dir.file("missing.yaml")), Error);
}

// "Size (MB)" as the papers count the LSUN-Bedrooms LDM-4: the UNet's parameters in MiB (BinaryDM's
// FP row, 1045.4, is 274,056,163 x 4 B / 2^20). Read from shared/data/paper-tables.csv (the FP Size_MB
// of every LSUN-Bedrooms LDM-4 row), compared at the table's one decimal; W8 and W4 under the
// all-parameters-at-b convention are printed (the papers' quantized sizes differ in what stays float).
TEST(GoldenLdmModelFacts, PublishedFpSizeIsTheUNetInMiB) {
  DMEVAL_REQUIRE_GOLDEN();
  const std::filesystem::path csv =
      std::filesystem::path(test::golden_dir()).parent_path() / "data/paper-tables.csv";
  if (!std::filesystem::exists(csv)) GTEST_SKIP() << csv << " not found (the published tables)";
  std::vector<double> published;
  std::ifstream in(csv);
  for (std::string line; std::getline(in, line);) {
    // paper,table,dataset,model,sampler,steps,wbits,abits,method,metric,value,...
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) f.push_back(cell);
    if (f.size() > 10 && f[2].rfind("LSUN-Bedrooms", 0) == 0 && f[3] == "LDM-4" && f[8] == "FP" &&
        f[9] == "Size_MB")
      published.push_back(std::stod(f[10]));
  }
  ASSERT_FALSE(published.empty()) << csv << " has no FP Size_MB row for LSUN-Bedrooms LDM-4";
  torch::manual_seed(0);
  LdmUNet unet(resolve_ldm_config("lsun_bedrooms-ldm-vq-4").unet);
  const ParameterCounts counts = count_parameters(*unet);
  const double mib = 1024.0 * 1024.0;
  const double fp = model_size_bytes(counts, 32, SizeConvention::kAllParamsAtBits) / mib;
  for (double v : published) EXPECT_NEAR(fp, v, 0.05);
  std::printf(
      "LSUN-Bedrooms LDM-4 UNet: W32 %.1f MiB, W8 %.1f MiB, W4 %.1f MiB (every parameter at b bits); "
      "published FP %.1f\n",
      fp, model_size_bytes(counts, 8, SizeConvention::kAllParamsAtBits) / mib,
      model_size_bytes(counts, 4, SizeConvention::kAllParamsAtBits) / mib, published.front());
}

}  // namespace
}  // namespace dmeval
