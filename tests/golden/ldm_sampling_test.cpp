// golden_ldm_sampling: latent-diffusion's schedule, DDIM (η 0 and 1) and PLMS samplers with
// classifier-free guidance, on the golden set's small models ($DMEVAL_GOLDEN_DIR/ldm/schedule.npz,
// sampling/, run_info.json; spec ldm.md §5–§8, §12). Every run's sampler, S, η, guidance scale and
// model come from run_info.json; the stored noise is injected. Tolerances: the schedule buffers and the
// per-step constants are elementwise from them (the ulp rules below); sampler
// trajectories within 1e-4 of max |x| (spec §12); the first model call, on the shared x_T, within the
// UNet ε rule (1e-4); the decoded final latent's codebook indices exact except near-ties (1e-5
// relative) and its uint8 values one level off at most, only within 1e-4 of a level boundary.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cmath>

#include "core/error.h"
#include "generators/ldm/ldm_sampler.h"
#include "tests/golden/ldm_golden.h"

namespace dmeval {
namespace {

using json = nlohmann::json;
using test::golden_path;
using test::ldm_golden_config;
using test::max_abs_diff;

// The schedule `model`'s config states (linear_start, linear_end, timesteps).
LdmSchedule schedule_of(const std::string& model) {
  const LdmConfig c = ldm_config_from_json(ldm_golden_config(model), model + "/config.json");
  return ldm_linear_schedule(c.linear_start, c.linear_end, c.timesteps);
}

// Relative difference in units of the format's epsilon (ulp of values in [1, 2)).
double max_ulps(const torch::Tensor& got, const torch::Tensor& ref) {
  const double eps = ref.scalar_type() == torch::kFloat64 ? std::ldexp(1.0, -52) : std::ldexp(1.0, -23);
  torch::Tensor r = ref.to(torch::kFloat64), g = got.to(torch::kFloat64);
  return ((g - r).abs() / r.abs().clamp_min(1e-300)).max().item<double>() / eps;
}

// The reference's betas come from torch.linspace, whose vectorised CPU kernel rounds differently
// with the vector width (ATen's default vs AVX2 kernels disagree in the last bits): the rule is a
// few float64 ulp for betas_f64 (8 here) and at most one float32 ulp for the float32 buffers derived
// from it, which is what a last-bit difference of the float64 values can change after rounding.
TEST(GoldenLdmSampling, ScheduleBuffersWithinLinspaceRounding) {
  DMEVAL_REQUIRE_GOLDEN();
  const LdmSchedule s = schedule_of("ldm_uncond");
  NpzReader z = NpzReader::open(golden_path("ldm/schedule.npz"));
  const double b64 = max_ulps(s.betas_f64, to_torch(z.read("betas_f64")));
  EXPECT_LE(b64, 8.0);
  double worst = 0;
  for (const auto& [name, got] : std::vector<std::pair<std::string, torch::Tensor>>{
           {"betas", s.betas},
           {"alphas_cumprod", s.alphas_cumprod},
           {"alphas_cumprod_prev", s.alphas_cumprod_prev},
           {"sqrt_one_minus_alphas_cumprod", s.sqrt_one_minus_alphas_cumprod}}) {
    const torch::Tensor ref = to_torch(z.read(name));
    ASSERT_EQ(got.scalar_type(), ref.scalar_type()) << name;
    const double u = max_ulps(got, ref);
    EXPECT_LE(u, 1.0) << name;
    worst = std::max(worst, u);
  }
  std::printf("schedule: betas_f64 within %.2g float64 ulp, float32 buffers within %.2g float32 ulp\n", b64,
              worst);
}

TEST(GoldenLdmSampling, EveryRunReplaysWithTheStoredNoise) {
  DMEVAL_REQUIRE_GOLDEN();
  const json info = json::parse(test::read_text(golden_path("ldm/run_info.json")));
  const torch::Tensor x_T = test::ldm_golden_array("sampling/x_T.npy");
  // The first stage (shared by both models) for the decoded finals.
  VqFirstStage fs = test::ldm_golden_first_stage();
  ASSERT_FALSE(info.at("runs").empty());
  for (auto it = info.at("runs").begin(); it != info.at("runs").end(); ++it) {
    const std::string run = it.key();
    const json& r = it.value();
    SCOPED_TRACE(run);
    const bool conditional = r.at("conditional").get<bool>();
    const std::string model = conditional ? "ldm_cond" : "ldm_uncond";
    LdmUNet unet(ldm_config_from_json(ldm_golden_config(model), model + "/config.json").unet);
    unet->eval();
    load_ldm_weights(*unet, golden_path("ldm/" + model + "/model.ckpt"), "model.diffusion_model.");
    NpzReader z = NpzReader::open(golden_path("ldm/sampling/" + run + ".npz"));

    // Per-step constants: the timesteps exact, the values within the ulp rules above.
    const std::string sampler = r.at("sampler");
    const LdmDdimConstants c =
        ldm_ddim_constants(schedule_of(model), r.at("S").get<int64_t>(), r.at("eta").get<double>());
    EXPECT_EQ(c.timesteps, r.at("ddim_timesteps").get<std::vector<int64_t>>());
    EXPECT_TRUE(torch::equal(torch::tensor(c.timesteps, torch::kLong), to_torch(z.read("ddim_timesteps"))));
    // Elementwise from ᾱ (float32), which the schedule rule allows one float32 ulp: the same here.
    EXPECT_LE(max_ulps(c.alphas, to_torch(z.read("ddim_alphas"))), 1.0);
    EXPECT_LE(max_ulps(c.alphas_prev, to_torch(z.read("ddim_alphas_prev"))), 1.0);
    EXPECT_LE(max_ulps(c.sqrt_one_minus_alphas, to_torch(z.read("ddim_sqrt_one_minus_alphas"))), 1.0);
    const torch::Tensor sig_ref = to_torch(z.read("ddim_sigmas"));
    if (r.at("eta").get<double>() == 0) {
      EXPECT_TRUE(torch::equal(c.sigmas, sig_ref));  // all zero
    } else {
      EXPECT_LE(max_ulps(c.sigmas, sig_ref), 4.0);  // σ takes ᾱ's ulp through a difference and a sqrt
    }

    // The conditioning: the stored contexts (golden_ldm_unet checks the embedder that makes them).
    torch::Tensor context, uc;
    if (conditional) {
      context = to_torch(z.read("context"));
      uc = to_torch(z.read("uncond_context"));
    }
    std::vector<torch::Tensor> outs;
    LdmNet net = [&](const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& ctx) {
      torch::Tensor e = unet->forward(x, t, ctx);
      outs.push_back(e);
      return e;
    };
    LdmEps eps = ldm_guided_eps(net, context, uc, r.at("guidance_scale").get<double>());
    const torch::Tensor noise = to_torch(z.read("noise"));
    LdmNoise inject = [&](int64_t draw, c10::IntArrayRef shape) {
      EXPECT_LT(draw, noise.size(0));
      EXPECT_EQ(noise[draw].sizes(), shape);
      return noise[draw];
    };
    LdmTrace trace;
    torch::Tensor final = sampler == "PLMSSampler" ? ldm_plms_sample(c, eps, x_T, inject, &trace)
                                                   : ldm_ddim_sample(c, eps, x_T, inject, &trace);
    ASSERT_TRUE(sampler == "PLMSSampler" || sampler == "DDIMSampler") << sampler;

    // Calls: count and timesteps; the first call (on x_T) within the UNet rule.
    const torch::Tensor model_in_t = to_torch(z.read("model_in_t")),
                        model_out = to_torch(z.read("model_out"));
    EXPECT_EQ(static_cast<int64_t>(outs.size()), r.at("n_model_calls").get<int64_t>());
    ASSERT_EQ(static_cast<int64_t>(trace.model_t.size()), model_in_t.size(0));
    for (size_t k = 0; k < trace.model_t.size(); ++k)
      EXPECT_EQ(trace.model_t[k], model_in_t[static_cast<int64_t>(k)][0].item<int64_t>()) << "call " << k;
    ASSERT_EQ(outs[0].sizes(), model_out[0].sizes());
    EXPECT_LE(max_abs_diff(outs[0], model_out[0]), 1e-4);

    // Trajectories within 1e-4 of max |x|.
    const torch::Tensor x_inter = to_torch(z.read("x_inter")), pred_x0 = to_torch(z.read("pred_x0"));
    ASSERT_EQ(static_cast<int64_t>(trace.x_inter.size()), x_inter.size(0));
    const double scale = x_inter.abs().max().item<double>();
    for (size_t k = 0; k < trace.x_inter.size(); ++k)
      EXPECT_LE(max_abs_diff(trace.x_inter[k], x_inter[static_cast<int64_t>(k)]), 1e-4 * scale) << "x " << k;
    ASSERT_EQ(static_cast<int64_t>(trace.pred_x0.size()), pred_x0.size(0));
    const double scale0 = std::max(scale, pred_x0.abs().max().item<double>());
    for (size_t k = 0; k < trace.pred_x0.size(); ++k)
      EXPECT_LE(max_abs_diff(trace.pred_x0[k], pred_x0[static_cast<int64_t>(k)]), 1e-4 * scale0)
          << "x0 " << k;
    EXPECT_LE(max_abs_diff(final, to_torch(z.read("final"))), 1e-4 * scale);
    std::printf("%s: max |x - x_ref| %.3g of max |x| %.3g\n", run.c_str(),
                max_abs_diff(final, to_torch(z.read("final"))), scale);

    // The stored final, decoded: codebook indices and the custom_to_np uint8 values.
    torch::NoGradGuard no_grad;
    const torch::Tensor ref_final = to_torch(z.read("final"));
    VqDecodeResult d = fs->decode(ref_final);
    const torch::Tensor idx_ref = to_torch(z.read("final_codebook_indices")).to(torch::kLong);
    const test::CodeCheck idx = test::compare_codebook_indices(fs, ref_final, d.indices, idx_ref);
    EXPECT_EQ(idx.differ_off_tie, 0) << test::describe(idx, 1);
    if (idx.differ == 0) {
      const test::CodeCheck c = test::compare_ldm_uint8(ldm_images_to_uint8(d.images, "np"),
                                                        to_torch(z.read("uint8_np")), d.images, "np");
      EXPECT_EQ(c.differ_off_tie, 0) << test::describe(c, 1);
      EXPECT_LE(c.max_step, 1);
    }
  }
}

TEST(GoldenLdmSampling, PlmsRefusesEta) {
  DMEVAL_REQUIRE_GOLDEN();
  const LdmDdimConstants c = ldm_ddim_constants(schedule_of("ldm_uncond"), 10, 1.0);
  LdmEps eps = [](const torch::Tensor& x, const torch::Tensor&) { return torch::zeros_like(x); };
  LdmNoise noise = [](int64_t, c10::IntArrayRef shape) { return torch::zeros(shape); };
  EXPECT_THROW(ldm_plms_sample(c, eps, torch::zeros({1, 3, 8, 8}), noise), Error);
}

}  // namespace
}  // namespace dmeval
