// golden_bi_diffsr_network: BI-DiffSR's UNet against $DMEVAL_GOLDEN_DIR/bi_diffsr (MANIFEST.md), data-driven:
// the tiny network is built from config.json and loads net_g_tiny.pth strictly (every key and shape of
// weights_keys.json); ε for every timestep of forward.npz (with its timestep group) and the batch-element-0
// group quirk pair; every top-level module's output of intermediates.npz (the reference's hooks) from the
// hooked input; and the official x2/x4 network built from its recorded config has exactly the recorded
// keys, shapes and parameter count. Tolerance: the MANIFEST's "|Δε| ≤ 1e-4 for forward and intermediates".
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <map>
#include <set>

#include "core/npy.h"
#include "core/torch_bridge.h"
#include "generators/bi_diffsr/bi_diffsr_unet.h"
#include "tests/support/golden.h"

namespace dmeval {
namespace {

using json = nlohmann::json;
using test::golden_path;
using test::read_text;

double max_abs(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.detach().to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

class GoldenBiDiffSrNetwork : public ::testing::Test {
 protected:
  void SetUp() override {
    DMEVAL_REQUIRE_GOLDEN();
    std::string manifest = read_text(golden_path("bi_diffsr/MANIFEST.md"));
    for (char& ch : manifest)
      if (ch == '\n') ch = ' ';
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
  auto params = net_->named_parameters(true);
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

}  // namespace
}  // namespace dmeval
