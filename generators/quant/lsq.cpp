#include "generators/quant/lsq.h"

#include <torch/torch.h>

#include <cmath>

#include "core/error.h"

namespace dmeval {

torch::Tensor grad_scale(const torch::Tensor& x, double scale) {
  torch::Tensor y_grad = x * scale;
  return x.detach() - y_grad.detach() + y_grad;
}

torch::Tensor round_pass(const torch::Tensor& x) {
  return x.round().detach() - x.detach() + x;
}

LsqActQuantizer::LsqActQuantizer(int bits)
    : bits_(bits), qn_(-(int64_t{1} << (bits - 1))), qp_((int64_t{1} << (bits - 1)) - 1) {
  DMEVAL_CHECK(bits >= 2 && bits <= 16, "LSQ quantizer: {} bits not supported", bits);
}

LsqResult LsqActQuantizer::forward(const torch::Tensor& x) const {
  torch::Tensor alpha;
  {
    torch::NoGradGuard no_grad;
    alpha = 2 * x.abs().mean() / std::sqrt(static_cast<double>(qp_));
  }
  return forward_with_alpha(x, alpha.reshape({1}).detach().requires_grad_(true));
}

LsqResult LsqActQuantizer::forward_with_alpha(const torch::Tensor& x, const torch::Tensor& alpha) const {
  const double g = 1.0 / std::sqrt(static_cast<double>(x.numel()) * static_cast<double>(qp_));
  torch::Tensor a = grad_scale(alpha, g);
  torch::Tensor q = round_pass((x / a).clamp(static_cast<double>(qn_), static_cast<double>(qp_)));
  LsqResult r;
  r.codes = q.detach();
  r.out = q * a;
  r.alpha = alpha;
  return r;
}

}  // namespace dmeval
