// golden_bi_diffsr_network: BI-DiffSR's UNet against $DMEVAL_GOLDEN_DIR/bi_diffsr (MANIFEST.md), data-driven:
// the tiny network is built from config.json and loads net_g_tiny.pth strictly (every key and shape of
// weights_keys.json); ε for every timestep of forward.npz (with its timestep group) and the batch-element-0
// group quirk pair; every top-level module's output of intermediates.npz (the reference's hooks) from the
// hooked input; and the official x2/x4 network built from its recorded config has exactly the recorded
// keys, shapes and parameter count. Tolerance: the MANIFEST's "|Δε| ≤ 1e-4 for forward and intermediates".
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "core/hash.h"
#include "core/image.h"
#include "core/npy.h"
#include "core/torch_bridge.h"
#include "generators/bi_diffsr/bi_diffsr_sampler.h"
#include "generators/bi_diffsr/bi_diffsr_unet.h"
#include "generators/bi_diffsr/sr3_unet.h"
#include "tests/support/golden.h"
#include "tests/support/numeric_checks.h"

namespace dmeval {
namespace {

using json = nlohmann::json;
using test::golden_path;
using test::read_text;

// A Markdown file's text with its line breaks as spaces (stated rules may wrap).
std::string one_line(std::string text) {
  for (char& ch : text)
    if (ch == '\n') ch = ' ';
  return text;
}

double max_abs(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.detach().to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

class GoldenBiDiffSrNetwork : public ::testing::Test {
 protected:
  void SetUp() override {
    DMEVAL_REQUIRE_GOLDEN();
    const std::string manifest = one_line(read_text(golden_path("bi_diffsr/MANIFEST.md")));
    auto tol = test::regex_find(manifest, R"(\|Δε\| ≤ ([0-9.e-]+) for forward and intermediates)");
    ASSERT_TRUE(tol.has_value()) << "MANIFEST.md states no forward tolerance";
    tol_ = std::stod(*tol);
    const json cfg = json::parse(read_text(golden_path("bi_diffsr/config.json")));
    net_ = BiDiffSrUNet(bi_diffsr_config_from_json(cfg.at("network_g"), "config.json"));
    net_->eval();
    EXPECT_EQ(load_bi_diffsr_weights(*net_, golden_path("bi_diffsr/net_g_tiny.pth")), "params");
  }
  double tol_ = 0;
  BiDiffSrUNet net_{nullptr};
};

TEST_F(GoldenBiDiffSrNetwork, KeysAndShapesAreTheReferences) {
  const json keys = json::parse(read_text(golden_path("bi_diffsr/weights_keys.json")));
  const json info = json::parse(read_text(golden_path("bi_diffsr/run_info.json")));
  EXPECT_EQ(sha256_file(golden_path("bi_diffsr/net_g_tiny.pth")),
            info.at("sha256_checkpoint").get<std::string>());
  auto params = net_->named_parameters(true);
  int64_t n = 0;
  for (const auto& p : params) n += p.value().numel();
  EXPECT_EQ(n, info.at("n_params").get<int64_t>());
  EXPECT_EQ(params.size(), keys.size());
  for (const auto& k : keys) {
    const std::string name = k.at(0);
    ASSERT_TRUE(params.contains(name)) << name;
    EXPECT_EQ(params[name].sizes().vec(), k.at(1).get<std::vector<int64_t>>()) << name;
  }
}

TEST_F(GoldenBiDiffSrNetwork, EpsForEveryTimestepAndTheGroupQuirk) {
  NpzReader z = NpzReader::open(golden_path("bi_diffsr/forward.npz"));
  auto get = [&](const std::string& k) { return to_torch(z.read(k)); };
  const torch::Tensor x = get("x"), c = get("c"), t = get("t"), group = get("group"), eps = get("eps");
  torch::NoGradGuard no_grad;
  for (int64_t i = 0; i < t.numel(); ++i) {
    const int64_t ti = t[i].item<int64_t>();
    EXPECT_EQ(net_->group_of(ti), group[i].item<int64_t>()) << "t " << ti;
    const torch::Tensor tt = torch::full({x.size(0), 1}, ti, torch::kLong);
    EXPECT_LE(max_abs(net_->forward(x, c, tt), eps[i]), tol_) << "t " << ti;
  }
  // One call with differing timesteps uses element 0's group for both; separate calls each their own.
  const torch::Tensor qt = get("quirk_t").reshape({-1, 1}).to(torch::kLong);
  EXPECT_LE(max_abs(net_->forward(x, c, qt), get("quirk_eps_batched")), tol_);
  const torch::Tensor single = get("quirk_eps_single");
  for (int64_t b = 0; b < x.size(0); ++b)
    EXPECT_LE(max_abs(net_->forward(x.slice(0, b, b + 1), c.slice(0, b, b + 1), qt.slice(0, b, b + 1)),
                      single.slice(0, b, b + 1)),
              tol_)
        << "element " << b;
}

TEST_F(GoldenBiDiffSrNetwork, TopLevelModulesMatchTheReferenceHooks) {
  NpzReader z = NpzReader::open(golden_path("bi_diffsr/intermediates.npz"));
  auto get = [&](const std::string& k) { return to_torch(z.read(k)); };
  // The hooked call's inputs: downs.0 sees cat[c, x]; the sinusoid sees the timesteps.
  const torch::Tensor in = get("downs.0|in0");
  const int64_t half = in.size(1) / 2;
  const torch::Tensor c = in.slice(1, 0, half), x = in.slice(1, half);
  const torch::Tensor t = get("timestep_level_mlp.0|in0").reshape({-1, 1}).to(torch::kLong);
  std::vector<std::pair<std::string, torch::Tensor>> trace;
  torch::NoGradGuard no_grad;
  net_->forward_traced(x, c, t, &trace);
  int checked = 0;
  for (const auto& [name, value] : trace) {
    if (!z.contains(name + "|out")) continue;
    EXPECT_LE(max_abs(value, get(name + "|out")), tol_) << name;
    ++checked;
  }
  EXPECT_GE(checked, static_cast<int>(trace.size()) - 1) << "hooked modules missing from the golden file";
  EXPECT_LE(max_abs(bi_diffsr_timestep_embedding(t.reshape({-1}), net_->config().inner_channel),
                    get("timestep_level_mlp.0|out")),
            tol_);
  // Inner modules on the reference's own inputs: every hooked BIConv call (its parts, its binarised
  // weight) and the attention.
  const auto modules = net_->named_modules("", false);
  int inner = 0;
  for (const std::string& key : z.names()) {
    const size_t bar = key.find('|');
    if (bar == std::string::npos || key.substr(bar) != "|in1_int") continue;  // a BIConv call: input, group
    const std::string name = key.substr(0, bar);
    const std::string last = name.substr(name.rfind('.') + 1);
    if (last != "conv" && last.rfind("biconv", 0) != 0) continue;  // top-level blocks take the group too
    ASSERT_TRUE(modules.contains(name)) << name;
    const int64_t g = get(key).reshape({-1})[0].item<int64_t>();
    std::map<std::string, torch::Tensor> parts;
    EXPECT_LE(max_abs(bi_diffsr_run_inner(*modules[name], get(name + "|in0"), g, &parts), get(name + "|out")),
              tol_)
        << name;
    const std::pair<std::string, std::string> hooked[] = {{"TaR", "TaR.dynamic_move_" + std::to_string(g)},
                                                          {"binary_activation", "binary_activation"},
                                                          {"binary_conv", "binary_conv"},
                                                          {"TaA", "TaA.dynamic_relu_" + std::to_string(g)}};
    for (const auto& [part, module] : hooked)
      if (z.contains(name + "." + module + "|out"))
        EXPECT_LE(max_abs(parts.at(part), get(name + "." + module + "|out")), tol_) << name << "." << module;
    if (z.contains(name + ".binary_conv|w_ideal"))
      EXPECT_LE(max_abs(parts.at("w_ideal"), get(name + ".binary_conv|w_ideal")), tol_) << name << " w_ideal";
    // The reference's straight-through weight differs from α·sign(W) by at most one rounding (quirk Q2).
    if (z.contains(name + ".binary_conv|w_ste"))
      EXPECT_LE(max_abs(parts.at("w_ideal"), get(name + ".binary_conv|w_ste")), tol_) << name << " w_ste";
    ++inner;
  }
  EXPECT_GE(inner, 2);
  ASSERT_TRUE(modules.contains("mid.0.attn"));
  EXPECT_LE(
      max_abs(bi_diffsr_run_inner(*modules["mid.0.attn"], get("mid.0.attn|in0"), 0), get("mid.0.attn|out")),
      tol_);
}

// The scheduler of the run and of the official configuration, then the whole sampling loop from the
// reference's x_T on its padded condition: every step's input, ε, x0 (before and after clipping) and
// x_prev, the cropped result and its uint8 conversion. Tolerance (MANIFEST): states ≤ 1e-4·(1 + |value|),
// x0 before clipping scaled by sqrt((1 − ᾱ)/ᾱ), the uint8 image equal except ±1 at rounding ties.
TEST_F(GoldenBiDiffSrNetwork, SchedulerAndSamplingLoop) {
  const json cfg = json::parse(read_text(golden_path("bi_diffsr/config.json"))).at("beta_schedule");
  const int64_t T = cfg.at("n_timestep"), S = cfg.at("num_inference_steps");
  const BiDiffSrSchedule sched = bi_diffsr_schedule(T, cfg.at("linear_start"), cfg.at("linear_end"));
  NpzReader zs = NpzReader::open(golden_path("bi_diffsr/schedule.npz"));
  auto sget = [&](const std::string& k) { return to_torch(zs.read(k)); };
  // linspace's vectorised and scalar kernels round differently: betas kernel-exact. ᾱ then carries each β's
  // difference (relative Δβ/(1−β)) plus one float32 rounding per product.
  EXPECT_TRUE(test::kernel_equal(sched.betas, sget("betas"))) << "betas";
  {
    const torch::Tensor b = sget("betas").to(torch::kFloat64);
    const torch::Tensor dbeta = b.abs().max() * std::ldexp(1.0, -23) * test::kKernelUlps / (1 - b);
    const torch::Tensor steps = torch::arange(1, b.numel() + 1, torch::kFloat64);
    const torch::Tensor ac = sget("alphas_cumprod").to(torch::kFloat64);
    const torch::Tensor bound = ac * (dbeta.cumsum(0) + steps * std::ldexp(1.0, -24));
    for (const char* k : {"alphas_cumprod", "official_alphas_cumprod"})
      EXPECT_TRUE(((sched.alphas_cumprod.to(torch::kFloat64) - sget(k).to(torch::kFloat64)).abs() <= bound)
                      .all()
                      .item<bool>())
          << k;
  }
  auto as_vector = [](const torch::Tensor& t) {
    std::vector<int64_t> v;
    for (int64_t i = 0; i < t.numel(); ++i) v.push_back(t[i].item<int64_t>());
    return v;
  };
  EXPECT_EQ(bi_diffsr_timesteps(T, S), as_vector(sget("timesteps")));
  const int64_t official_steps = sget("official_timesteps_S50").numel();
  EXPECT_EQ(bi_diffsr_timesteps(T, official_steps), as_vector(sget("official_timesteps_S50")));

  NpzReader z = NpzReader::open(golden_path("bi_diffsr/sampling.npz"));
  auto get = [&](const std::string& k) { return to_torch(z.read(k)); };
  int64_t ph = 0, pw = 0;
  const torch::Tensor padded = bi_diffsr_pad(get("lq"), 8, &ph, &pw);
  EXPECT_EQ((std::vector<int64_t>{ph, pw}), as_vector(get("pad_hw")));
  EXPECT_LE(max_abs(padded, get("lq_padded")), 0.0) << "reflect padding";
  const torch::Tensor group = get("group"), x_t = get("x_t"), eps = get("eps"), x0p = get("x0_pred"),
                      x0c = get("x0_clipped"), x_prev = get("x_prev");
  auto within = [&](const torch::Tensor& got, const torch::Tensor& want, double factor) {
    torch::Tensor bound = tol_ * factor * (1 + want.abs());
    return ((got.to(torch::kFloat64) - want.to(torch::kFloat64)).abs() <= bound).all().item<bool>();
  };
  size_t steps_seen = 0;
  torch::Tensor out = bi_diffsr_sample(
      *net_, sched, S, padded, get("x_T"),
      [&](size_t i, int64_t t, const torch::Tensor& xt, const torch::Tensor& e, const BiDiffSrStep& st) {
        SCOPED_TRACE("step " + std::to_string(i) + ", t " + std::to_string(t));
        const int64_t k = static_cast<int64_t>(i);
        EXPECT_EQ(net_->group_of(t), group[k].item<int64_t>());
        const double a = sched.alphas_cumprod[t].item<double>();
        EXPECT_TRUE(within(xt, x_t[k], 1)) << "x_t: " << max_abs(xt, x_t[k]);
        EXPECT_TRUE(within(e, eps[k], 1)) << "eps: " << max_abs(e, eps[k]);
        EXPECT_TRUE(within(st.x0_pred, x0p[k], std::max(1.0, std::sqrt((1 - a) / a))))
            << "x0: " << max_abs(st.x0_pred, x0p[k]);
        EXPECT_TRUE(within(st.x0_clipped, x0c[k], std::max(1.0, std::sqrt((1 - a) / a))))
            << "x0 clipped: " << max_abs(st.x0_clipped, x0c[k]);
        EXPECT_TRUE(within(st.x_prev, x_prev[k], std::max(1.0, std::sqrt((1 - a) / a))))
            << "x_prev: " << max_abs(st.x_prev, x_prev[k]);
        ++steps_seen;
      });
  EXPECT_EQ(static_cast<int64_t>(steps_seen), S);
  const torch::Tensor sr = out.slice(2, 0, out.size(2) - ph).slice(3, 0, out.size(3) - pw);
  EXPECT_TRUE(within(sr, get("sr_float"), 1)) << "sr: " << max_abs(sr, get("sr_float"));
  const torch::Tensor u8 = bi_diffsr_to_uint8_bgr(sr[0]), want8 = get("sr_uint8_bgr");
  const torch::Tensor diff = (u8.to(torch::kInt32) - want8.to(torch::kInt32)).abs();
  EXPECT_LE(diff.max().item<int64_t>(), 1);
  // A ±1 only where the reference's float value lies at a rounding tie within the state tolerance
  // (tol · (1 + |v|) with |v| <= 1 after clamping, in levels of 1/255).
  torch::Tensor level =
      get("sr_float")[0].clamp(0, 1).flip({0}).permute({1, 2, 0}).to(torch::kFloat64) * 255.0;
  torch::Tensor tie = ((level - level.floor()) - 0.5).abs() <= 255.0 * tol_ * 2;
  EXPECT_EQ((diff.gt(0) & ~tie).sum().item<int64_t>(), 0) << "uint8 values differ away from a rounding tie";
  // sr.png is the reference's saved result: the same pixels (RGB in the file).
  const Image png = decode_image_file(golden_path("bi_diffsr/sr.png"));
  const torch::Tensor file =
      torch::from_blob(const_cast<uint8_t*>(png.pixels.data()), {png.height, png.width, 3}, torch::kUInt8)
          .flip({2});
  EXPECT_TRUE(torch::equal(file, want8)) << "sr.png differs from sr_uint8_bgr";
}

TEST(GoldenBiDiffSrOfficial, TheReleasedNetworksKeysShapesAndSize) {
  DMEVAL_REQUIRE_GOLDEN();
  const json off = json::parse(read_text(golden_path("bi_diffsr/official_x2_x4_state_dict.json")));
  torch::NoGradGuard no_grad;
  BiDiffSrUNet net(bi_diffsr_config_from_json(off.at("config"), "official_x2_x4_state_dict.json"));
  auto params = net->named_parameters(true);
  EXPECT_EQ(static_cast<int64_t>(params.size()), off.at("n_tensors").get<int64_t>());
  int64_t n = 0;
  for (const auto& p : params) n += p.value().numel();
  EXPECT_EQ(n, off.at("n_params").get<int64_t>());
  for (const auto& k : off.at("keys")) {
    const std::string name = k.at(0);
    ASSERT_TRUE(params.contains(name)) << name;
    EXPECT_EQ(params[name].sizes().vec(), k.at(1).get<std::vector<int64_t>>()) << name;
  }
}

// Table 2's Params and OPs of the released network (spec §8): the counts of params_ops_official.json, the
// attention and GroupNorm figures the MANIFEST adds, and the spec's totals, from one pass of dmeval's
// network.
TEST(GoldenBiDiffSrOfficial, ParamsAndOpsAsTable2CountsThem) {
  DMEVAL_REQUIRE_GOLDEN();
  const json off = json::parse(read_text(golden_path("bi_diffsr/official_x2_x4_state_dict.json")));
  const json facts =
      json::parse(read_text(golden_path("bi_diffsr/params_ops_official.json"))).at("bi_diffsr_official");
  const std::string manifest = one_line(read_text(golden_path("bi_diffsr/MANIFEST.md")));
  const BiDiffSrConfig cfg = bi_diffsr_config_from_json(off.at("config"), "official_x2_x4_state_dict.json");
  BiDiffSrUNet net(cfg);
  const BiDiffSrCost c = bi_diffsr_cost(*net, cfg.image_size, cfg.image_size);
  EXPECT_EQ(c.params_total, facts.at("params_total").get<int64_t>());
  EXPECT_EQ(c.params_binary, facts.at("params_binary_weights").get<int64_t>());
  EXPECT_NEAR(c.params_m(), facts.at("params_convention_M").get<double>(), 5e-7);
  EXPECT_EQ(static_cast<int64_t>(c.macs_fp()), facts.at("macs_fp").get<int64_t>());
  EXPECT_EQ(static_cast<int64_t>(c.macs_binary), facts.at("macs_bin").get<int64_t>());
  auto attention = test::regex_find(manifest, R"(attention einsums ([0-9.]+) G)");
  auto gn = test::regex_find(manifest, R"(GroupNorm elements \(BI-DiffSR ([0-9,]+);)");
  ASSERT_TRUE(attention && gn) << "MANIFEST.md states the attention and GroupNorm counts";
  EXPECT_NEAR(c.macs_attention / 1e9, std::stod(*attention), 1e-9);
  EXPECT_EQ(static_cast<int64_t>(c.groupnorm_elements), test::parse_grouped_int(*gn));
  // The spec's total: "... = 36.669 G → **36.67 G** (paper)".
  const std::string spec = one_line(read_text(test::shared_path("spec/bi-diffsr.md")));
  auto total = test::regex_find(spec, R"(BI-DiffSR: FP conv/linear [^=]*= ([0-9.]+) G)");
  ASSERT_TRUE(total.has_value()) << "spec §8 states the OPs total";
  EXPECT_NEAR(c.ops_g(), std::stod(*total), 5e-4);
}

// The SR3 row of Table 2: Janspiry's UNet with BI-DiffSR's settings has params_ops_official.json's parameter
// count and conv/linear MACs, the MANIFEST's GroupNorm and upsample counts, and the spec's OPs total.
TEST(GoldenBiDiffSrOfficial, Sr3BaselineParamsAndOps) {
  DMEVAL_REQUIRE_GOLDEN();
  const json off = json::parse(read_text(golden_path("bi_diffsr/official_x2_x4_state_dict.json")));
  const json facts =
      json::parse(read_text(golden_path("bi_diffsr/params_ops_official.json"))).at("sr3_like_bidiffsr_cfg");
  const std::string manifest = one_line(read_text(golden_path("bi_diffsr/MANIFEST.md")));
  const BiDiffSrConfig cfg = bi_diffsr_config_from_json(off.at("config"), "official_x2_x4_state_dict.json");
  Sr3UNet net(cfg);
  const Sr3Cost c = sr3_cost(*net, cfg.image_size, cfg.image_size);
  EXPECT_EQ(c.params, facts.at("params_total").get<int64_t>());
  EXPECT_EQ(static_cast<int64_t>(c.macs_conv_linear()), facts.at("macs_fp").get<int64_t>());
  auto gn = test::regex_find(manifest, R"(GroupNorm elements \(BI-DiffSR [0-9,]+; SR3 ([0-9,]+)\))");
  auto up = test::regex_find(manifest, R"(SR3's nearest-upsample outputs ([0-9,]+))");
  ASSERT_TRUE(gn && up) << "MANIFEST.md states SR3's GroupNorm and upsample counts";
  EXPECT_EQ(static_cast<int64_t>(c.groupnorm_elements), test::parse_grouped_int(*gn));
  EXPECT_EQ(static_cast<int64_t>(c.upsample_elements), test::parse_grouped_int(*up));
  const std::string spec = one_line(read_text(test::shared_path("spec/bi-diffsr.md")));
  auto total = test::regex_find(spec, R"(SR3: [0-9.]+ \+ [^=]*= ([0-9.]+) G)");
  ASSERT_TRUE(total.has_value()) << "spec §8 states SR3's OPs total";
  EXPECT_NEAR(c.ops_g(), std::stod(*total), 5e-4);
}

}  // namespace
}  // namespace dmeval
