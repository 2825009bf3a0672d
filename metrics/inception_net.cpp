#include "metrics/inception_net.h"

#include "core/error.h"
#include "core/torch_bridge.h"

namespace dmeval {

namespace F = torch::nn::functional;

BasicConv2dImpl::BasicConv2dImpl(int64_t in, int64_t out, torch::ExpandingArray<2> kernel,
                                 torch::ExpandingArray<2> stride, torch::ExpandingArray<2> padding) {
  conv = register_module(
      "conv", torch::nn::Conv2d(
                  torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).bias(false)));
  bn = register_module("bn", torch::nn::BatchNorm2d(torch::nn::BatchNormOptions(out).eps(0.001)));
  stride_ = {(*stride)[0], (*stride)[1]};
  padding_ = {(*padding)[0], (*padding)[1]};
}

torch::Tensor BasicConv2dImpl::forward(const torch::Tensor& x) {
  if (folded_weight_.defined())
    return torch::conv2d(x, folded_weight_, folded_bias_, stride_, padding_).relu_();
  return torch::relu(bn->forward(conv->forward(x)));
}

void BasicConv2dImpl::set_fast(bool on) {
  torch::NoGradGuard no_grad;
  if (!on) {
    folded_weight_ = folded_bias_ = torch::Tensor();
    return;
  }
  // y = (conv(x) - mean) * gamma / sqrt(var + eps) + beta = conv'(x) + b'
  torch::Tensor scale = bn->weight / torch::sqrt(bn->running_var + bn->options.eps());
  folded_weight_ = (conv->weight * scale.view({-1, 1, 1, 1})).contiguous(at::MemoryFormat::ChannelsLast);
  folded_bias_ = bn->bias - bn->running_mean * scale;
}

namespace {

// Conv-BN-ReLU with a kh x kw kernel (libtorch's holders cannot forward brace lists).
BasicConv2d cbr_rect(int64_t in, int64_t out, int64_t kh, int64_t kw, int64_t stride, int64_t ph,
                     int64_t pw) {
  return BasicConv2d(std::make_shared<BasicConv2dImpl>(in, out, torch::ExpandingArray<2>({kh, kw}),
                                                       torch::ExpandingArray<2>({stride, stride}),
                                                       torch::ExpandingArray<2>({ph, pw})));
}
BasicConv2d cbr(int64_t in, int64_t out, int64_t k, int64_t stride = 1, int64_t pad = 0) {
  return cbr_rect(in, out, k, k, stride, pad, pad);
}

// TF's SAME average pooling ignores the padded zeros.
torch::Tensor avg_pool_same(const torch::Tensor& x) {
  return F::avg_pool2d(x, F::AvgPool2dFuncOptions(3).stride(1).padding(1).count_include_pad(false));
}
torch::Tensor max_pool_s2(const torch::Tensor& x) {
  return F::max_pool2d(x, F::MaxPool2dFuncOptions(3).stride(2));
}

struct BlockA : torch::nn::Module {  // Mixed_5b/5c/5d
  BasicConv2d b1x1, b5_1, b5_2, bd_1, bd_2, bd_3, pool;
  BlockA(int64_t in, int64_t pool_features)
      : b1x1(register_module("branch1x1", cbr(in, 64, 1))),
        b5_1(register_module("branch5x5_1", cbr(in, 48, 1))),
        b5_2(register_module("branch5x5_2", cbr(48, 64, 5, 1, 2))),
        bd_1(register_module("branch3x3dbl_1", cbr(in, 64, 1))),
        bd_2(register_module("branch3x3dbl_2", cbr(64, 96, 3, 1, 1))),
        bd_3(register_module("branch3x3dbl_3", cbr(96, 96, 3, 1, 1))),
        pool(register_module("branch_pool", cbr(in, pool_features, 1))) {}
  torch::Tensor forward(const torch::Tensor& x) {
    return torch::cat({b1x1(x), b5_2(b5_1(x)), bd_3(bd_2(bd_1(x))), pool(avg_pool_same(x))}, 1);
  }
};

struct BlockB : torch::nn::Module {  // Mixed_6a
  BasicConv2d b3, bd_1, bd_2, bd_3;
  explicit BlockB(int64_t in)
      : b3(register_module("branch3x3", cbr(in, 384, 3, 2))),
        bd_1(register_module("branch3x3dbl_1", cbr(in, 64, 1))),
        bd_2(register_module("branch3x3dbl_2", cbr(64, 96, 3, 1, 1))),
        bd_3(register_module("branch3x3dbl_3", cbr(96, 96, 3, 2))) {}
  torch::Tensor forward(const torch::Tensor& x) {
    return torch::cat({b3(x), bd_3(bd_2(bd_1(x))), max_pool_s2(x)}, 1);
  }
};

struct BlockC : torch::nn::Module {  // Mixed_6b..6e
  BasicConv2d b1x1, b7_1, b7_2, b7_3, bd_1, bd_2, bd_3, bd_4, bd_5, pool;
  explicit BlockC(int64_t c7)
      : b1x1(register_module("branch1x1", cbr(768, 192, 1))),
        b7_1(register_module("branch7x7_1", cbr(768, c7, 1))),
        b7_2(register_module("branch7x7_2", cbr_rect(c7, c7, 1, 7, 1, 0, 3))),
        b7_3(register_module("branch7x7_3", cbr_rect(c7, 192, 7, 1, 1, 3, 0))),
        bd_1(register_module("branch7x7dbl_1", cbr(768, c7, 1))),
        bd_2(register_module("branch7x7dbl_2", cbr_rect(c7, c7, 7, 1, 1, 3, 0))),
        bd_3(register_module("branch7x7dbl_3", cbr_rect(c7, c7, 1, 7, 1, 0, 3))),
        bd_4(register_module("branch7x7dbl_4", cbr_rect(c7, c7, 7, 1, 1, 3, 0))),
        bd_5(register_module("branch7x7dbl_5", cbr_rect(c7, 192, 1, 7, 1, 0, 3))),
        pool(register_module("branch_pool", cbr(768, 192, 1))) {}
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor* branch1x1_out = nullptr) {
    torch::Tensor a = b1x1(x);
    if (branch1x1_out) *branch1x1_out = a;
    return torch::cat({a, b7_3(b7_2(b7_1(x))), bd_5(bd_4(bd_3(bd_2(bd_1(x))))), pool(avg_pool_same(x))}, 1);
  }
};

