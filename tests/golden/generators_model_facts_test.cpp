// Full-size model facts (golden/generators/model_facts): for every ddim config listed there, the
// port built from the file's model section has the reference's state-dict keys and shapes in
// order, the same Conv2d/Linear layers (kernel, stride, padding, role) and GroupNorms, and the
// size accounting of size_accounting.json; the presets equal the configs they name. MACs per
// forward are checked against the counted figure in shared/design/anchors-performance.md.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <filesystem>

#include "generators/ddim/ddim_unet.h"
#include "generators/ddim/unet_config.h"
#include "generators/model_cost.h"
#include "tests/support/golden.h"

namespace dmeval {
namespace {

using namespace dmeval::test;
namespace fs = std::filesystem;

std::vector<std::string> layer_files() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(golden_path("generators/model_facts"))) {
    const std::string n = e.path().filename().string();
    if (n.rfind("ddim_", 0) == 0 && n.size() > 12 && n.substr(n.size() - 12) == "_layers.json")
      out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

UNetConfig config_from(const nlohmann::json& facts) {
  const auto& m = facts["model_section"];
  UNetConfig c;
  c.type = m.value("type", "simple");
  c.ch = m["ch"];
  c.out_ch = m["out_ch"];
  c.ch_mult = m["ch_mult"].get<std::vector<int64_t>>();
  c.num_res_blocks = m["num_res_blocks"];
  c.attn_resolutions = m["attn_resolutions"].get<std::vector<int64_t>>();
  c.dropout = m["dropout"];
  c.in_channels = m["in_channels"];
  c.resamp_with_conv = m["resamp_with_conv"];
  c.resolution = facts["image_size"];
  return c;
}

TEST(GoldenGeneratorsModelFacts, LayersKeysAndCounts) {
  DMEVAL_REQUIRE_GOLDEN();
  const auto files = layer_files();
  ASSERT_FALSE(files.empty());
  for (const std::string& file : files) {
    SCOPED_TRACE(file);
    auto facts = nlohmann::json::parse(read_text(golden_path("generators/model_facts/" + file)));
    DdimUNet model(config_from(facts));

    auto params = model->named_parameters(true);
    const auto& keys = facts["state_dict_keys"];
    ASSERT_EQ(params.size(), keys.size());
    for (size_t i = 0; i < keys.size(); ++i) {
      EXPECT_EQ(params[i].key(), keys[i][0].get<std::string>()) << "position " << i;
      EXPECT_EQ(params[i].value().sizes().vec(), keys[i][1].get<std::vector<int64_t>>()) << keys[i][0];
    }
    ParameterCounts counts = count_parameters(*model);
    EXPECT_EQ(counts.total, facts["total_params"].get<int64_t>());

    const auto layers = list_layers(*model);
    const auto& ref_layers = facts["layers"];
    ASSERT_EQ(layers.size(), ref_layers.size());
    int64_t convs = 0, linears = 0;
    for (size_t i = 0; i < layers.size(); ++i) {
      const auto& r = ref_layers[i];
      const LayerInfo& l = layers[i];
      EXPECT_EQ(l.name, r["name"].get<std::string>());
      EXPECT_EQ(l.type, r["type"].get<std::string>()) << l.name;
      EXPECT_EQ(l.weight_shape, r["weight_shape"].get<std::vector<int64_t>>()) << l.name;
      EXPECT_EQ(l.out_channels, r["out_channels"].get<int64_t>()) << l.name;
      EXPECT_EQ(std::string(layer_role_name(l.role)), r["role"].get<std::string>()) << l.name;
      if (l.type == "Conv2d") {
        ++convs;
        EXPECT_EQ(l.kernel, r["kernel"][0].get<int64_t>()) << l.name;
        EXPECT_EQ(l.stride, r["stride"][0].get<int64_t>()) << l.name;
        EXPECT_EQ(l.padding, r["padding"][0].get<int64_t>()) << l.name;
      } else {
        ++linears;
      }
    }
    EXPECT_EQ(convs, facts["num_conv2d"].get<int64_t>());
    EXPECT_EQ(linears, facts["num_linear"].get<int64_t>());

    std::vector<std::pair<std::string, const torch::nn::GroupNormImpl*>> norms;
    for (const auto& m : model->named_modules("", false))
      if (const auto* g = dynamic_cast<const torch::nn::GroupNormImpl*>(m.value().get()))
        norms.emplace_back(m.key(), g);
    ASSERT_EQ(norms.size(), facts["groupnorms"].size());
    EXPECT_EQ(static_cast<int64_t>(norms.size()), facts["num_groupnorm"].get<int64_t>());
    for (size_t i = 0; i < norms.size(); ++i) {
      const auto& r = facts["groupnorms"][i];
      EXPECT_EQ(norms[i].first, r["name"].get<std::string>());
      EXPECT_EQ(norms[i].second->options.num_groups(), r["num_groups"].get<int64_t>());
      EXPECT_EQ(norms[i].second->options.num_channels(), r["num_channels"].get<int64_t>());
      EXPECT_EQ(norms[i].second->options.eps(), r["eps"].get<double>());
    }
  }
}

TEST(GoldenGeneratorsModelFacts, PresetsEqualTheirConfigs) {
  DMEVAL_REQUIRE_GOLDEN();
  int matched = 0;
  for (const std::string& file : layer_files()) {
    auto facts = nlohmann::json::parse(read_text(golden_path("generators/model_facts/" + file)));
    const std::string cfg = facts["config"].get<std::string>();  // "ermongroup/ddim configs/cifar10.yml"
    for (const std::string& name : model_preset_names()) {
      ModelConfig p = model_preset(name);
      if (p.ddim_config.empty() || cfg.size() < p.ddim_config.size() ||
          cfg.compare(cfg.size() - p.ddim_config.size(), p.ddim_config.size(), p.ddim_config) != 0)
        continue;
      SCOPED_TRACE(name);
      UNetConfig ref = config_from(facts);
      EXPECT_EQ(p.unet.ch, ref.ch);
      EXPECT_EQ(p.unet.ch_mult, ref.ch_mult);
      EXPECT_EQ(p.unet.num_res_blocks, ref.num_res_blocks);
      EXPECT_EQ(p.unet.attn_resolutions, ref.attn_resolutions);
      EXPECT_EQ(p.unet.dropout, ref.dropout);
      EXPECT_EQ(p.unet.resolution, ref.resolution);
      EXPECT_EQ(p.unet.in_channels, ref.in_channels);
      EXPECT_EQ(p.unet.out_ch, ref.out_ch);
      EXPECT_EQ(p.unet.resamp_with_conv, ref.resamp_with_conv);
      EXPECT_EQ(p.diffusion.var_type, facts["model_section"]["var_type"].get<std::string>());
      EXPECT_EQ(p.ema_rate, facts["model_section"]["ema_rate"].get<double>());
      ++matched;
    }
  }
  EXPECT_GT(matched, 0) << "no preset names a config of the model facts";
}

TEST(GoldenGeneratorsModelFacts, SizeAccounting) {
  DMEVAL_REQUIRE_GOLDEN();
  auto acc = nlohmann::json::parse(read_text(golden_path("generators/model_facts/size_accounting.json")));
  ASSERT_FALSE(acc["accounting"].empty());
  for (const auto& [cfg_name, a] : acc["accounting"].items()) {
    SCOPED_TRACE(cfg_name);
    // The layer facts file of the same config ("cifar10" -> ddim_cifar10_layers.json).
    const std::string file = "generators/model_facts/ddim_" + cfg_name + "_layers.json";
    ASSERT_TRUE(fs::exists(golden_path(file))) << file;
    auto facts = nlohmann::json::parse(read_text(golden_path(file)));
    DdimUNet model(config_from(facts));
    ParameterCounts c = count_parameters(*model);
    EXPECT_EQ(c.total, a["total_params"].get<int64_t>());
    EXPECT_EQ(c.layer_weights, a["conv_linear_weight_params"].get<int64_t>());
    EXPECT_EQ(c.layer_biases, a["conv_linear_bias_params"].get<int64_t>());
    EXPECT_EQ(c.other, a["groupnorm_affine_params"].get<int64_t>());
    EXPECT_EQ(c.first_last_weights, a["first_last_conv_weight_params"].get<int64_t>());
    EXPECT_EQ(c.num_layers, a["num_conv_linear_layers"].get<int64_t>());
    EXPECT_EQ(c.sum_out_channels, a["sum_out_channels_all_layers"].get<int64_t>());
    EXPECT_EQ(c.sum_out_channels_first_last, a["sum_out_channels_first_last"].get<int64_t>());
    EXPECT_EQ(model_size_bytes(c, 32, SizeConvention::kAllParamsAtBits), a["fp32_bytes"].get<double>());
    ASSERT_FALSE(a["variants"].empty());
    for (const auto& [wname, v] : a["variants"].items()) {  // "W8"
      const double bits = std::stod(wname.substr(1));
      for (SizeConvention conv : size_conventions()) {
        const char* key = size_convention_name(conv);
        ASSERT_TRUE(v.contains(key)) << wname << " " << key;
        EXPECT_EQ(model_size_bytes(c, bits, conv), v[key].get<double>()) << wname << " " << key;
      }
      for (ScaleOverhead o : {ScaleOverhead::kFp32DeltaFp32Zero, ScaleOverhead::kFp32DeltaInt8Zero}) {
        const std::string key = std::string("overhead_") + scale_overhead_name(o) + "_all_layers";
        ASSERT_TRUE(v.contains(key)) << key;
        const double with = model_size_bytes(c, bits, SizeConvention::kWeightsAtBitsRestFp32, o);
        const double without = model_size_bytes(c, bits, SizeConvention::kWeightsAtBitsRestFp32);
        EXPECT_EQ(with - without, v[key].get<double>()) << wname << " " << key;
      }
    }
    // The per-layer form agrees with the convention it generalises.
    const double b4 = model_size_bytes(*model, [](const LayerInfo& l) {
      return (l.role == LayerRole::kFirstConv || l.role == LayerRole::kLastConv) ? 8.0 : 4.0;
    });
    EXPECT_EQ(b4, a["variants"]["W4"]["weights_b_first_last_8bit_rest_fp32"].get<double>());
  }
}

// The counted MACs of the CIFAR-10 UNet (design/anchors-performance.md §2: "DDPM CIFAR-10 UNet ...
// | 35.75 M | **6.222** (12.44 GFLOP) per denoising step | 0.168 |").
TEST(GoldenGeneratorsModelFacts, MacsPerForwardMatchCountedFigure) {
  DMEVAL_REQUIRE_GOLDEN();
  const std::string perf = shared_path("design/anchors-performance.md");
  ASSERT_TRUE(fs::exists(perf)) << perf;
  const std::string text = read_text(perf);
  auto row = regex_find(text, "\\| DDPM CIFAR-10 UNet[^\\n]*", 0);
  ASSERT_TRUE(row);
  auto gmacs = regex_find(*row, "\\*\\*([0-9.]+)\\*\\*");
  auto attn = regex_find(*row, "per denoising step \\| ([0-9.]+) \\|");
  auto params = regex_find(*row, "\\| ([0-9.]+) M \\|");
  ASSERT_TRUE(gmacs && attn && params) << *row;
  const std::string file = "generators/model_facts/ddim_cifar10_layers.json";
  auto facts = nlohmann::json::parse(read_text(golden_path(file)));
  DdimUNet model(config_from(facts));
  model->eval();
  const int64_t res = facts["image_size"];
  MacCount macs = count_macs([&] {
    model->forward(torch::zeros({1, 3, res, res}), torch::full({1}, 500.0f));
  });
  // The published figures are rounded to the digits shown.
  EXPECT_NEAR(macs.total() / 1e9, std::stod(*gmacs), 0.0005);
  EXPECT_NEAR(macs.attention / 1e9, std::stod(*attn), 0.0005);
  EXPECT_NEAR(count_parameters(*model).total / 1e6, std::stod(*params), 0.005);
  std::printf("CIFAR-10 UNet: %.4f GMACs per forward (%.4f in attention)\n", macs.total() / 1e9,
              macs.attention / 1e9);
}

}  // namespace
}  // namespace dmeval
