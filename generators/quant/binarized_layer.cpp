#include "generators/quant/binarized_layer.h"

#include <torch/torch.h>

#include <cmath>

#include "core/error.h"

namespace dmeval {

ActQuantizerImpl::ActQuantizerImpl(int bits) : lsq(bits) {
  // The reference allocates α uninitialised (torch.Tensor(1)); 0 as the golden drivers set it.
  alpha = register_parameter("alpha", torch::zeros({1}));
}

torch::Tensor ActQuantizerImpl::forward(const torch::Tensor& x) {
  {
    torch::NoGradGuard no_grad;
    alpha.copy_((2 * x.detach().abs().mean() / std::sqrt(static_cast<double>(lsq.qp()))).reshape({1}));
  }
  return lsq.forward_with_alpha(x, alpha).out;
}

LsqWeightQuantizer::LsqWeightQuantizer(int bits, torch::Tensor s)
    : step(std::move(s)), qn_(-(int64_t{1} << (bits - 1))), qp_((int64_t{1} << (bits - 1)) - 1) {
  DMEVAL_CHECK(bits >= 2 && bits <= 8, "LSQ weight quantizer: {} bits (2..8)", bits);
}

torch::Tensor LsqWeightQuantizer::forward(const torch::Tensor& w) {
  const double per_channel = static_cast<double>(w.numel() / w.size(0));
  if (!inited) {
    torch::NoGradGuard no_grad;
    torch::Tensor m = w.detach().abs().reshape({w.size(0), -1}).mean(1);
    step.copy_((2 * m / std::sqrt(static_cast<double>(qp_))).reshape(step.sizes()));
    inited = true;
  }
  torch::Tensor s = grad_scale(step, 1.0 / std::sqrt(per_channel * static_cast<double>(qp_)));
  return round_pass((w / s).clamp(static_cast<double>(qn_), static_cast<double>(qp_))) * s;
}

BnnLayer::BnnLayer(torch::nn::Module& layer, int64_t out, int64_t weight_dims, const BnnLayerSpec& spec,
                   torch::Generator gen)
    : spec_(spec) {
  DMEVAL_CHECK(spec.act_bits == 32 || (spec.act_bits >= 2 && spec.act_bits <= 16),
               "BNN layer: activation bits {} (2..16, or 32 for none)", spec.act_bits);
  std::vector<int64_t> shape(static_cast<size_t>(weight_dims), 1);
  shape[0] = out;
  if (spec.lsq_bits > 0) {
    step = layer.register_parameter("weight_step", torch::rand(shape, gen) * 0.001);
    lsq_ = std::make_unique<LsqWeightQuantizer>(spec.lsq_bits, step);
  } else {
    s1 = layer.register_parameter("scaling_first_order", torch::rand(shape, gen) * 0.001);
    // The reference registers the second-order scale on every layer (order 1 never uses it).
    s2 = layer.register_parameter("scaling_second_order", torch::rand(shape, gen) * 0.001);
    binarizer_ = std::make_unique<WeightBinarizer>(spec.order, s1, s2);
  }
  if (spec.act_bits != 32) act = layer.register_module("quantizer_a", ActQuantizer(spec.act_bits));
}

bool BnnLayer::inited() const {
  return lsq_ ? lsq_->inited : binarizer_->inited();
}

void BnnLayer::set_inited(bool on) {
  if (lsq_)
    lsq_->inited = on;
  else
    binarizer_->set_inited(on);
}

torch::Tensor BnnLayer::forward(const torch::Tensor& x, const LayerCall& call) {
  if (full || spec_.stays_full) return call.op(x, call.weight, call.bias);
  torch::Tensor xq = act ? act->forward(x) : x;
  torch::Tensor wq = lsq_ ? lsq_->forward(call.weight) : binarizer_->forward(call.weight);
  return call.op(xq, wq, call.bias);
}

BnnAttentionQuantizer::BnnAttentionQuantizer(torch::nn::Module& block, int bits) {
  auto holder = block.register_module("attention", std::make_shared<torch::nn::Module>());
  q_ = holder->register_module("act_quantizer_q", ActQuantizer(bits));
  k_ = holder->register_module("act_quantizer_k", ActQuantizer(bits));
  w_ = holder->register_module("act_quantizer_w", ActQuantizer(bits));  // the reference's order
  v_ = holder->register_module("act_quantizer_v", ActQuantizer(bits));
}

torch::nn::Module& module_at(torch::nn::Module& root, const std::string& path) {
  if (path.empty()) return root;
  for (const auto& item : root.named_modules("", false))
    if (item.key() == path) return *item.value();
  fail("no module '{}' in the network", path);
}

}  // namespace dmeval
