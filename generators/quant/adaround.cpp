#include "generators/quant/adaround.h"

#include <torch/torch.h>

#include <algorithm>

#include "core/error.h"

namespace dmeval {

AdaRoundQuantizer::AdaRoundQuantizer(const UniformQuantizer& base, const torch::Tensor& weight)
    : delta_(base.delta().detach()), zero_point_(base.zero_point().detach()), n_levels_(base.n_levels()) {
  DMEVAL_CHECK(delta_.defined(), "AdaRound needs an initialised uniform quantizer");
  torch::NoGradGuard no_grad;
  torch::Tensor x = weight.detach().clone();
  torch::Tensor x_floor = torch::floor(x / delta_);
  torch::Tensor rest = (x / delta_) - x_floor;                   // [0, 1)
  alpha_ = -torch::log((kZeta - kGamma) / (rest - kGamma) - 1);  // sigmoid(alpha) maps to rest
  alpha_.requires_grad_(true);
}

AdaRoundQuantizer::AdaRoundQuantizer(torch::Tensor delta, torch::Tensor zero_point, int64_t n_levels,
                                     torch::Tensor alpha)
    : delta_(std::move(delta)),
      zero_point_(std::move(zero_point)),
      alpha_(std::move(alpha)),
      n_levels_(n_levels) {}

torch::Tensor AdaRoundQuantizer::soft_targets() const {
  return torch::clamp(torch::sigmoid(alpha_) * (kZeta - kGamma) + kGamma, 0, 1);
}

torch::Tensor AdaRoundQuantizer::forward(const torch::Tensor& x) const {
  torch::Tensor x_floor = torch::floor(x / delta_);
  torch::Tensor x_int = soft ? x_floor + soft_targets() : x_floor + (alpha_ >= 0).to(torch::kFloat32);
  torch::Tensor x_quant = torch::clamp(x_int + zero_point_, 0, n_levels_ - 1);
  return (x_quant - zero_point_) * delta_;
}

torch::Tensor AdaRoundQuantizer::hard_codes(const torch::Tensor& x) const {
  torch::NoGradGuard no_grad;
  return torch::clamp(torch::floor(x / delta_) + (alpha_ >= 0).to(torch::kFloat32) + zero_point_, 0,
                      n_levels_ - 1);
}

double linear_temp_decay(int64_t t, int64_t t_max, double rel_start_decay, double start_b, double end_b) {
  const double start = rel_start_decay * static_cast<double>(t_max);
  if (static_cast<double>(t) < start) return start_b;
  const double rel_t = (static_cast<double>(t) - start) / (static_cast<double>(t_max) - start);
  return end_b + (start_b - end_b) * std::max(0.0, 1 - rel_t);
}

double AdaRoundLoss::temperature(int64_t count) const {
  return linear_temp_decay(count, max_count, warmup + (1 - warmup) * decay_start, b_start, b_end);
}

torch::Tensor AdaRoundLoss::operator()(const torch::Tensor& pred, const torch::Tensor& tgt,
                                       const AdaRoundQuantizer& q, int64_t count) const {
  torch::Tensor rec = lp_loss(pred, tgt, p, /*reduce_all=*/false);
  if (static_cast<double>(count) < static_cast<double>(max_count) * warmup) return rec;
  const double b = temperature(count);
  torch::Tensor round_loss = weight * (1 - ((q.soft_targets() - .5).abs() * 2).pow(b)).sum();
  return rec + round_loss;
}

}  // namespace dmeval
