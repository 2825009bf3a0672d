// golden_ldm_qdiff: q-diffusion's QuantModel on the LDM UNets ($DMEVAL_GOLDEN_DIR/ldm/qdiff_quantmodel:
// variants.json, calib.npz, <variant>.npz; spec ldm.md §11.1): every Conv2d, Conv1d (the
// AttentionBlock's qkv and proj_out) and Linear quantized, the attention matmul quantizers of the
// AttentionBlock (q·s, k·s, softmax asymmetric with z = 0, v; not reached by running statistics) and of
// the SpatialTransformer's attn1/attn2 (q, k after the head split, softmax with z = 0, v), the split
// shortcut of the output blocks. For every variant the port builds the quantized model of the golden
// model (loaded through the ldm family), runs the recorded call sequence on the recorded calibration
// batch (class labels through the embedder for the conditional model), then checks, with the
// MANIFEST's acceptance ("Reproducibility and suggested tolerances", parsed below):
//   * the quantizers (count, names, split points) and the quantized layer list,
//   * every weight quantizer's Δ/z exactly; activation Δ's "within a few percent" — 5 % on the
//     median (one code flip upstream can move a single Δ arbitrarily, as for the pixel UNet),
//   * with the stored Δ/z loaded: weight-only ε within the weight-only bound, activation-quantized ε
//     within the mean / max bounds.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <regex>
#include <set>

#include "core/npy.h"
#include "core/torch_bridge.h"
#include "generators/ldm/ldm_model.h"
#include "generators/quant/quantized_unet.h"
#include "generators/quant/reconstruction.h"
#include "tests/support/golden.h"
#include "tests/support/quant_params.h"

