// latent-diffusion's schedule and samplers with the reference's exact arithmetic (spec ldm.md §5–§7):
// the "linear" schedule (linspace of square roots, squared, in float64; buffers rounded to float32),
// DDIM's uniform timesteps (range(0, T, T // S) + 1), its per-step constants (with the float32
// reciprocal quirk in σ), the DDIM step and PLMS (pseudo linear multistep: one extra model call at the
// first step, Adams–Bashforth combinations after), and classifier-free guidance as one batched call
// with the unconditional half first.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <vector>

namespace dmeval {

struct LdmSchedule {
  int64_t num_timesteps = 1000;
  torch::Tensor betas_f64;              // float64
  torch::Tensor betas, alphas_cumprod;  // float32, rounded from the float64 values
  torch::Tensor alphas_cumprod_prev, sqrt_one_minus_alphas_cumprod;
};
LdmSchedule ldm_linear_schedule(double linear_start, double linear_end, int64_t num_timesteps);

// DDIM's per-step constants, index 0 = the smallest timestep (float32 values as the step uses them).
struct LdmDdimConstants {
  std::vector<int64_t> timesteps;  // increasing
  torch::Tensor alphas, alphas_prev, sigmas, sqrt_one_minus_alphas;
  double eta = 0;
};
LdmDdimConstants ldm_ddim_constants(const LdmSchedule& schedule, int64_t steps, double eta);

// ε(x, t) of the sampler (already guided); t: (B,) int64 filled with the step's timestep.
using LdmEps = std::function<torch::Tensor(const torch::Tensor& x, const torch::Tensor& t)>;
// The noise of draw k (one per DDIM step; S + 1 for PLMS) for a batch of shape `shape`.
using LdmNoise = std::function<torch::Tensor(int64_t draw, c10::IntArrayRef shape)>;

// One sampler step as it happened: step k (0 = the noisiest) at timestep t, the ε it combined (PLMS:
// the multistep combination), x0, the noise draw (scaled by σ_t) and the result.
struct LdmStep {
  int64_t k = 0, t = 0, t_prev = 0;    // t_prev: the next (smaller) timestep, 0 after the last step
  torch::Tensor a_t, a_prev, sigma_t;  // (B, 1, 1, 1) float32
  torch::Tensor eps, pred_x0, noise, x_prev;
};

struct LdmTrace {
  std::vector<torch::Tensor> x_inter;           // x_T, then x after every step
  std::vector<torch::Tensor> pred_x0;           // x0 of every step
  std::vector<int64_t> model_t;                 // the timestep of every model call, in call order
  std::function<void(const LdmStep&)> on_step;  // called after every step (optional)
};

torch::Tensor ldm_ddim_sample(const LdmDdimConstants& c, const LdmEps& eps, const torch::Tensor& x_T,
                              const LdmNoise& noise, LdmTrace* trace = nullptr);
// PLMS needs eta = 0 (the reference raises otherwise).
torch::Tensor ldm_plms_sample(const LdmDdimConstants& c, const LdmEps& eps, const torch::Tensor& x_T,
                              const LdmNoise& noise, LdmTrace* trace = nullptr);

// Classifier-free guidance: net(x, t, context) is called once on [x, x] with [uc, c] (unconditional
// half first) and e = e_u + s (e_c - e_u); with s = 1 one call with c only.
using LdmNet = std::function<torch::Tensor(const torch::Tensor& x, const torch::Tensor& t,
                                           const torch::Tensor& context)>;
LdmEps ldm_guided_eps(LdmNet net, torch::Tensor context, torch::Tensor uncond_context, double scale);

}  // namespace dmeval
