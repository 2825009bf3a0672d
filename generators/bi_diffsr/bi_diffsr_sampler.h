// BI-DiffSR's sampling (spec bi-diffsr.md §5-§6): diffusers' DDIMScheduler as BI_DiffSR_model configures
// it — linear float32 betas, float32 ᾱ, "leading" timesteps (S−1)·r … r, 0 with r = T // S, ε-prediction,
// x0 clipped to [−1, 1] (while the images live in [0, 1]: quirk Q5), η = 0, ᾱ_prev = 1 past the end — the
// loop from x_T on the condition, and the test pipeline's reflect padding to a multiple of 8 and BasicSR's
// tensor2img conversion.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <vector>

#include "generators/bi_diffsr/bi_diffsr_unet.h"

namespace dmeval {

struct BiDiffSrSchedule {
  torch::Tensor betas, alphas_cumprod;  // float32 (T)
  int64_t num_train_timesteps = 0;
};
// torch.linspace(start, end, T) in float32, ᾱ = cumprod(1 − β) in float32.
BiDiffSrSchedule bi_diffsr_schedule(int64_t num_train_timesteps, double beta_start, double beta_end);
// set_timesteps(S), timestep_spacing "leading", steps_offset 0.
std::vector<int64_t> bi_diffsr_timesteps(int64_t num_train_timesteps, int64_t steps);

struct BiDiffSrStep {
  torch::Tensor x0_pred, x0_clipped, x_prev;
};
// DDIMScheduler.step with η = 0 at timestep t (the previous timestep is t − T // S).
BiDiffSrStep bi_diffsr_ddim_step(const BiDiffSrSchedule& s, int64_t steps, const torch::Tensor& eps,
                                 int64_t t, const torch::Tensor& x);

// The reference loop: x = x_T; for each timestep ε = net(x, cond, t) (t as int64 (B, 1)), x = step(ε, t, x).
// `observe` sees every step's input, ε and step results.
using BiDiffSrObserver = std::function<void(size_t i, int64_t t, const torch::Tensor& x_t,
                                            const torch::Tensor& eps, const BiDiffSrStep& step)>;
torch::Tensor bi_diffsr_sample(BiDiffSrUNetImpl& net, const BiDiffSrSchedule& s, int64_t steps,
                               const torch::Tensor& cond, const torch::Tensor& x_T,
                               const BiDiffSrObserver& observe = {});

// Right/bottom 'reflect' padding to a multiple of `m` (pad = m − h % m when h % m != 0); *pad_h/*pad_w get
// the amounts.
torch::Tensor bi_diffsr_pad(const torch::Tensor& x, int64_t m, int64_t* pad_h, int64_t* pad_w);
// BasicSR tensor2img of one (3, H, W) RGB image in [0, 1]: clamp, × 255, round half to even, uint8, BGR,
// (H, W, 3).
torch::Tensor bi_diffsr_to_uint8_bgr(const torch::Tensor& image);

}  // namespace dmeval
