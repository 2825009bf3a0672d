// q-diffusion's QuantModel on the small UNet (golden/generators/qdiff_quantmodel): for every variant
// of variants.json the port runs the recorded call sequence on the recorded calibration batch, then
//   * has the same quantizers (count, names) and split points,
//   * reproduces every weight quantizer's Δ/z exactly and every activation Δ/z within a few percent
//     (the MANIFEST's criterion: activation ranges depend on float summation order),
//   * with the stored Δ/z (and AdaRound rounding) loaded, meets the MANIFEST's ε acceptance:
//     weight-only ≤ 1e-4 abs, activation-quantized mean |Δε| ≤ 0.03 and max ≤ 0.3.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/npy.h"
#include "core/torch_bridge.h"
#include "generators/ddim_unet.h"
#include "generators/quant/quantized_unet.h"
#include "generators/unet_weights.h"
#include "tests/support/golden.h"

namespace dmeval {
namespace {

using namespace dmeval::test;
using json = nlohmann::json;

struct Acceptance {
  double weight_only_abs = 0, mean_abs = 0, max_abs = 0;
};

Acceptance acceptance() {
  const std::string m = read_text(golden_path("generators/MANIFEST.md"));
  auto a = regex_find(m, "weight-only `eps` ≤ ([0-9.e-]+) abs");
  auto b = regex_find(m, "mean \\|Δε\\| ≤ ([0-9.e-]+) and max ≤ ([0-9.e-]+)", 1);
  auto c = regex_find(m, "mean \\|Δε\\| ≤ ([0-9.e-]+) and max ≤ ([0-9.e-]+)", 2);
  EXPECT_TRUE(a && b && c) << "MANIFEST acceptance text not found";
  Acceptance r;
  if (a && b && c) r = {std::stod(*a), std::stod(*b), std::stod(*c)};
  return r;
}

UniformQuantizerSpec spec_from(const json& j) {
  UniformQuantizerSpec s;
  s.flavor = QuantFlavor::kQDiffusion;
  s.bits = j.at("n_bits");
  s.symmetric = j.value("symmetric", false);
  s.channel_wise = j.value("channel_wise", false);
  s.scale_method = j.value("scale_method", "max");
  s.leaf_param = j.value("leaf_param", false);
  s.always_zero = j.value("always_zero", false);
  return s;
}

class GoldenQuantQDiffModel : public ::testing::Test {
 protected:
  void SetUp() override {
    if (golden_dir().empty()) GTEST_SKIP() << "golden data not found";
    variants_ =
        json::parse(python_json_text(read_text(golden_path("generators/qdiff_quantmodel/variants.json"))));
    NpzReader calib = NpzReader::open(golden_path("generators/qdiff_quantmodel/calib.npz"));
    x_c_ = to_torch(calib.read("x_c"));
    t_c_ = to_torch(calib.read("t_c"));
    x_ = to_torch(read_npy_file(golden_path("generators/unet_small/x.npy")));
    t_ = to_torch(read_npy_file(golden_path("generators/unet_small/t.npy")));
    eps_fp_ = to_torch(read_npy_file(golden_path("generators/unet_small/eps.npy")));
  }

  DdimUNet fresh_unet() {
    DdimUNet m(read_ddim_yaml(golden_path("generators/unet_small/config.json")).unet);
    UNetWeightsOptions o;
    o.hash = false;
    load_unet_weights(*m, golden_path("generators/unet_small/weights.pt"), o);
    m->eval();
    return m;
  }

