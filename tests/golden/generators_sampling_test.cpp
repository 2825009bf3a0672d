// Beta schedules, ᾱ, timestep sequences, DDIM/DDPM trajectories and the reference noise stream
// against ermongroup/ddim's outputs (golden/generators/sampling). Runs, arguments and tolerances
// come from runs.json and the MANIFEST.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/npy.h"
#include "core/torch_bridge.h"
#include "generators/beta_schedule.h"
#include "generators/ddim/ddim_unet.h"
#include "generators/ddim/unet_weights.h"
#include "generators/noise_source.h"
#include "generators/sample_images.h"
#include "generators/samplers.h"
#include "generators/timestep_sequence.h"
#include "tests/support/golden.h"
#include "tests/support/numeric_checks.h"

namespace dmeval {
namespace {

using namespace dmeval::test;

std::string sampling_section() {
  return markdown_section(read_text(golden_path("generators/MANIFEST.md")), "sampling/");
}

torch::Tensor npy(const std::string& rel) {
  return to_torch(read_npy_file(golden_path(rel)));
}

TEST(GoldenGeneratorsSampling, BetaSchedulesBitExact) {
  DMEVAL_REQUIRE_GOLDEN();
  // "get_beta_schedule(name, beta_start=1e-4, beta_end=0.02, num_diffusion_timesteps=1000)"
  const std::string sec = sampling_section();
  auto start = regex_find(sec, "beta_start=([0-9.e-]+)"), end = regex_find(sec, "beta_end=([0-9.e-]+)"),
       steps = regex_find(sec, "num_diffusion_timesteps=([0-9]+)");
  ASSERT_TRUE(start && end && steps);
  NpzReader z = NpzReader::open(golden_path("generators/sampling/beta_schedules.npz"));
  ASSERT_FALSE(z.names().empty());
  for (const std::string& name : z.names()) {
    TensorData ref = z.read(name);
    std::vector<double> got = beta_schedule(name, std::stod(*start), std::stod(*end), std::stoll(*steps));
    ASSERT_EQ(static_cast<int64_t>(got.size()), ref.numel()) << name;
    int64_t differ = 0, differ_f32 = 0;
    int64_t max_ulps = 0;
    for (int64_t i = 0; i < ref.numel(); ++i) {
      const double r = ref.data<double>()[i];
      differ += got[i] != r;
      differ_f32 += static_cast<float>(got[i]) != static_cast<float>(r);  // torch.from_numpy(b).float()
      int64_t a, b;
      std::memcpy(&a, &got[i], 8);
      std::memcpy(&b, &r, 8);
      max_ulps = std::max<int64_t>(max_ulps, std::llabs(a - b));
    }
    EXPECT_EQ(differ_f32, 0) << name << ": float32 betas not bit-identical";
    if (beta_schedule_uses_exp(name)) {
      // NumPy's vectorised float64 exp vs the C library's: stated tolerance 2 ulp.
      EXPECT_LE(max_ulps, 2) << name;
    } else {
      EXPECT_EQ(differ, 0) << name << ": values not bit-identical, up to " << max_ulps << " ulp";
    }
  }
}

ModelConfig small_config() {
  return read_ddim_yaml(golden_path("generators/unet_small/config.json"));
}

TEST(GoldenGeneratorsSampling, AlphasCumprodBitExact) {
  DMEVAL_REQUIRE_GOLDEN();
  DiffusionSchedule s = make_schedule(small_config().diffusion);
  torch::Tensor ref = npy("generators/sampling/alphas_cumprod_f32.npy");
  ASSERT_EQ(s.alphas_cumprod_ext.sizes(), ref.sizes());
  EXPECT_TRUE(torch::equal(s.alphas_cumprod_ext, ref));
}

TEST(GoldenGeneratorsSampling, ReferenceNoiseReproducesRecordedStream) {
  DMEVAL_REQUIRE_GOLDEN();
  auto runs = nlohmann::json::parse(read_text(golden_path("generators/sampling/runs.json")));
  torch::Tensor x_T = npy("generators/sampling/x_T.npy");
  auto shape = x_T.sizes().slice(1).vec();
  auto xs = make_noise_source("reference", runs["x_T_seed"].get<uint64_t>());
  // Box-Muller draws: kernel-exact (bit for bit with the reference's vectorised kernels).
  EXPECT_TRUE(kernel_equal(xs->initial(0, x_T.size(0), shape), x_T, kNormalDrawUlps))
      << "x_T = randn after manual_seed";
  int checked = 0;
  for (const auto& run : runs["runs"]) {
    NpzReader z = NpzReader::open(golden_path("generators/sampling/" + run["file"].get<std::string>()));
    if (!z.contains("noise")) continue;
    torch::Tensor noise = to_torch(z.read("noise"));
    auto src = make_noise_source("reference", run["noise_seed"].get<uint64_t>());
    for (int64_t k = 0; k < noise.size(0); ++k)
      ASSERT_TRUE(kernel_equal(src->step(k, 0, noise.size(1), shape, true), noise[k], kNormalDrawUlps))
          << run["file"] << " step " << k;
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

struct Tolerances {
  double ddim_rel = 0, ddpm_abs = 0, uint8_fraction = 0, eps_abs = 0;
};

Tolerances tolerances() {
  // "Suggested port acceptance (noise injected): relative 1e-4 of max |x| for DDIM, 1e-4 absolute
  // for DDPM" (sampling section); "`final_uint8` exact except ≤ 0.1 % of values off by one" (last
  // section).
  Tolerances t;
  auto a = regex_find(sampling_section(), "relative ([0-9.e-]+) of max \\|x\\| for DDIM");
  auto b = regex_find(sampling_section(), "([0-9.e-]+)\\s+absolute for DDPM");
  auto c =
      regex_find(read_text(golden_path("generators/MANIFEST.md")), "exact except ≤ ([0-9.]+) % of values");
  auto d = regex_find(read_text(golden_path("generators/MANIFEST.md")),
                      "UNet ε and intermediates: max abs ≤ ([0-9.e-]+)");
  EXPECT_TRUE(a && b && c && d) << "MANIFEST acceptance text not found";
  if (a && b && c && d) t = {std::stod(*a), std::stod(*b), std::stod(*c) / 100.0, std::stod(*d)};
  return t;
}

TEST(GoldenGeneratorsSampling, TrajectoriesMatchReference) {
  DMEVAL_REQUIRE_GOLDEN();
  const Tolerances tol = tolerances();
  ModelConfig cfg = small_config();
  DdimUNet model(cfg.unet);
  UNetWeightsOptions wo;
  wo.hash = false;
  load_unet_weights(*model, golden_path("generators/unet_small/weights.pt"), wo);
  model->eval();
  DiffusionSchedule schedule = make_schedule(cfg.diffusion);
  EpsModel eps = [&](const torch::Tensor& x, const torch::Tensor& t, int64_t) {
    return model->forward(x, t);
  };
  auto runs = nlohmann::json::parse(read_text(golden_path("generators/sampling/runs.json")));
  torch::Tensor x_T = npy("generators/sampling/x_T.npy");
  ASSERT_FALSE(runs["runs"].empty());
  for (const auto& run : runs["runs"]) {
    const std::string file = run["file"].get<std::string>();
    SCOPED_TRACE(file);
    NpzReader z = NpzReader::open(golden_path("generators/sampling/" + file));
    SamplerSpec spec;
    const std::string type = run["sample_type"].get<std::string>();
    ASSERT_TRUE(type == "generalized" || type == "ddpm_noisy") << type;
    spec.sampler = type == "generalized" ? "ddim" : "ddpm";
    spec.skip_type = run["skip_type"].get<std::string>();
    spec.steps = run["timesteps_arg"].get<int64_t>();
    if (spec.sampler == "ddim") spec.eta = run["eta"].get<double>();
    const bool ddim = spec.sampler == "ddim";

    // Sequence and pairs exact.
    std::vector<int64_t> seq = timestep_sequence(spec.skip_type, spec.steps, schedule.num_timesteps);
    EXPECT_EQ(seq, run["seq"].get<std::vector<int64_t>>());
    torch::Tensor seq_ref = to_torch(z.read("seq")), pairs_ref = to_torch(z.read("pairs"));
    EXPECT_TRUE(torch::equal(torch::tensor(seq, torch::kLong), seq_ref));
    auto pairs = timestep_pairs(seq);
    ASSERT_EQ(static_cast<int64_t>(pairs.size()), pairs_ref.size(0));
    for (size_t k = 0; k < pairs.size(); ++k) {
      EXPECT_EQ(pairs[k].first, pairs_ref[k][0].item<int64_t>());
      EXPECT_EQ(pairs[k].second, pairs_ref[k][1].item<int64_t>());
    }

    // Noise: injected where recorded, else the reference stream after the recorded seed.
    std::unique_ptr<NoiseSource> noise;
    if (z.contains("noise")) {
      torch::Tensor rec = to_torch(z.read("noise"));
      std::vector<torch::Tensor> steps;
      for (int64_t k = 0; k < rec.size(0); ++k) steps.push_back(rec[k]);
      noise = recorded_noise(x_T, steps);
    } else {
      noise = make_noise_source("reference", run["noise_seed"].get<uint64_t>());
    }
    torch::Tensor at_ref = to_torch(z.read("at")), an_ref = to_torch(z.read("at_next")),
                  tm_ref = to_torch(z.read("t_model"));
    const bool has_x0 = z.contains("x0_preds");  // runs that store the final sample only
    torch::Tensor x0_ref = has_x0 ? to_torch(z.read("x0_preds")) : torch::Tensor();
    const bool has_xs = z.contains("xs");
    torch::Tensor xs_ref = has_xs ? to_torch(z.read("xs")) : torch::Tensor();
    torch::Tensor final_ref = to_torch(z.read("final"));
    const double scale = ddim ? tol.ddim_rel * final_ref.abs().max().item<double>() : tol.ddpm_abs;
    double worst = 0;
    StepObserver obs = [&](const StepRecord& r) {
      // at / at_next are stored once per step (the value every batch element gets).
      EXPECT_TRUE(torch::equal(r.at.flatten(), at_ref[r.index].expand({r.at.numel()})))
          << "at, step " << r.index;
      EXPECT_TRUE(torch::equal(r.at_next.flatten(), an_ref[r.index].expand({r.at.numel()})))
          << "at_next, step " << r.index;
      EXPECT_TRUE(torch::equal(r.t_model, tm_ref[r.index])) << "t, step " << r.index;
      if (has_x0) {
        // DDIM: the sampler acceptance relative to the prediction's own size. DDPM: the prediction
        // x0 = (x - sqrt(1-ā) ε) / sqrt(ā) (then clipped, which cannot widen a difference) divides the
        // state's and ε's acceptances by sqrt(ā), ~0.006 at t = 999: one thread vs two already moves it
        // by 7.6e-5 (MANIFEST), other CPUs by more. The bound is that propagation, not a fixed number.
        double ref_scale = tol.ddim_rel * x0_ref[r.index].abs().max().item<double>();
        if (!ddim) {
          const double at = r.at.flatten()[0].item<double>();
          ref_scale = (tol.ddpm_abs + std::sqrt(1 - at) * tol.eps_abs) / std::sqrt(at);
        }
        const double d0 = (r.x0 - x0_ref[r.index]).abs().max().item<double>();
        EXPECT_LE(d0, std::max(ref_scale, scale)) << "x0, step " << r.index;
      }
      if (has_xs) {
        const double dx = (r.x_next - xs_ref[r.index + 1]).abs().max().item<double>();
        EXPECT_LE(dx, scale) << "x, step " << r.index;
        worst = std::max(worst, dx);
      }
    };
    torch::Tensor x0 = run_sampler(spec, schedule, eps, x_T.clone(), *noise, 0, &obs);
    const double d_final = (x0 - final_ref).abs().max().item<double>();
    EXPECT_LE(d_final, scale);

    // float64 yardstick: the reference's own float32 deviation from it plus the acceptance against the
    // reference (triangle inequality).
    torch::Tensor f64 = to_torch(z.read("final_f64"));
    const double budget = run["final_f32_vs_f64_max_abs"].get<double>();
    EXPECT_LE((x0.to(torch::kFloat64) - f64).abs().max().item<double>(), budget + scale);

    // PNG values: exact except a bounded fraction of boundary values off by one.
    torch::Tensor u8 = samples_to_uint8(x0), u8_ref = to_torch(z.read("final_uint8"));
    ASSERT_EQ(u8.sizes(), u8_ref.sizes());
    torch::Tensor diff = (u8.to(torch::kInt) - u8_ref.to(torch::kInt)).abs();
    EXPECT_LE(diff.max().item<int>(), 1);
    EXPECT_LE(diff.gt(0).sum().item<double>(), tol.uint8_fraction * static_cast<double>(diff.numel()));
    std::printf("%s: final max |d| = %.3g (allowed %.3g), trajectory %.3g, uint8 differing %lld\n",
                file.c_str(), d_final, scale, worst,
                static_cast<long long>(diff.gt(0).sum().item<int64_t>()));
  }
}

}  // namespace
}  // namespace dmeval
