#include "generators/quant/binarizer.h"

#include <torch/torch.h>

#include "core/error.h"

namespace dmeval {

namespace {
struct BinaryQuantizeFn : public torch::autograd::Function<BinaryQuantizeFn> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& input) {
    ctx->save_for_backward({input});
    return torch::sign(input);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_output) {
    const torch::Tensor input = ctx->get_saved_variables()[0];
    torch::Tensor g = grad_output[0].clone();
    g.masked_fill_(input.gt(1), 0);
    g.masked_fill_(input.lt(-1), 0);
    return {g};
  }
};

// mean(|x|) over dims last .. 1, one dimension at a time (keepdim), as the reference nests them.
torch::Tensor nested_abs_mean(const torch::Tensor& x) {
  torch::Tensor m = torch::abs(x);
  for (int64_t d = x.dim() - 1; d >= 1; --d) m = torch::mean(m, d, /*keepdim=*/true);
  return m;
}
}  // namespace

torch::Tensor binary_quantize(const torch::Tensor& x) {
  return BinaryQuantizeFn::apply(x);
}

WeightBinarizer::WeightBinarizer(int order) : order_(order) {
  DMEVAL_CHECK(order == 1 || order == 2, "binarizer order {} must be 1 or 2", order);
}

torch::Tensor WeightBinarizer::forward(const torch::Tensor& w) {
  DMEVAL_CHECK(w.dim() >= 2, "binarizer: weight must have an output dimension and at least one more");
  if (!inited_) {
    torch::NoGradGuard no_grad;
    s1_ = nested_abs_mean(w.detach());
  }
  if (!s1_.requires_grad()) s1_.requires_grad_(true);
  torch::Tensor bw = binary_quantize(w) * s1_;
  if (order_ == 1) {
    inited_ = true;
    return bw;
  }
  torch::Tensor res = w - bw;
  if (!inited_) {
    torch::NoGradGuard no_grad;
    s2_ = nested_abs_mean(res.detach());
  }
  if (!s2_.requires_grad()) s2_.requires_grad_(true);
  inited_ = true;
  return bw + binary_quantize(res) * s2_;
}

}  // namespace dmeval
