// Beta schedules and the float32 cumulative products the ddim samplers use (spec generators.md §3).
#pragma once

#include <torch/types.h>

#include <string>
#include <vector>

#include "generators/diffusion_config.h"

namespace dmeval {

// ddim's get_beta_schedule in float64 (NumPy's linspace is i*step + start with the last element set
// to the end point): linear, quad, const, jsd bit for bit; sigmoid goes through exp, where NumPy's
// vectorised exp and the C library's differ by up to 2 ulp (the float32 betas are identical).
bool beta_schedule_uses_exp(const std::string& name);
std::vector<double> beta_schedule(const std::string& name, double beta_start, double beta_end, int64_t T);
const std::vector<std::string>& beta_schedule_names();

struct DiffusionSchedule {
  std::vector<double> betas_f64;  // as get_beta_schedule returns it
  torch::Tensor betas;            // float32 (T), `torch.from_numpy(betas).float()`
  // float32 (T+1): (1 - cat([0], betas)).cumprod(0), so entry t+1 is ᾱ_t and entry 0 is exactly 1
  // (ddim's compute_alpha; index -1 maps to 1).
  torch::Tensor alphas_cumprod_ext;
  int64_t num_timesteps = 0;
};

DiffusionSchedule make_schedule(const DiffusionConfig& config);

// ᾱ for timesteps t (any integer tensor, -1 allowed), shaped (n, 1, 1, 1) like compute_alpha.
torch::Tensor compute_alpha(const DiffusionSchedule& s, const torch::Tensor& t);

}  // namespace dmeval