namespace dmeval {
namespace {

using namespace dmeval::test;
using json = nlohmann::json;

struct Acceptance {
  double weight_only = 0, mean_abs = 0, max_abs = 0;
};

Acceptance acceptance() {
  const std::string m = read_text(golden_path("ldm/MANIFEST.md"));
  auto a = regex_find(m, "weight-only `eps` ≤ ([0-9.e-]+)");
  auto b = regex_find(m, "require mean \\|Δε\\| ≤ ([0-9.e-]+) and max ≤ ([0-9.e-]+)", 1);
  auto c = regex_find(m, "require mean \\|Δε\\| ≤ ([0-9.e-]+) and max ≤ ([0-9.e-]+)", 2);
  EXPECT_TRUE(a && b && c) << "ldm/MANIFEST.md: acceptance text not found";
  Acceptance r;
  if (a && b && c) r = {std::stod(*a), std::stod(*b), std::stod(*c)};
  return r;
}

std::shared_ptr<LdmModel> golden_model(const std::string& model) {
  ModelSpec s;
  s.model = golden_path("ldm/" + model + "/config.json");
  s.checkpoint = golden_path("ldm/" + model + "/model.ckpt");
  s.first_stage = golden_path("ldm/decoder/first_stage.ckpt");
  return std::dynamic_pointer_cast<LdmModel>(load_diffusion_model(s));
}

TEST(GoldenLdmQDiff, EveryVariant) {
  DMEVAL_REQUIRE_GOLDEN();
  const Acceptance acc = acceptance();
  const json info =
      json::parse(python_json_text(read_text(golden_path("ldm/qdiff_quantmodel/variants.json"))));
  NpzReader calib = NpzReader::open(golden_path("ldm/qdiff_quantmodel/calib.npz"));
  ASSERT_FALSE(info.at("variants").empty());
  torch::NoGradGuard no_grad;
  for (const json& v : info.at("variants")) {
    const std::string variant = v.at("variant"), model_name = v.at("model");
    SCOPED_TRACE(variant);
    const bool cond = model_name == "ldm_cond";
    std::shared_ptr<LdmModel> model = golden_model(model_name);
    ASSERT_TRUE(model);
    // The calibration batch of this model and its evaluation inputs.
    const std::string pre = cond ? "cond_" : "uncond_";
    const torch::Tensor x_c = to_torch(calib.read(pre + "x_c")), t_c = to_torch(calib.read(pre + "t_c"));
    const torch::Tensor y_c = cond ? to_torch(calib.read("cond_y_c")) : torch::Tensor();
    const std::string dir = "ldm/" + model_name + "/";
    const torch::Tensor x = to_torch(read_npy_file(golden_path(dir + "x.npy"))),
                        t = to_torch(read_npy_file(golden_path(dir + "t.npy"))),
                        eps_fp = to_torch(read_npy_file(golden_path(dir + "eps.npy")));
    Conditioning eval_c;
    if (cond) eval_c.class_labels = to_torch(read_npy_file(golden_path(dir + "class_label.npy")));
    auto calib_rows = [&](int64_t begin, int64_t end) {
      end = std::min(end, x_c.size(0));
      Conditioning c;
      if (cond) c.class_labels = y_c.slice(0, begin, end);
      return std::make_tuple(x_c.slice(0, begin, end), t_c.slice(0, begin, end), c);
    };

    std::optional<UniformQuantizerSpec> act;
    if (!v.at("act_quant_params").is_null()) act = uniform_spec_from(v.at("act_quant_params"));
    QuantizedUNet qnn(model, qdiffusion_plan(model->network(), uniform_spec_from(v.at("weight_quant_params")),
                                             act, v.at("sm_abit").get<int>(), v.at("split").get<bool>()));
    // The quantized layers are q-diffusion's QuantModules, in order.
    std::vector<std::string> names;
    for (auto& [n, q] : qnn.layers()) names.push_back(n);
    EXPECT_EQ(names, v.at("quant_modules").get<std::vector<std::string>>());
    // Quantization off: the float UNet (the golden ε within the weight-only bound).
    EXPECT_LE((qnn.forward(x, t, eval_c) - eps_fp).abs().max().item<double>(), acc.weight_only);

    const std::regex quant_state(R"(set_quant_state\((True|False), (True|False)\))"),
        forward_first(R"(qnn\(x_c\[:(\d+)\].*)"), running(R"(set_running_stat\((True|False)\))"),
        chunks(R"(for i in range\((\d+)\): qnn\(x_c\[(\d+)\*i:(\d+)\*\(i\+1\)\].*)");
    for (const json& step : v.at("call_sequence")) {
      const std::string s = step;
      std::smatch m;
      if (std::regex_match(s, m, quant_state)) {
        qnn.set_quant_state(m[1] == "True", m[2] == "True");
      } else if (std::regex_match(s, m, forward_first)) {
        auto [xs, ts, c] = calib_rows(0, std::stoll(m[1]));
        qnn.forward(xs, ts, c);
      } else if (std::regex_match(s, m, running)) {
        qnn.set_running_stat(m[1] == "True");
      } else if (std::regex_match(s, m, chunks)) {
        const int64_t n = std::stoll(m[1]), size = std::stoll(m[2]);
        ASSERT_EQ(size, std::stoll(m[3]));
        for (int64_t i = 0; i < n; ++i) {
          auto [xs, ts, c] = calib_rows(size * i, size * (i + 1));
          qnn.forward(xs, ts, c);
        }
      } else if (s.rfind("eps = qnn(x, t", 0) == 0) {
        // evaluated below, with the port's own parameters and with the stored ones
      } else {
        FAIL() << "unknown call step: " << s;
      }
    }

    // Structure: quantizer count and names, split points.
    auto named = qnn.quantizers();
    EXPECT_EQ(static_cast<int64_t>(named.size()), v.at("num_quantizers_saved").get<int64_t>());
    std::set<std::string> want_names;
    for (auto it = v.at("quantizers").begin(); it != v.at("quantizers").end(); ++it)
      want_names.insert(it.key());
    std::set<std::string> got_names;
    for (auto& n : named) got_names.insert(n.name);
    EXPECT_EQ(got_names, want_names);
    int64_t splits = 0;
    for (auto& [n, q] : qnn.layers()) {
      if (q->split == 0) continue;
      ++splits;
      ASSERT_TRUE(v.at("split_points").contains(n)) << n;
      EXPECT_EQ(q->split, v.at("split_points").at(n).get<int64_t>()) << n;
    }
    EXPECT_EQ(splits, static_cast<int64_t>(v.at("split_points").size()));

    NpzReader ref = NpzReader::open(golden_path("ldm/qdiff_quantmodel/" + v.at("file").get<std::string>()));
    std::vector<double> act_rel;
    int64_t weights = 0;
    for (auto& n : named) {
      ASSERT_TRUE(ref.contains(n.name + ".delta")) << n.name;
      const torch::Tensor d_ref = to_torch(ref.read(n.name + ".delta")),
                          z_ref = to_torch(ref.read(n.name + ".zero_point"));
      const torch::Tensor& d = n.uniform->delta();
      const torch::Tensor& z = n.uniform->zero_point();
      ASSERT_TRUE(d.defined()) << n.name << " was never initialised";
      if (n.is_weight) {
        EXPECT_TRUE(torch::equal(d.reshape(d_ref.sizes()), d_ref)) << n.name << ".delta";
        EXPECT_TRUE(torch::equal(z.reshape(z_ref.sizes()), z_ref)) << n.name << ".zero_point";
        ++weights;
      } else {
        EXPECT_TRUE(torch::equal(z.reshape(z_ref.sizes()), z_ref)) << n.name << ".zero_point";
        act_rel.push_back(((d - d_ref).abs() / d_ref.abs()).max().item<double>());
      }
    }
    EXPECT_GT(weights, 0);
    if (!act_rel.empty()) {
      std::vector<double> sorted = act_rel;
      std::sort(sorted.begin(), sorted.end());
      EXPECT_LE(sorted[sorted.size() / 2], 0.05);
      std::printf("%s: %zu activation quantizers, Δ relative deviation median %.2g, max %.2g\n",
                  variant.c_str(), sorted.size(), sorted[sorted.size() / 2], sorted.back());
    }
    const torch::Tensor eps_ref = to_torch(ref.read("eps"));
    const torch::Tensor own = qnn.forward(x, t, eval_c);
    std::printf("%s: own initialisation: max |Δε| %.3g, mean %.3g\n", variant.c_str(),
                (own - eps_ref).abs().max().item<double>(), (own - eps_ref).abs().mean().item<double>());

    // With the stored parameters loaded.
    qnn.load_params(ref);
    const torch::Tensor eps = qnn.forward(x, t, eval_c);
    const double dmax = (eps - eps_ref).abs().max().item<double>(),
                 dmean = (eps - eps_ref).abs().mean().item<double>();
    if (act) {
      EXPECT_LE(dmean, acc.mean_abs);
      EXPECT_LE(dmax, acc.max_abs);
    } else {
      EXPECT_LE(dmax, acc.weight_only);
    }
    std::printf("%s: stored parameters: max |Δε| %.3g, mean %.3g\n", variant.c_str(), dmax, dmean);
  }
}

// BRECQ's units on the LDM UNets are q-diffusion's replaced blocks: every QuantResBlock and
// QuantBasicTransformerBlock of a variant's `quant_blocks` (the transformer with its attn1/attn2
// quantizers) is one unit, and every other quantized layer a unit of its own. Reconstructing a block
// unit of each kind lowers its output error.
TEST(GoldenLdmQDiff, ReconstructionUnitsAreTheReferenceBlocks) {
  DMEVAL_REQUIRE_GOLDEN();
  const json info =
      json::parse(python_json_text(read_text(golden_path("ldm/qdiff_quantmodel/variants.json"))));
  NpzReader calib = NpzReader::open(golden_path("ldm/qdiff_quantmodel/calib.npz"));
  std::set<std::string> seen_models;
  for (const json& v : info.at("variants")) {
    const std::string model_name = v.at("model");
    if (v.at("act_quant_params").is_null() || !seen_models.insert(model_name).second) continue;
    SCOPED_TRACE(model_name);
    std::shared_ptr<LdmModel> model = golden_model(model_name);
    // Units and reconstruction only: the weight grid from max (the variants' mse search, the slow part,
    // is what EveryVariant checks).
    UniformQuantizerSpec w = uniform_spec_from(v.at("weight_quant_params"));
    w.scale_method = "max";
    QuantizedUNet qnn(model, qdiffusion_plan(model->network(), w, uniform_spec_from(v.at("act_quant_params")),
                                             v.at("sm_abit").get<int>(), false));
    std::set<std::string> want;
    for (auto it = v.at("quant_blocks").begin(); it != v.at("quant_blocks").end(); ++it)
      if (it.value() == "QuantResBlock" || it.value() == "QuantBasicTransformerBlock") want.insert(it.key());
    ASSERT_FALSE(want.empty());
    std::set<std::string> blocks;
    int64_t layers_in_units = 0;
    std::vector<ReconUnit> units = reconstruction_units(qnn);
    for (const ReconUnit& u : units) {
      layers_in_units += static_cast<int64_t>(u.layers.size());
      if (u.kind == ReconUnit::Kind::kBlock) blocks.insert(u.name);
      if (u.name.find("transformer_blocks") != std::string::npos) EXPECT_EQ(u.attention.size(), 2u) << u.name;
    }
    EXPECT_EQ(blocks, want);
    EXPECT_EQ(layers_in_units, static_cast<int64_t>(qnn.layers().size()));  // every layer in exactly one unit

    const bool cond = model_name == "ldm_cond";
    const std::string pre = cond ? "cond_" : "uncond_";
    CalibSet set{to_torch(calib.read(pre + "x_c")), to_torch(calib.read(pre + "t_c")).to(torch::kFloat32),
                 cond ? to_torch(calib.read("cond_y_c")) : torch::Tensor()};
    {
      torch::NoGradGuard no_grad;
      qnn.set_quant_state(true, false);
      qnn.forward(set.x.slice(0, 0, 8), set.t.slice(0, 0, 8), set.slice(0, 8).cond());
    }
    ReconOptions o;
    o.iters = 30;
    o.batch_size = 8;
    std::set<std::string> kinds;
    for (ReconUnit& u : units) {
      if (u.kind != ReconUnit::Kind::kBlock) continue;
      const std::string kind = u.attention.empty() ? "res" : "transformer";
      if (!kinds.insert(kind).second) continue;
      ReconReport r = reconstruct(qnn, u, set, o);
      std::printf("%s (%s): nearest %.4g, AdaRound %.4g\n", u.name.c_str(), kind.c_str(), r.loss_before,
                  r.loss_after);
      EXPECT_LT(r.loss_after, r.loss_before) << u.name;
    }
    EXPECT_EQ(kinds.size(), cond ? 2u : 1u);
  }
}

}  // namespace
}  // namespace dmeval
