// AdaRound (Nagel et al. 2020) as q-diffusion's qdiff/adaptive_rounding.py runs it (round mode
// `learned_hard_sigmoid`, spec generators.md §5.2): per-weight rounding logits α initialised so the
// rectified sigmoid equals the fractional part of W/Δ, a soft forward for reconstruction, a hard
// forward (round up where α >= 0) afterwards; the rounding regulariser and temperature decay of its
// LossFunction / LinearTempDecay.
#pragma once

#include <torch/types.h>

#include "generators/quant/uniform_quantizer.h"

namespace dmeval {

class AdaRoundQuantizer {
 public:
  // Takes Δ, z and the grid from an initialised uniform quantizer; α from `weight`.
  AdaRoundQuantizer(const UniformQuantizer& base, const torch::Tensor& weight);
  // Restores a calibrated state (q-diffusion checkpoints store alpha, delta, zero_point).
  AdaRoundQuantizer(torch::Tensor delta, torch::Tensor zero_point, int64_t n_levels, torch::Tensor alpha);

  torch::Tensor forward(const torch::Tensor& weight) const;     // soft or hard per soft_targets
  torch::Tensor soft_targets() const;                           // h(α) in [0, 1]
  torch::Tensor hard_codes(const torch::Tensor& weight) const;  // clamp(floor(W/Δ) + [α >= 0] + z)
  torch::Tensor& alpha() { return alpha_; }
  const torch::Tensor& delta() const { return delta_; }
  const torch::Tensor& zero_point() const { return zero_point_; }
  int64_t n_levels() const { return n_levels_; }
  bool soft = false;

  static constexpr double kGamma = -0.1, kZeta = 1.1;

 private:
  torch::Tensor delta_, zero_point_, alpha_;
  int64_t n_levels_;
};

// BRECQ's LinearTempDecay: start_b until rel_start_decay * t_max, then linear to end_b at t_max.
double linear_temp_decay(int64_t t, int64_t t_max, double rel_start_decay, double start_b, double end_b);

// q-diffusion's LossFunction with round_loss 'relaxation' and rec_loss 'mse', called for the
// `count`-th time (1-based): lp_loss(pred, tgt, p) + [count >= warmup * max_count] weight *
// sum(1 - |2 h - 1|^b), b from the temperature decay.
struct AdaRoundLoss {
  double weight = 0.01;
  int64_t max_count = 20000;
  double b_start = 20, b_end = 2, warmup = 0.2, decay_start = 0, p = 2.0;
  torch::Tensor operator()(const torch::Tensor& pred, const torch::Tensor& tgt, const AdaRoundQuantizer& q,
                           int64_t count) const;
  double temperature(int64_t count) const;
};

}  // namespace dmeval