  json variants_;
  torch::Tensor x_c_, t_c_, x_, t_, eps_fp_;
};

TEST_F(GoldenQuantQDiffModel, EveryVariant) {
  const Acceptance acc = acceptance();
  ASSERT_FALSE(variants_["variants"].empty());
  torch::NoGradGuard no_grad;
  for (const auto& v : variants_["variants"]) {
    const std::string file = v["file"];
    SCOPED_TRACE(file);
    NpzReader ref = NpzReader::open(golden_path("generators/qdiff_quantmodel/" + file));
    std::optional<UniformQuantizerSpec> act;
    if (!v["act_quant_params"].is_null()) act = spec_from(v["act_quant_params"]);
    DdimUNet unet = fresh_unet();
    QuantizedUNet qnn(unet, qdiffusion_plan(unet, spec_from(v["weight_quant_params"]), act, v["sm_abit"],
                                            v["split_shortcut"]));
    // The unquantized forward of the wrapped model is the float UNet's, bit for bit on this machine
    // (the recorded ε of the reference is matched within the weight-only acceptance: summation
    // order differs between CPUs).
    torch::Tensor unquantized = qnn.forward(x_, t_);
    EXPECT_TRUE(torch::equal(unquantized, fresh_unet()->forward(x_, t_)));
    EXPECT_LE((unquantized - eps_fp_).abs().max().item<double>(), acc.weight_only_abs);

    for (const auto& step : v["call_sequence"]) {
      const std::string s = step;
      if (s == "qnn.set_quant_state(True, False)") {
        qnn.set_quant_state(true, false);
      } else if (s == "qnn.set_quant_state(True, True)") {
        qnn.set_quant_state(true, true);
      } else if (s == "qnn(x_c, t_c)") {
        qnn.forward(x_c_, t_c_);
      } else if (s == "convert_adaround(qnn)") {
        qnn.convert_adaround();
      } else if (s == "perturb alphas") {
        // "alpha += 2*randn (torch.Generator seed = seed+1, module order)"
        ASSERT_EQ(v["adaround_perturbation"],
                  "alpha += 2*randn (torch.Generator seed = seed+1, module order)");
        at::Generator g =
            at::make_generator<at::CPUGeneratorImpl>(variants_["calib_seed"].get<uint64_t>() + 1);
        for (auto& n : qnn.quantizers())
          if (n.adaround) n.adaround->alpha().add_(2 * torch::randn(n.adaround->alpha().sizes(), g));
      } else if (s == "eps = qnn(x, t)") {
        // evaluated below, twice: with the port's own parameters and with the stored ones
      } else {
        FAIL() << "unknown call step: " << s;
      }
    }

    // Structure: quantizer count and split points.
    auto named = qnn.quantizers();
    EXPECT_EQ(static_cast<int64_t>(named.size()), v["num_quantizers_saved"].get<int64_t>());
    std::map<std::string, int64_t> splits;
    for (auto& n : named)
      if (n.name.size() > 19 && n.name.substr(n.name.size() - 19) == ".weight_quantizer_0")
        splits[n.name.substr(0, n.name.size() - 19)] = 0;
    EXPECT_EQ(splits.size(), v["split_points"].size());

    // Parameters found by the port's own initialisation.
    std::vector<double> act_rel;
    int64_t weight_checked = 0, round_up_checked = 0;
    for (auto& n : named) {
      torch::Tensor d_ref = to_torch(ref.read(n.name + ".delta")),
                    z_ref = to_torch(ref.read(n.name + ".zero_point"));
      const torch::Tensor& d = n.uniform ? n.uniform->delta() : n.adaround->delta();
      const torch::Tensor& z = n.uniform ? n.uniform->zero_point() : n.adaround->zero_point();
      ASSERT_TRUE(d.defined()) << n.name << " was never initialised";
      if (n.is_weight) {
        EXPECT_TRUE(torch::equal(d.reshape(d_ref.sizes()), d_ref)) << n.name << ".delta";
        EXPECT_TRUE(torch::equal(z.reshape(z_ref.sizes()), z_ref)) << n.name << ".zero_point";
        ++weight_checked;
        if (n.adaround && ref.contains(n.name + ".round_up")) {
          torch::Tensor up = (n.adaround->alpha() >= 0).to(torch::kUInt8);
          EXPECT_TRUE(torch::equal(up, to_torch(ref.read(n.name + ".round_up")))) << n.name << ".round_up";
          ++round_up_checked;
        }
      } else {
        act_rel.push_back(((d - d_ref).abs() / d_ref.abs()).max().item<double>());
      }
    }
    EXPECT_GT(weight_checked, 0);
    if (v["adaround_perturbed"].get<bool>()) EXPECT_EQ(round_up_checked, weight_checked);
    if (!act_rel.empty()) {
      std::vector<double> sorted = act_rel;
      std::sort(sorted.begin(), sorted.end());
      const double median = sorted[sorted.size() / 2], worst = sorted.back();
      // "within a few percent"
      EXPECT_LE(median, 0.01);
      EXPECT_LE(worst, 0.06);
      std::printf("%s: %zu activation quantizers, Δ relative deviation median %.2g, max %.2g\n", file.c_str(),
                  act_rel.size(), median, worst);
    }
    torch::Tensor eps_ref = to_torch(ref.read("eps"));
    torch::Tensor own = qnn.forward(x_, t_);
    std::printf("%s: own initialisation: max |Δε| %.3g, mean %.3g\n", file.c_str(),
                (own - eps_ref).abs().max().item<double>(), (own - eps_ref).abs().mean().item<double>());

    // With the stored parameters loaded.
    qnn.load_params(ref);
    torch::Tensor eps = qnn.forward(x_, t_);
    const double dmax = (eps - eps_ref).abs().max().item<double>(),
                 dmean = (eps - eps_ref).abs().mean().item<double>();
    if (act) {
      EXPECT_LE(dmean, acc.mean_abs);
      EXPECT_LE(dmax, acc.max_abs);
    } else {
      EXPECT_LE(dmax, acc.weight_only_abs);
    }
    EXPECT_TRUE(torch::equal(qnn.forward(x_, t_), eps)) << "repeated quantized forwards differ";
    std::printf("%s: stored parameters: max |Δε| %.3g, mean %.3g (|ε_q - ε_fp| max %.3g, reference %.3g)\n",
                file.c_str(), dmax, dmean, (eps - eps_fp_).abs().max().item<double>(),
                v["eps_q_max_abs_vs_fp"].get<double>());
  }
}

// The calibrated checkpoint layout of q-diffusion on the full CIFAR-10 model
// (model_facts/qdiff_cifar10_quantmodel_keys.json): after weight initialisation, AdaRound conversion
// and activation initialisation, the port's state dict has the same 1001 keys, shapes and dtypes in
// the same order, the same quantizer inventory and split points; and it loads back into a model
// prepared the same way to identical outputs.
TEST_F(GoldenQuantQDiffModel, Cifar10CheckpointLayout) {
  auto facts =
      json::parse(read_text(golden_path("generators/model_facts/qdiff_cifar10_quantmodel_keys.json")));
  auto layers = json::parse(read_text(golden_path("generators/model_facts/ddim_cifar10_layers.json")));
  UNetConfig uc;
  const auto& m = layers["model_section"];
  uc.ch = m["ch"];
  uc.ch_mult = m["ch_mult"].get<std::vector<int64_t>>();
  uc.num_res_blocks = m["num_res_blocks"];
  uc.attn_resolutions = m["attn_resolutions"].get<std::vector<int64_t>>();
  uc.dropout = m["dropout"];
  uc.resolution = layers["image_size"];
  torch::NoGradGuard no_grad;
  auto plan_for = [&](const DdimUNet& u) {
    return qdiffusion_plan(u, spec_from(facts["weight_quant_params"]), spec_from(facts["act_quant_params"]),
                           facts["sm_abit"], facts["split_shortcut"]);
  };
  auto prepare = [&](QuantizedUNet& q, const torch::Tensor& x, const torch::Tensor& t) {
    q.set_quant_state(true, false);
    q.forward(x, t);
    q.convert_adaround();
    q.set_quant_state(true, true);
    q.forward(x, t);
  };
  torch::manual_seed(5);
  const int64_t res = uc.resolution;
  torch::Tensor x = torch::randn({1, 3, res, res}), t = torch::full({1}, 400.0f);
  DdimUNet unet(uc);
  unet->eval();
  QuantizedUNet qnn(unet, plan_for(unet));
  prepare(qnn, x, t);
  auto sd = qnn.state_dict();
  const auto& keys = facts["keys"];
  ASSERT_EQ(sd.size(), keys.size());
  EXPECT_EQ(static_cast<int64_t>(keys.size()), facts["num_keys"].get<int64_t>());
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(sd[i].first, keys[i][0].get<std::string>()) << "position " << i;
    EXPECT_EQ(sd[i].second.sizes().vec(), keys[i][1].get<std::vector<int64_t>>()) << keys[i][0];
    EXPECT_EQ(std::string(c10::toString(sd[i].second.scalar_type())) == "Float" ? "float32" : "other",
              keys[i][2].get<std::string>())
        << keys[i][0];
  }
  int64_t weight_q = 0, act_q = 0, attn_q = 0;
  for (auto& n : qnn.quantizers()) {
    if (n.is_weight)
      ++weight_q;
    else if (n.name.find(".act_quantizer_") != std::string::npos &&
             n.name.find(".act_quantizer_0") == std::string::npos)
      ++attn_q;
    else
      ++act_q;
  }
  const auto& inv = facts["inventory"];
  EXPECT_EQ(weight_q, inv["weight_quantizers"].get<int64_t>());
  EXPECT_EQ(act_q, inv["act_quantizers"].get<int64_t>());
  EXPECT_EQ(attn_q, inv["attention_matmul_act_quantizers"].get<int64_t>());
  EXPECT_EQ(static_cast<int64_t>(list_layers(*unet).size()), inv["QuantModule"].get<int64_t>());
  for (const auto& [layer, split] : facts["split_points"].items()) {
    bool found = false;
    for (auto& n : qnn.quantizers())
      if (n.name == layer + ".weight_quantizer_0") {
        found = true;
        EXPECT_EQ(n.adaround->alpha().size(1),
                  unet->named_parameters()[layer + ".weight"].size(1) - split.get<int64_t>());
      }
    EXPECT_TRUE(found) << layer;
  }
  // Round trip through the dict.
  torch::Tensor eps = qnn.forward(x, t);
  std::map<std::string, torch::Tensor> dict(sd.begin(), sd.end());
  torch::manual_seed(6);
  DdimUNet other(uc);
  other->eval();
  QuantizedUNet q2(other, plan_for(other));
  q2.set_quant_state(false, false);
  q2.forward(torch::randn({1, 3, res, res}), t);  // creates the split structure only
  q2.load_state_dict(dict, "round trip");
  q2.set_quant_state(true, true);
  EXPECT_TRUE(torch::equal(q2.forward(x, t), eps));
  dict.erase("model.conv_out.act_quantizer.delta");
  EXPECT_THROW(q2.load_state_dict(dict, "broken"), Error);
}

}  // namespace
}  // namespace dmeval