struct BlockD : torch::nn::Module {  // Mixed_7a
  BasicConv2d b3_1, b3_2, b7_1, b7_2, b7_3, b7_4;
  BlockD()
      : b3_1(register_module("branch3x3_1", cbr(768, 192, 1))),
        b3_2(register_module("branch3x3_2", cbr(192, 320, 3, 2))),
        b7_1(register_module("branch7x7x3_1", cbr(768, 192, 1))),
        b7_2(register_module("branch7x7x3_2", cbr_rect(192, 192, 1, 7, 1, 0, 3))),
        b7_3(register_module("branch7x7x3_3", cbr_rect(192, 192, 7, 1, 1, 3, 0))),
        b7_4(register_module("branch7x7x3_4", cbr(192, 192, 3, 2))) {}
  torch::Tensor forward(const torch::Tensor& x) {
    return torch::cat({b3_2(b3_1(x)), b7_4(b7_3(b7_2(b7_1(x)))), max_pool_s2(x)}, 1);
  }
};

struct BlockE : torch::nn::Module {  // Mixed_7b (average pool), Mixed_7c (max pool)
  BasicConv2d b1x1, b3_1, b3_2a, b3_2b, bd_1, bd_2, bd_3a, bd_3b, pool;
  bool max_pool;
  BlockE(int64_t in, bool max_pool_branch)
      : b1x1(register_module("branch1x1", cbr(in, 320, 1))),
        b3_1(register_module("branch3x3_1", cbr(in, 384, 1))),
        b3_2a(register_module("branch3x3_2a", cbr_rect(384, 384, 1, 3, 1, 0, 1))),
        b3_2b(register_module("branch3x3_2b", cbr_rect(384, 384, 3, 1, 1, 1, 0))),
        bd_1(register_module("branch3x3dbl_1", cbr(in, 448, 1))),
        bd_2(register_module("branch3x3dbl_2", cbr(448, 384, 3, 1, 1))),
        bd_3a(register_module("branch3x3dbl_3a", cbr_rect(384, 384, 1, 3, 1, 0, 1))),
        bd_3b(register_module("branch3x3dbl_3b", cbr_rect(384, 384, 3, 1, 1, 1, 0))),
        pool(register_module("branch_pool", cbr(in, 192, 1))),
        max_pool(max_pool_branch) {}
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor t = b3_1(x);
    torch::Tensor d = bd_2(bd_1(x));
    torch::Tensor p =
        max_pool ? F::max_pool2d(x, F::MaxPool2dFuncOptions(3).stride(1).padding(1)) : avg_pool_same(x);
    return torch::cat(
        {b1x1(x), torch::cat({b3_2a(t), b3_2b(t)}, 1), torch::cat({bd_3a(d), bd_3b(d)}, 1), pool(p)}, 1);
  }
};

}  // namespace

struct FidInceptionImpl::Impl {
  BasicConv2d c1a{nullptr}, c2a{nullptr}, c2b{nullptr}, c3b{nullptr}, c4a{nullptr};
  std::shared_ptr<BlockA> m5b, m5c, m5d;
  std::shared_ptr<BlockB> m6a;
  std::shared_ptr<BlockC> m6b, m6c, m6d, m6e;
  std::shared_ptr<BlockD> m7a;
  std::shared_ptr<BlockE> m7b, m7c;
  torch::nn::Linear fc{nullptr};
};

