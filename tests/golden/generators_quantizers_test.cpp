// Every quantizer case of golden/generators/quantizers (cases.json): the uniform quantizers of
// q-diffusion, PTQD/BRECQ and PTQ4DM/QDrop (Δ and z bit-exact, codes exact, output = (code - z) Δ),
// AdaRound (α, hard codes, soft output, regulariser and temperature), BinaryDM's LSQ activation
// quantizer and binarised layers (outputs and gradients within 1e-5 relative, the MANIFEST's
// acceptance). Cases, inputs, call sequences and expected values all come from the data.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <regex>

#include "core/npy.h"
#include "core/torch_bridge.h"
#include "generators/quant/adaround.h"
#include "generators/quant/binarizer.h"
#include "generators/quant/lsq.h"
#include "generators/quant/uniform_quantizer.h"
#include "tests/support/golden.h"
#include "tests/support/quant_params.h"

namespace dmeval {
namespace {

using namespace dmeval::test;
using json = nlohmann::json;

class GoldenQuantCases : public ::testing::Test {
 protected:
  void SetUp() override {
    if (golden_dir().empty()) GTEST_SKIP() << "golden data not found";
    cases_ = json::parse(python_json_text(read_text(golden_path("generators/quantizers/cases.json"))));
    inputs_ = std::make_unique<NpzReader>(NpzReader::open(golden_path("generators/quantizers/inputs.npz")));
    // "Ports should match Δ and z exactly (or within 1 ulp) and the codes exactly"; float outputs
    // and gradients of BNN / LSQ "≤ 1e-5 relative" (MANIFEST, last section).
    auto tol = regex_find(read_text(golden_path("generators/MANIFEST.md")),
                          "BNN / LSQ float\\s+outputs and gradients ≤ ([0-9.e-]+) relative");
    ASSERT_TRUE(tol);
    float_rel_ = std::stod(*tol);
  }

  // "W", "A[:4]", "A[4:]"
  torch::Tensor input(const std::string& spec) {
    std::smatch m;
    std::string name = spec;
    int64_t lo = 0, hi = -1;
    if (std::regex_match(spec, m, std::regex(R"((\w+)\[(\d*):(\d*)\])"))) {
      name = m[1];
      if (m[2].length()) lo = std::stoll(m[2]);
      if (m[3].length()) hi = std::stoll(m[3]);
    }
    torch::Tensor t = to_torch(inputs_->read(name));
    if (hi < 0) hi = t.size(0);
    return t.slice(0, lo, hi).contiguous();
  }

  torch::Tensor expected(const std::string& file, const std::string& key) {
    auto it = files_.find(file);
    if (it == files_.end())
      it = files_
               .emplace(file, std::make_unique<NpzReader>(
                                  NpzReader::open(golden_path("generators/quantizers/" + file))))
               .first;
    return to_torch(it->second->read(key));
  }

  // Bit-exact, allowing one ulp (the MANIFEST's "exactly (or within 1 ulp)").
  static void expect_within_ulp(const torch::Tensor& got, const torch::Tensor& want,
                                const std::string& what) {
    ASSERT_EQ(got.numel(), want.numel()) << what;
    torch::Tensor g = got.detach().reshape(want.sizes()).to(torch::kFloat32).contiguous();
    torch::Tensor w = want.to(torch::kFloat32).contiguous();
    torch::Tensor ulps =
        (g.view(torch::kInt32).to(torch::kLong) - w.view(torch::kInt32).to(torch::kLong)).abs();
    // +0 and -0 are the same value
    ulps = torch::where(g.eq(w), torch::zeros_like(ulps), ulps);
    EXPECT_LE(ulps.max().item<int64_t>(), 1) << what;
  }
  static void expect_codes(const torch::Tensor& got, const torch::Tensor& want, const std::string& what) {
    ASSERT_EQ(got.numel(), want.numel()) << what;
    EXPECT_TRUE(torch::equal(got.detach().reshape(want.sizes()).to(torch::kLong), want.to(torch::kLong)))
        << what;
  }
  void expect_close(const torch::Tensor& got, const torch::Tensor& want, const std::string& what) const {
    ASSERT_EQ(got.numel(), want.numel()) << what;
    torch::Tensor g = got.detach().reshape(want.sizes()).to(torch::kFloat64), w = want.to(torch::kFloat64);
    const double scale = std::max(w.abs().max().item<double>(), 1e-30);
    EXPECT_LE((g - w).abs().max().item<double>(), float_rel_ * scale) << what;
  }

