// The ddim samplers, in the reference's evaluation order and float32 arithmetic (spec
// generators.md §4): DDIM (`generalized_steps`, any eta) and DDPM ancestral (`ddpm_steps`),
// selected by name.
#pragma once

#include <torch/types.h>

#include <functional>
#include <string>
#include <vector>

#include "generators/beta_schedule.h"
#include "generators/noise_source.h"

namespace dmeval {

// A noise-prediction network as the samplers call it: eps = model(x, t, step_index), t a float32
// (n,) tensor of the integer timestep, step_index = 0 for the first (noisiest) call.
using EpsModel =
    std::function<torch::Tensor(const torch::Tensor& x, const torch::Tensor& t, int64_t step_index)>;

struct SamplerSpec {
  std::string sampler = "ddim";  // ddim | ddpm
  std::string skip_type = "uniform";
  int64_t steps = 100;
  double eta = 0.0;  // ddim only
};

const std::vector<std::string>& sampler_names();
void validate(const SamplerSpec& spec);
std::string describe(const SamplerSpec& spec);

// What one step computed (tests compare trajectories with the reference's).
struct StepRecord {
  int64_t index = 0, t = 0, t_next = 0;
  torch::Tensor t_model;      // (n,) float32 handed to the model
  torch::Tensor at, at_next;  // (n, 1, 1, 1)
  torch::Tensor eps, x0;      // model output; x0 prediction (DDPM: after clipping)
  torch::Tensor noise;        // this step's noise draw
  torch::Tensor x_next;
};
using StepObserver = std::function<void(const StepRecord&)>;

// The standard deviation (in ε units) of the quantization noise left in the model's ε at timestep t
// (PTQD's σ_q = σ_res(t) / (1 + k_t)); with it the DDIM update removes that much variance from the
// injected noise (PTQD's variance schedule calibration). Empty: no correction.
using QuantNoiseStd = std::function<double(int64_t t)>;

// Runs the sampler from x_T (on the model's device) for the images first .. first + n - 1; step
// noise comes from `noise` (one draw per step, as the reference's randn_like). Returns x_0.
torch::Tensor run_sampler(const SamplerSpec& spec, const DiffusionSchedule& schedule, const EpsModel& model,
                          torch::Tensor x_T, NoiseSource& noise, int64_t first,
                          const StepObserver* observer = nullptr, const QuantNoiseStd* quant_noise = nullptr);

}  // namespace dmeval
