// The ddim UNet against the reference's outputs (every golden generators/<unet>/ directory with
// stored intermediates: the shared unet_small, the project's unet_deep): ε and every stored
// intermediate within the MANIFEST's suggested acceptance, the float32 error against the float64
// yardstick within the reference's own float32 error, and the channels-last path against the plain one.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <filesystem>

#include "core/npy.h"
#include "core/torch_bridge.h"
#include "generators/ddim/ddim_unet.h"
#include "generators/ddim/unet_weights.h"
#include "tests/support/golden.h"

namespace dmeval {
namespace {

using namespace dmeval::test;

// Every golden UNet directory (ε, inputs, intermediates), over all golden roots.
std::vector<std::string> unet_dirs() {
  std::vector<std::string> dirs = golden_dirs_with("generators", "intermediates.npz");
  EXPECT_FALSE(dirs.empty()) << "no golden UNet directory";
  return dirs;
}

// "Suggested port acceptance: max |Δε| ≤ 1e-4" (the directory's section of its MANIFEST).
double unet_tolerance(const std::string& dir) {
  const std::filesystem::path d(dir);
  std::string manifest = read_text((d.parent_path() / "MANIFEST.md").string());
  auto tol = regex_find(markdown_section(manifest, d.filename().string() + "/"),
                        "acceptance: max \\|Δε\\| ≤ ([0-9.e-]+)");
  EXPECT_TRUE(tol) << "MANIFEST section " << d.filename() << "/ states no acceptance";
  return tol ? std::stod(*tol) : 0.0;
}

struct SmallUnet {
  DdimUNet model{nullptr};
  torch::Tensor x, t;
};

SmallUnet load_small_unet(const std::string& dir) {
  SmallUnet s;
  ModelConfig cfg = read_ddim_yaml(dir + "/config.json");
  s.model = DdimUNet(cfg.unet);
  UNetWeightsInfo info = load_unet_weights(*s.model, dir + "/weights.pt");
  auto run_info = nlohmann::json::parse(read_text(dir + "/run_info.json"));
  EXPECT_EQ(info.sha256, run_info["sha256_weights_pt"].get<std::string>());
  EXPECT_EQ(info.layout, "state dict");
  s.model->eval();
  s.x = to_torch(read_npy_file(dir + "/x.npy"));
  s.t = to_torch(read_npy_file(dir + "/t.npy"));
  return s;
}

double max_abs(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

TEST(GoldenGeneratorsUnet, EpsAndIntermediates) {
  DMEVAL_REQUIRE_GOLDEN();
  for (const std::string& dir : unet_dirs()) {
    SCOPED_TRACE(dir);
    const double tol = unet_tolerance(dir);
    SmallUnet s = load_small_unet(dir);
    NpzReader inter = NpzReader::open(dir + "/intermediates.npz");
    torch::Tensor rows = to_torch(inter.read("batch_index")).to(torch::kLong);
    std::map<std::string, torch::Tensor> seen;
    torch::NoGradGuard no_grad;
    torch::Tensor eps =
        s.model->forward_observed(s.x, s.t, [&](const std::string& name, const torch::Tensor& v) {
          seen[name] = v.index_select(0, rows).contiguous();
        });
    torch::Tensor expect = to_torch(read_npy_file(dir + "/eps.npy"));
    ASSERT_EQ(eps.sizes(), expect.sizes());
    const double d_eps = max_abs(eps, expect);
    EXPECT_LE(d_eps, tol);
    std::printf("eps: max |d| = %.3g (tolerance %.3g)\n", d_eps, tol);

    int compared = 0;
    double worst = 0;
    for (const std::string& name : inter.names()) {
      if (name == "batch_index") continue;
      ASSERT_TRUE(seen.count(name)) << "the port reports no intermediate '" << name << "'";
      torch::Tensor ref = to_torch(inter.read(name));
      ASSERT_EQ(seen[name].sizes(), ref.sizes()) << name;
      const double d = max_abs(seen[name], ref);
      EXPECT_LE(d, tol) << name;
      worst = std::max(worst, d);
      ++compared;
    }
    EXPECT_GT(compared, 10);
    std::printf("%s: %d intermediates: max |d| = %.3g\n", dir.c_str(), compared, worst);
  }
}

TEST(GoldenGeneratorsUnet, Float32ErrorWithinReferenceBudget) {
  DMEVAL_REQUIRE_GOLDEN();
  for (const std::string& dir : unet_dirs()) {
    SCOPED_TRACE(dir);
    SmallUnet s = load_small_unet(dir);
    torch::NoGradGuard no_grad;
    torch::Tensor eps = s.model->forward(s.x, s.t);
    torch::Tensor eps64 = to_torch(read_npy_file(dir + "/eps_f64.npy"));
    auto run_info = nlohmann::json::parse(read_text(dir + "/run_info.json"));
    const double budget = run_info["eps_f32_vs_f64_max_abs"].get<double>();
    // A correct float32 port sits as far from the float64 yardstick as the reference's float32 run;
    // allow the two-thread regeneration drift on top (MANIFEST: 1.4e-6).
    const double d = max_abs(eps, eps64);
    EXPECT_LE(d, 2 * budget) << "float32 port vs float64 yardstick";
    std::printf("%s: float32 vs float64: %.3g (reference float32: %.3g)\n", dir.c_str(), d, budget);
  }
}

TEST(GoldenGeneratorsUnet, ChannelsLastMatchesReferencePath) {
  DMEVAL_REQUIRE_GOLDEN();
  for (const std::string& dir : unet_dirs()) {
    SCOPED_TRACE(dir);
    const double tol = unet_tolerance(dir);
    SmallUnet s = load_small_unet(dir);
    torch::NoGradGuard no_grad;
    torch::Tensor plain = s.model->forward(s.x, s.t);
    s.model->set_channels_last(true);
    torch::Tensor fast = s.model->forward(s.x, s.t);
    EXPECT_TRUE(fast.is_contiguous());
    EXPECT_LE(max_abs(fast, plain), tol);
    torch::Tensor expect = to_torch(read_npy_file(dir + "/eps.npy"));
    EXPECT_LE(max_abs(fast, expect), tol);
  }
}

}  // namespace
}  // namespace dmeval
