// Training of a VQ first stage (encoder, codebook, decoder) on uint8 images, for the embedded latent
// profile: dmeval's construction, simpler than taming-transformers' VQModel training — the loss is the
// L1 reconstruction error plus VectorQuantizer2's codebook and commitment terms
// (mean((sg[z_q] - z)^2) * beta + mean((z_q - sg[z])^2), the straight-through z + sg[z_q - z]), without
// the LPIPS perceptual term and the patch discriminator (neither has weights offline); the codebook
// starts at encoder outputs of the untrained encoder (not U(-1/n, 1/n)), so no code starts dead.
// AdamW, checkpoints and exact resume are the shared training loop's (training_loop.h); the batch of
// step s depends only on (seed, s) as in DDPM training.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <map>
#include <string>

#include "generators/ldm/vq_decoder.h"
#include "generators/training_loop.h"

namespace dmeval {

struct VqTrainOptions {
  int64_t steps = 4000;
  int64_t batch = 32;
  double lr = 5e-4;
  double weight_decay = 0.0;
  double grad_clip = 1.0;
  int64_t warmup = 200;
  int64_t decay_from = -1;  // linear decay to 0 from this step (-1: constant)
  double beta = 0.25;       // commitment weight (VectorQuantizer2's default)
  uint64_t seed = 0;
  bool flip = true;
  int64_t checkpoint_every = 500;
  int64_t log_every = 100;
};

// How well a first stage reconstructs images: mean |x - x̂| and PSNR (on [-1, 1] images mapped to
// [0, 1]), the codebook's use (distinct codes, perplexity) and the standard deviation of the latents
// encode() gives (LatentDiffusion's scale_by_std sets scale_factor = 1 / that).
struct VqQuality {
  double l1 = 0, psnr = 0, perplexity = 0, latent_std = 0;
  int64_t codes_used = 0;
};
VqQuality vq_quality(VqFirstStage& first_stage, const torch::Tensor& images_uint8, int64_t batch = 64);

// Trains a fresh first stage of `config` (initialised from options.seed) on `data` ((N, C, H, W)
// uint8), resuming the checkpoint in `dir` (`vq.safetensors` under first_stage_model.*,
// `optimizer.pt`, `train.json`). Returns the trained first stage (with its encoder).
VqFirstStage train_vq(const VqDecoderConfig& config, const torch::Tensor& data, const VqTrainOptions& options,
                      const std::string& dir, const std::function<void(const TrainProgress&)>& on_log = {});

// A first stage with its encoder from a file written by train_vq (or any file holding first_stage_model.*
// with the encoder), every key and shape checked. Returns the file's SHA-256 through `sha256`.
VqFirstStage load_vq_autoencoder(const VqDecoderConfig& config, const std::string& path,
                                 std::string* sha256 = nullptr);

}  // namespace dmeval
