// q-diffusion's QuantModel checked layer by layer (every golden generators/<dir>/layers.json: the
// reference's recorded input of every activation quantizer, made by tests/oracle/qdiff_layers.py).
// dmeval runs the variant's call sequence with each activation quantizer fed the reference's input
// (teacher forcing, UniformQuantizer::input_tap), so float summation differences never accumulate:
//   * initialised from the reference's input, every activation quantizer's Δ and z equal the
//     reference's bit for bit (weights' Δ/z are golden_quant_qdiff_model's);
//   * on the reference's input, its codes equal the reference's everywhere;
//   * the input dmeval computes from the reference's upstream inputs lies within the UNet
//     intermediates' acceptance of the reference's (MANIFEST: "UNet ε and intermediates: max abs ≤
//     1e-4"), and the codes dmeval computes from it differ from the reference's only where the
//     reference's pre-rounding value lies within that distance (in code units: acceptance / Δ) of a
//     rounding tie, and then by one; those elements are counted and reported;
//   * the network output is within the same acceptance of the reference's.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <filesystem>
#include <map>

#include "core/hash.h"
#include "core/npy.h"
#include "core/torch_bridge.h"
#include "generators/ddim/ddim_model.h"
#include "generators/ddim/ddim_unet.h"
#include "generators/ddim/unet_weights.h"
#include "generators/quant/quantized_unet.h"
#include "tests/support/golden.h"
#include "tests/support/numeric_checks.h"
#include "tests/support/quant_params.h"

