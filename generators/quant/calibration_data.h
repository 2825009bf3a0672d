// Calibration inputs of the PTQ methods, made from the full-precision model's own sampling
// trajectories (spec generators.md §6): every (x_t, t) the FP sampler feeds the UNet, per step, and
// the methods' ways of choosing from them:
//   q-diffusion: steps range(0, S, S // cali_st), the first cali_n images at each (get_train_samples);
//   PTQ4DM NDTC: one step per image, k = int(N(mu, sigma) * S) clamped to [0, S-1], the state after
//     loop iteration k, passed with t = k (quirk: the loop counter, not the timestep; an option);
//   PTQD: random (x_t, t) pairs from everything the sampler fed the UNet.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "generators/beta_schedule.h"
#include "generators/diffusion_model.h"
#include "generators/noise_source.h"
#include "generators/samplers.h"

namespace dmeval {

struct Trajectories {
  std::vector<torch::Tensor> xs;  // per sampler step: the UNet's input (n, C, H, W)
  std::vector<torch::Tensor> ts;  // per step: its timesteps (n,) float32
  // Per step: the class labels of the rows (n,) int64; empty for unconditional models. With
  // classifier-free guidance every image gives two rows, as the network sees them: the unconditional
  // one (label K = the model's num_classes()) and the conditional one.
  std::vector<torch::Tensor> ys;
  std::vector<torch::Tensor> x0;  // final samples (one tensor (n, C, H, W))
  int64_t steps() const { return static_cast<int64_t>(xs.size()); }
  int64_t images() const { return xs.empty() ? 0 : xs[0].size(0); }
};

// Runs the FP model's own sampler (any family) for images 0 .. n-1 of `noise` in batches and records
// every network input.
Trajectories record_trajectories(const DiffusionModel& model, const EpsModel& eps, const SamplerSpec& spec,
                                 NoiseSource& noise, int64_t n, int64_t batch, torch::Device device);
// A conditional model: each batch's conditioning (images first .. first + n - 1, with its guidance
// scale) from `conditioning`, its network from `eps_for`; the rows record the labels (see ys).
Trajectories record_trajectories(const DiffusionModel& model,
                                 const std::function<EpsModel(const Conditioning&)>& eps_for,
                                 const std::function<Conditioning(int64_t first, int64_t n)>& conditioning,
                                 const SamplerSpec& spec, NoiseSource& noise, int64_t n, int64_t batch,
                                 torch::Device device);
// The same with the ddim samplers on `schedule` (a bare ddim network).
Trajectories record_trajectories(const EpsModel& model, const DiffusionSchedule& schedule,
                                 const SamplerSpec& spec, NoiseSource& noise, int64_t n, int64_t batch,
                                 c10::IntArrayRef image_shape, torch::Device device);

struct CalibSet {
  torch::Tensor x;  // (N, C, H, W)
  torch::Tensor t;  // (N,) float32
  torch::Tensor y;  // (N,) int64 class labels (undefined: unconditional)
  // The rows' conditioning for the network's forward pass (no guidance: the rows are the network's
  // own inputs, unconditional ones included).
  Conditioning cond() const;
  int64_t size() const { return x.defined() ? x.size(0) : 0; }
  CalibSet slice(int64_t begin, int64_t end) const;
  CalibSet index(const torch::Tensor& idx) const;
};

CalibSet qdiffusion_calibration(const Trajectories& tr, int64_t cali_n, int64_t cali_st);
// PTQ4DM's normal-distributed timestep calibration; `loop_counter_t` = the reference's quirk.
CalibSet ndtc_calibration(const Trajectories& tr, double mu, double sigma, bool loop_counter_t,
                          uint64_t seed);
CalibSet random_pairs_calibration(const Trajectories& tr, int64_t count, uint64_t seed);

}  // namespace dmeval