FidInceptionImpl::FidInceptionImpl() : impl_(std::make_shared<Impl>()) {
  Impl& m = *impl_;
  m.c1a = register_module("Conv2d_1a_3x3", cbr(3, 32, 3, 2));
  m.c2a = register_module("Conv2d_2a_3x3", cbr(32, 32, 3));
  m.c2b = register_module("Conv2d_2b_3x3", cbr(32, 64, 3, 1, 1));
  m.c3b = register_module("Conv2d_3b_1x1", cbr(64, 80, 1));
  m.c4a = register_module("Conv2d_4a_3x3", cbr(80, 192, 3));
  m.m5b = register_module("Mixed_5b", std::make_shared<BlockA>(192, 32));
  m.m5c = register_module("Mixed_5c", std::make_shared<BlockA>(256, 64));
  m.m5d = register_module("Mixed_5d", std::make_shared<BlockA>(288, 64));
  m.m6a = register_module("Mixed_6a", std::make_shared<BlockB>(288));
  m.m6b = register_module("Mixed_6b", std::make_shared<BlockC>(128));
  m.m6c = register_module("Mixed_6c", std::make_shared<BlockC>(160));
  m.m6d = register_module("Mixed_6d", std::make_shared<BlockC>(160));
  m.m6e = register_module("Mixed_6e", std::make_shared<BlockC>(192));
  m.m7a = register_module("Mixed_7a", std::make_shared<BlockD>());
  m.m7b = register_module("Mixed_7b", std::make_shared<BlockE>(1280, false));
  m.m7c = register_module("Mixed_7c", std::make_shared<BlockE>(2048, true));
  m.fc = register_module("fc", torch::nn::Linear(2048, 1008));
  eval();
}

InceptionOutput FidInceptionImpl::forward(const torch::Tensor& input, const InceptionTaps& taps) {
  Impl& m = *impl_;
  InceptionOutput out;
  // The tools pool with adaptive_avg_pool2d(1); same kernel here so the summation order matches.
  auto spatial_mean = [](const torch::Tensor& t) {
    return F::adaptive_avg_pool2d(t, F::AdaptiveAvgPool2dFuncOptions(1)).flatten(1);
  };
  torch::Tensor x = m.c2b(m.c2a(m.c1a(fast_ ? input.contiguous(at::MemoryFormat::ChannelsLast) : input)));
  x = max_pool_s2(x);
  if (taps.pool_64) out.pool_64 = spatial_mean(x);
  x = m.c4a(m.c3b(x));
  x = max_pool_s2(x);
  if (taps.pool_192) out.pool_192 = spatial_mean(x);
  x = m.m5d->forward(m.m5c->forward(m.m5b->forward(x)));
  x = m.m6c->forward(m.m6b->forward(m.m6a->forward(x)));
  torch::Tensor b1x1;
  x = m.m6d->forward(x, taps.spatial ? &b1x1 : nullptr);
  if (taps.spatial) {  // channels 0-6, laid out (h, w, c) as ADM's NHWC [..., :7]
    out.spatial = b1x1.slice(1, 0, 7).permute({0, 2, 3, 1}).reshape({b1x1.size(0), -1}).contiguous();
  }
  x = m.m6e->forward(x);
  if (taps.mixed_6e_768) out.mixed_6e_768 = spatial_mean(x);
  if (!(taps.pool3 || taps.logits || taps.logits_unbiased)) return out;
  x = m.m7c->forward(m.m7b->forward(m.m7a->forward(x)));
  torch::Tensor pool3 = spatial_mean(x);
  if (taps.pool3) out.pool3 = pool3;
  if (taps.logits_unbiased || taps.logits) {
    torch::Tensor unbiased = torch::matmul(pool3, m.fc->weight.t());
    if (taps.logits_unbiased) out.logits_unbiased = unbiased;
    if (taps.logits) out.logits = F::linear(pool3, m.fc->weight, m.fc->bias);
  }
  return out;
}

void FidInceptionImpl::set_fast_path(bool on) {
  fast_ = on;
  for (const auto& module : modules(/*include_self=*/false))
    if (auto* b = module->as<BasicConv2dImpl>()) b->set_fast(on);
}

void FidInceptionImpl::load(const Checkpoint& weights) {
  torch::NoGradGuard no_grad;
  std::map<std::string, torch::Tensor> src = load_tensors(weights);
  std::map<std::string, torch::Tensor> dst;
  for (auto& p : named_parameters()) dst[p.key()] = p.value();
  for (auto& b : named_buffers()) dst[b.key()] = b.value();
  for (const auto& [name, t] : src) {
    auto it = dst.find(name);
    if (it == dst.end())
      fail("{}: unexpected entry '{}' for the FID Inception network (is this the right file?)",
           weights.path(), name);
    if (it->second.sizes() != t.sizes())
      fail("{}: '{}' has shape {} but the network expects {}", weights.path(), name,
           shape_str(t.sizes().vec()), shape_str(it->second.sizes().vec()));
    it->second.copy_(t);
  }
  for (const auto& [name, t] : dst) {
    if (!src.count(name) && name.find("num_batches_tracked") == std::string::npos)
      fail("{}: missing entry '{}' of the FID Inception network", weights.path(), name);
  }
  if (fast_) set_fast_path(true);
}

}  // namespace dmeval