  json cases_;
  std::unique_ptr<NpzReader> inputs_;
  std::map<std::string, std::unique_ptr<NpzReader>> files_;
  double float_rel_ = 0;
};

TEST_F(GoldenQuantCases, UniformQuantizers) {
  const std::map<std::string, QuantFlavor> families = {{"qdiff_uaq", QuantFlavor::kQDiffusion},
                                                       {"ptqd_brecq_uaq", QuantFlavor::kBrecq},
                                                       {"ptq4dm_qdrop_uaq", QuantFlavor::kQDrop}};
  int checked = 0;
  for (const auto& c : cases_["cases"]) {
    auto fam = families.find(c.value("family", ""));
    if (fam == families.end()) continue;
    const std::string id = c["id"], file = c["file"], call = c["call"];
    SCOPED_TRACE(id);
    UniformQuantizer q(uniform_spec_from(c["ctor"], fam->second));
    torch::Tensor x;
    if (call.rfind("q(x) once", 0) == 0) {
      x = input(c["input"]);
      q.forward(x);
    } else if (call.rfind("q(A[:4]) to initialise; then running_stat=True; out = q(A[4:])", 0) == 0) {
      q.forward(input("A[:4]"));
      expect_within_ulp(q.delta(), expected(file, id + ".delta_init"), "delta_init");
      expect_within_ulp(q.zero_point(), expected(file, id + ".zero_point_init"), "zero_point_init");
      q.set_running_stat(true);
      x = input("A[4:]");
      q.forward(x);
    } else if (call == "q.set_inited(False); q(x); q.set_inited(True)") {
      x = input(c["input"]);
      q.set_inited(false);
      q.forward(x);
      q.set_inited(true);
    } else if (call == "q.set_inited(False); q(A[:4]); q(A[4:]); q.set_inited(True); out = q(A)") {
      q.set_inited(false);
      q.forward(input("A[:4]"));
      expect_within_ulp(q.delta(), expected(file, id + ".delta_after_batch1"), "delta after batch 1");
      expect_within_ulp(q.zero_point(), expected(file, id + ".zero_point_after_batch1"),
                        "zero point after batch 1");
      q.forward(input("A[4:]"));
      q.set_inited(true);
      x = input("A");
    } else {
      ADD_FAILURE() << "unknown call sequence: " << call;
      continue;
    }
    expect_within_ulp(q.delta(), expected(file, id + ".delta"), "delta");
    expect_within_ulp(q.zero_point(), expected(file, id + ".zero_point"), "zero_point");
    torch::Tensor code = expected(file, id + ".code");
    expect_codes(q.codes(x), code, "codes");
    // The output is exactly (code - z) * Δ.
    torch::Tensor out = q.forward(x);
    EXPECT_TRUE(torch::equal(out.detach(), (q.codes(x) - q.zero_point()) * q.delta())) << "output";
    ++checked;
  }
  EXPECT_GT(checked, 100);
}

TEST_F(GoldenQuantCases, AdaRound) {
  int checked = 0;
  for (const auto& c : cases_["cases"]) {
    if (c.value("family", "") != "qdiff_adaround") continue;
    const std::string id = c["id"], file = c["file"];
    SCOPED_TRACE(id);
    const auto& b = c["base_quantizer"];
    UniformQuantizerSpec spec;
    spec.flavor = QuantFlavor::kQDiffusion;
    spec.bits = b["n_bits"];
    spec.channel_wise = b["channel_wise"];
    spec.scale_method = b["scale_method"];
    torch::Tensor w = input(c["input"]);
    UniformQuantizer base(spec);
    base.forward(w);
    AdaRoundQuantizer ada(base, w);
    expect_within_ulp(ada.delta(), expected(file, id + ".delta"), "delta");
    expect_within_ulp(ada.zero_point(), expected(file, id + ".zero_point"), "zero_point");
    for (const auto& k : c["keys"])
      if (k == id + ".alpha") expect_close(ada.alpha(), expected(file, id + ".alpha"), "alpha");
    torch::Tensor hard = ada.hard_codes(w);
    expect_codes(hard, expected(file, id + ".code_hard"), "hard codes");
    if (c.value("hard_equals_uniform_round", false))
      expect_codes(hard, base.codes(w), "hard = nearest at init");
    ada.soft = true;
    torch::Tensor soft = ada.forward(w);
    expect_close(soft, expected(file, id + ".soft_out"), "soft output");
    const auto& h = c["h_stats"];
    EXPECT_NEAR(ada.soft_targets().sum().item<double>(), h["sum"].get<double>(),
                1e-3 * std::abs(h["sum"].get<double>()));
    if (c.contains("loss_function")) {
      const auto& lf = c["loss_function"];
      const auto& lc = lf["ctor"];
      ASSERT_EQ(lf["pred"], "conv2d(Xc, soft_out, bc, padding=1)");
      ASSERT_EQ(lf["tgt"], "conv2d(Xc, W, bc, padding=1)");
      AdaRoundLoss loss;
      loss.weight = lc["weight"];
      loss.max_count = lc["max_count"];
      loss.b_start = lc["b_range"][0];
      loss.b_end = lc["b_range"][1];
      loss.warmup = lc["warmup"];
      loss.decay_start = lc["decay_start"];
      loss.p = lc["p"];
      torch::Tensor xc = input("Xc"), bc = input("bc");
      torch::NoGradGuard no_grad;
      torch::Tensor pred = torch::conv2d(xc, soft, bc, 1, 1), tgt = torch::conv2d(xc, w, bc, 1, 1);
      const double rec = lp_loss(pred, tgt, loss.p, false).item<double>();
      EXPECT_NEAR(rec, lf["rec_loss_lp_p2_none"].get<double>(), float_rel_ * rec);
      for (const auto& [count, want] : lf["temp_decay_at"].items())
        EXPECT_DOUBLE_EQ(loss.temperature(std::stoll(count)), want.get<double>())
            << "temperature at " << count;
      for (const auto& [count, want] : lf["total_loss_at_count"].items()) {
        const double got = loss(pred, tgt, ada, std::stoll(count)).item<double>();
        EXPECT_NEAR(got, want.get<double>(), float_rel_ * std::abs(want.get<double>()))
            << "loss at " << count;
      }
    }
    ++checked;
  }
  EXPECT_EQ(checked, 2);
}

TEST_F(GoldenQuantCases, BinaryDmLsq) {
  int checked = 0;
  for (const auto& c : cases_["cases"]) {
    if (c.value("family", "") != "binarydm_lsq") continue;
    const std::string id = c["id"], file = c["file"], call = c["call"];
    SCOPED_TRACE(id);
    const int bits = c.contains("ctor") && c["ctor"].is_object() ? c["ctor"]["nbits_a"].get<int>()
                                                                 : (c["Qp"].get<int>() == 127 ? 8 : 4);
    LsqActQuantizer q(bits);
    if (c.contains("Qn")) {
      EXPECT_EQ(q.qn(), c["Qn"].get<int64_t>());
      EXPECT_EQ(q.qp(), c["Qp"].get<int64_t>());
    }
    torch::Tensor x = input(c["input"]);
    if (call.rfind("q(x)", 0) == 0) {
      LsqResult r = q.forward(x);
      expect_codes(r.codes, expected(file, id + ".code"), "codes");
      expect_within_ulp(r.alpha, expected(file, id + ".alpha"), "alpha");
      EXPECT_TRUE(torch::equal(r.out.detach(), r.codes * r.alpha.detach()));
    } else if (call == "out = q(x); out.backward(G)" ||
               call ==
                   "al = grad_scale(alpha, g); out = round_pass((x/al).clamp(Qn,Qp))*al; out.backward(G)") {
      x.requires_grad_(true);
      LsqResult r;
      if (call[0] == 'o') {
        r = q.forward(x);
        expect_within_ulp(r.alpha, expected(file, id + ".alpha"), "alpha");
      } else {
        const double g = 1.0 / std::sqrt(static_cast<double>(x.numel()) * static_cast<double>(q.qp()));
        EXPECT_DOUBLE_EQ(g, c["g"].get<double>());
        r = q.forward_with_alpha(
            x, torch::full({1}, c["alpha"].get<double>(), torch::kFloat32).requires_grad_(true));
      }
      r.out.backward(input(c["upstream_grad"]));
      expect_close(r.out, expected(file, id + ".out"), "out");
      expect_close(x.grad(), expected(file, id + ".x_grad"), "x grad");
      expect_close(r.alpha.grad(), expected(file, id + ".alpha_grad"), "alpha grad");
    } else {
      ADD_FAILURE() << "unknown call sequence: " << call;
      continue;
    }
    ++checked;
  }
  EXPECT_EQ(checked, 6);
}

TEST_F(GoldenQuantCases, BinaryDmBinarizedLayers) {
  int checked = 0;
  for (const auto& c : cases_["cases"]) {
    if (c.value("family", "") != "binarydm_bnn") continue;
    const std::string id = c["id"], file = c["file"], cls = c["class"];
    SCOPED_TRACE(id);
    const auto& ctor = c["ctor"];
    const auto& then = c["then"];
    const int order = ctor["order"];
    const int64_t padding = ctor.value("padding", 0);
    torch::Tensor w = input(then["weight"]).requires_grad_(true),
                  b = input(then["bias"]).requires_grad_(true);
    const bool binary_act = then["binary_act"], full = then["precision"] == "full";
    WeightBinarizer bin(order);
    LsqActQuantizer act(8);  // _ActQ() default
    torch::Tensor x_quant, bw;
    auto run = [&](const torch::Tensor& x) {
      if (full) {
        bw = w;
        x_quant = x;
      } else {
        x_quant = binary_act ? act.forward(x).out : x;
        bw = bin.forward(w);
      }
      if (cls == "ours_util.BNNConv2d") return torch::conv2d(x_quant, bw, b, 1, padding);
      if (cls == "ours_util.BNNConv1d") return torch::conv1d(x_quant, bw, b, 1, padding);
      if (cls == "ours_util.BNNLinear") return torch::linear(x_quant, bw, b);
      ADD_FAILURE() << "unknown class " << cls;
      return torch::Tensor();
    };
    torch::Tensor x = input(c["input"]);
    torch::Tensor out = run(x);
    if (!out.defined()) continue;
    std::set<std::string> keys;
    for (const auto& k : c["keys"]) keys.insert(k.get<std::string>().substr(id.size() + 1));
    if (keys.count("out")) expect_close(out, expected(file, id + ".out"), "out");
    if (keys.count("bw")) expect_close(bw, expected(file, id + ".bw"), "binarised weight");
    if (keys.count("x_quant")) expect_close(x_quant, expected(file, id + ".x_quant"), "quantized input");
    if (keys.count("scaling_first_order"))
      expect_close(bin.s1(), expected(file, id + ".scaling_first_order"), "first-order scale");
    if (keys.count("scaling_second_order"))
      expect_close(bin.s2(), expected(file, id + ".scaling_second_order"), "second-order scale");
    if (c.value("second_call_identical", false)) EXPECT_TRUE(torch::equal(run(x).detach(), out.detach()));
    if (c.contains("upstream_grad")) {
      out.backward(input(c["upstream_grad"]));
      expect_close(w.grad(), expected(file, id + ".weight_grad"), "weight grad");
      expect_close(b.grad(), expected(file, id + ".bias_grad"), "bias grad");
      expect_close(bin.s1().grad(), expected(file, id + ".scaling_first_order_grad"), "s1 grad");
      if (order == 2)
        expect_close(bin.s2().grad(), expected(file, id + ".scaling_second_order_grad"), "s2 grad");
    }
    ++checked;
  }
  EXPECT_EQ(checked, 11);
}

TEST_F(GoldenQuantCases, EveryCaseBelongsToAFamily) {
  const std::set<std::string> known = {"qdiff_uaq",      "ptqd_brecq_uaq", "ptq4dm_qdrop_uaq",
                                       "qdiff_adaround", "binarydm_lsq",   "binarydm_bnn"};
  for (const auto& c : cases_["cases"]) EXPECT_TRUE(known.count(c.value("family", ""))) << c.value("id", "?");
}

}  // namespace
}  // namespace dmeval