namespace dmeval {
namespace {

using namespace dmeval::test;
using json = nlohmann::json;

// "UNet ε and intermediates: max abs ≤ 1e-4" from the MANIFEST beside the layer data.
double intermediates_acceptance(const std::string& manifest) {
  auto tol = regex_find(read_text(manifest), "UNet ε and intermediates: max abs ≤ ([0-9.e-]+)");
  EXPECT_TRUE(tol) << manifest << " states no acceptance for UNet intermediates";
  return tol ? std::stod(*tol) : 0.0;
}

TEST(GoldenQuantLayers, QDiffusionTeacherForced) {
  DMEVAL_REQUIRE_GOLDEN();
  const auto dirs = golden_dirs_with("generators", "layers.json");
  ASSERT_FALSE(dirs.empty()) << "no layer-by-layer golden data (tests/data/golden/generators/*/layers.json)";
  torch::NoGradGuard no_grad;
  int64_t variants_checked = 0;
  for (const std::string& dir : dirs) {
    SCOPED_TRACE(dir);
    const std::filesystem::path p(dir);
    const double tol = intermediates_acceptance((p.parent_path() / "MANIFEST.md").string());
    const json meta = json::parse(read_text(dir + "/layers.json"));
    const std::string name = p.filename().string();
    const std::string variants_file = find_in_golden_roots("generators/" + name + "/variants.json");
    const std::string unet_dir = find_in_golden_roots("generators/" + meta["unet_dir"].get<std::string>());
    // Records of another golden set (e.g. the shared one while DMEVAL_GOLDEN_DIR points elsewhere)
    // do not apply: said, not failed; the project's own records always apply (checked below).
    if (variants_file.empty() || unet_dir.empty() ||
        sha256_file(unet_dir + "/weights.pt") != meta["unet_weights_sha256"].get<std::string>()) {
      std::printf("%s: its UNet (%s, weights %s) is not in the golden roots: not applicable\n", dir.c_str(),
                  meta["unet_dir"].get<std::string>().c_str(),
                  meta["unet_weights_sha256"].get<std::string>().c_str());
      continue;
    }
    const json variants = json::parse(python_json_text(read_text(variants_file)));
    const ModelConfig cfg = read_ddim_yaml(unet_dir + "/config.json");
    for (const auto& lv : meta["variants"]) {
      const std::string file = lv["variant"];
      SCOPED_TRACE(file);
      json v;
      for (const auto& c : variants["variants"])
        if (c["file"] == file) v = c;
      ASSERT_FALSE(v.is_null()) << "variant not in " << variants_file;
      ASSERT_FALSE(v["act_quant_params"].is_null());
      NpzReader ref = NpzReader::open(dir + "/layers_" + file);
      const bool init_from_eval = lv["init_input"] == "eval";
      ASSERT_TRUE(init_from_eval) << "only layer data initialised on the evaluation input is read here";
      const torch::Tensor x = to_torch(ref.read("eval/x")), t = to_torch(ref.read("eval/t"));

      DdimUNet unet(cfg.unet);
      UNetWeightsOptions wo;
      wo.hash = false;
      load_unet_weights(*unet, unet_dir + "/weights.pt", wo);
      unet->eval();
      QuantizedUNet qnn(
          DdimModel::wrap(unet),
          qdiffusion_plan(*unet, uniform_spec_from(v["weight_quant_params"]),
                          uniform_spec_from(v["act_quant_params"]), v["sm_abit"], v["split_shortcut"]));
      // The variant's call sequence (golden_quant_qdiff_model checks the weight side).
      qnn.set_quant_state(true, false);
      qnn.forward(x, t);
      if (v["adaround_perturbed"].get<bool>()) {
        qnn.convert_adaround();
        at::Generator g =
            at::make_generator<at::CPUGeneratorImpl>(variants["calib_seed"].get<uint64_t>() + 1);
        for (auto& n : qnn.quantizers())
          if (n.adaround) n.adaround->alpha().add_(2 * torch::randn(n.adaround->alpha().sizes(), g));
      }
      qnn.set_quant_state(true, true);

      // Taps on every activation quantizer, in the reference's order.
      std::map<std::string, UniformQuantizer*> acts;
      for (auto& n : qnn.quantizers())
        if (!n.is_weight) acts[n.name] = n.uniform;
      const auto order = lv["quantizers"].get<std::vector<std::string>>();
      ASSERT_EQ(order.size(), acts.size()) << "activation quantizer count";
      std::string phase = "init";
      bool inside = false;
      std::vector<std::string> seen;
      CodeCheck total;
      double worst_input = 0;
      for (const std::string& q : order) {
        ASSERT_TRUE(acts.count(q)) << "dmeval has no quantizer " << q;
        UniformQuantizer* u = acts[q];
        const torch::Tensor x_ref = to_torch(ref.read("eval/" + q + "/input"));
        u->input_tap = [&, q, u, x_ref](const torch::Tensor& mine) -> torch::Tensor {
          if (inside) return mine;  // the check's own calls of forward() below
          EXPECT_EQ(mine.sizes(), x_ref.sizes()) << q << ": input shape";
          if (mine.sizes() != x_ref.sizes()) return mine;
          const double dev =
              (mine.to(torch::kFloat64) - x_ref.to(torch::kFloat64)).abs().max().item<double>();
          EXPECT_LE(dev, tol) << q << " (" << phase
                              << "): input computed from the reference's upstream inputs";
          worst_input = std::max(worst_input, dev);
          if (phase == "init") {
            seen.push_back(q);
          } else {
            const torch::Tensor want = to_torch(ref.read("eval/" + q + "/code"));
            // The quantizer's own forward on both inputs; codes from its output as the driver took them.
            inside = true;
            const torch::Tensor on_ref = u->forward(x_ref).detach(), on_mine = u->forward(mine).detach();
            inside = false;
            auto codes_of = [&](const torch::Tensor& out) {
              return (out / u->delta()).round() + u->zero_point();
            };
            EXPECT_TRUE(torch::equal(codes_of(on_ref).to(torch::kInt16), want))
                << q << ": codes of the reference's input differ from the reference's";
            EXPECT_TRUE(torch::equal(u->codes(x_ref).to(torch::kInt16), want)) << q << ": codes()";
            const torch::Tensor delta = u->delta().to(torch::kFloat64);
            const CodeCheck c =
                compare_codes(codes_of(on_mine), want, tie_distance(x_ref / u->delta()), tol / delta);
            EXPECT_EQ(c.differ_off_tie, 0) << q << ": codes differ away from a rounding tie";
            EXPECT_LE(c.max_step, 1) << q;
            total += c;
          }
          return x_ref;
        };
      }
      qnn.forward(x, t);  // initialises every activation quantizer on the reference's input
      EXPECT_EQ(seen, order) << "quantizers initialised in another order";
      for (const std::string& q : order) {
        const torch::Tensor d = to_torch(ref.read("init/" + q + "/delta")),
                            z = to_torch(ref.read("init/" + q + "/zero_point"));
        EXPECT_TRUE(torch::equal(acts[q]->delta().reshape(d.sizes()), d)) << q << ".delta";
        EXPECT_TRUE(torch::equal(acts[q]->zero_point().reshape(z.sizes()).to(torch::kFloat32), z))
            << q << ".zero_point";
      }
      phase = "eval";
      const torch::Tensor eps = qnn.forward(x, t);
      const double d_eps = (eps - to_torch(ref.read("eval/eps"))).abs().max().item<double>();
      EXPECT_LE(d_eps, tol) << "network output";
      EXPECT_GT(total.elements, 0);
      std::printf("%s/%s: %s; worst input deviation %.3g (acceptance %.3g); output %.3g\n", name.c_str(),
                  file.c_str(), describe(total, static_cast<int64_t>(order.size())).c_str(), worst_input, tol,
                  d_eps);
      for (auto& [n, u] : acts) u->input_tap = nullptr;
      ++variants_checked;
    }
  }
  EXPECT_GT(variants_checked, 0);
}

}  // namespace
}  // namespace dmeval
