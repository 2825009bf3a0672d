// DDPM training of a diffusion model of any family (ddim's runners/diffusion.py `train` loop in libtorch):
// ε-prediction loss Σ_chw (e − ε_θ(√ᾱ_t x_0 + √(1−ᾱ_t) e, t))² averaged over the batch, antithetic timesteps
// — the task; AdamW, gradient clipping, the EMA copy, checkpoints and exact resume are the shared training
// loop's (training_loop.h).
//
// Determinism: the batch of step s (image indices into the data, the horizontal flips, the timesteps
// and the noise) depends only on (seed, s) — Philox words, see ddpm_training.cpp — so a run resumed
// from the checkpoint of step s continues exactly as an uninterrupted one (on the same threads).
#pragma once

#include <torch/torch.h>

#include <functional>
#include <string>

#include "generators/beta_schedule.h"
#include "generators/ddim/ddim_unet.h"
#include "generators/diffusion_model.h"
#include "generators/training_loop.h"

namespace dmeval {

struct TrainOptions {
  int64_t steps = 20000;
  int64_t batch = 64;
  double lr = 2e-4;
  double weight_decay = 0.0;
  double grad_clip = 1.0;
  int64_t warmup = 500;  // linear learning-rate warm-up steps
  // Linear learning-rate decay to 0 from this step to `steps` (-1: constant after the warm-up).
  int64_t decay_from = -1;
  double ema_rate = 0.999;
  uint64_t seed = 0;
  bool flip = true;  // random horizontal flips
  // Class-conditional training (labels given): the probability that an image's label is replaced by
  // the unconditional class K (classifier-free guidance's label dropout).
  double label_dropout = 0.0;
  int64_t checkpoint_every = 1000;
  int64_t log_every = 100;
};

// Data: (N, C, H, W) uint8 images (pixels 0..255, mapped to [-1, 1] as ddim's data_transform, then
// through the model's encode()). `model` is the initial model (trained in place); its clone is the
// EMA copy. `dir` holds the checkpoint (`model.safetensors`, `ema.safetensors` in the family's weights
// format, `optimizer.pt`, `train.json`); an existing checkpoint there is resumed (its options must
// match). Returns the EMA model. `on_log` receives every log line's figures. `labels` ((N,) int64 in
// 0..K-1) trains a class-conditional model (K = model->num_classes()), each label dropped to K with
// probability options.label_dropout.
std::shared_ptr<DiffusionModel> train_ddpm(std::shared_ptr<DiffusionModel> model, const torch::Tensor& data,
                                           const TrainOptions& options, const std::string& dir,
                                           const std::function<void(const TrainProgress&)>& on_log = {},
                                           const torch::Tensor& labels = {});

// The ddim family: a fresh UNet of `config` initialised from options.seed, trained as above; returns
// the EMA UNet.
DdimUNet train_ddpm(const ModelConfig& config, const torch::Tensor& data, const TrainOptions& options,
                    const std::string& dir, const std::function<void(const TrainProgress&)>& on_log = {});

// One training batch of step `step` (for tests): x_0 in [-1, 1], t, e, and with `labels` the batch's
// labels y after the label dropout (to `unconditional`).
struct TrainBatch {
  torch::Tensor x0, t, e, y;
};
TrainBatch training_batch(const torch::Tensor& data, const TrainOptions& options, int64_t num_timesteps,
                          int64_t step, const torch::Tensor& labels = {}, int64_t unconditional = -1);

}  // namespace dmeval
