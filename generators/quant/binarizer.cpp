#include "generators/quant/binarizer.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
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

WeightBinarizer::WeightBinarizer(int order, torch::Tensor s1, torch::Tensor s2)
    : order_(order), s1_(std::move(s1)), s2_(std::move(s2)) {
  DMEVAL_CHECK(order == 1 || order == 2, "binarizer order {} must be 1 or 2", order);
}

namespace {
// The first call's value into the scale: the given parameter's data (shape checked), or a new leaf.
void set_scale(torch::Tensor& scale, const torch::Tensor& value) {
  torch::NoGradGuard no_grad;
  if (!scale.defined()) {
    scale = value.clone();
    return;
  }
  DMEVAL_CHECK(scale.sizes() == value.sizes(), "binarizer: scale shape {} does not fit the weight's {}",
               fmt::format("{}", fmt::join(scale.sizes(), "x")),
               fmt::format("{}", fmt::join(value.sizes(), "x")));
  scale.copy_(value);
}
}  // namespace

torch::Tensor WeightBinarizer::forward(const torch::Tensor& w) {
  DMEVAL_CHECK(w.dim() >= 2, "binarizer: weight must have an output dimension and at least one more");
  if (!inited_) {
    set_scale(s1_, nested_abs_mean(w.detach()));
  }
  if (!s1_.requires_grad()) s1_.requires_grad_(true);
  torch::Tensor bw = binary_quantize(w) * s1_;
  if (order_ == 1) {
    inited_ = true;
    return bw;
  }
  torch::Tensor res = w - bw;
  if (!inited_) {
    set_scale(s2_, nested_abs_mean(res.detach()));
  }
  if (!s2_.requires_grad()) s2_.requires_grad_(true);
  inited_ = true;
  return bw + binary_quantize(res) * s2_;
}

}  // namespace dmeval
