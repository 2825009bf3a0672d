#include "generators/bi_diffsr/sr3_unet.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace dmeval {

namespace {

thread_local Sr3Cost* g_sr3 = nullptr;

torch::Tensor swish(const torch::Tensor& x) {
  return x * torch::sigmoid(x);
}

std::shared_ptr<torch::nn::Module> holder(torch::nn::Module& parent, const std::string& name) {
  return parent.register_module(name, std::make_shared<torch::nn::Module>());
}

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride, bool bias) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).stride(stride).padding(k / 2).bias(bias));
}

torch::Tensor counted_conv(torch::nn::Conv2d& c, const torch::Tensor& x) {
  torch::Tensor y = c(x);
  if (g_sr3) {
    const auto& w = c->weight;
    g_sr3->macs_conv += static_cast<double>(y.numel() * w.size(1) * w.size(2) * w.size(3));
  }
  return y;
}

torch::Tensor counted_linear(torch::nn::Linear& l, const torch::Tensor& x) {
  torch::Tensor y = l(x);
  if (g_sr3) g_sr3->macs_linear += static_cast<double>(y.numel() * l->weight.size(1));
  return y;
}

torch::Tensor counted_norm(torch::nn::GroupNorm& n, const torch::Tensor& x) {
  if (g_sr3) g_sr3->groupnorm_elements += static_cast<double>(x.numel());
  return n(x);
}

}  // namespace

// downs/mid/ups entries after conv_in: ResnetBlocWithAttn, Downsample, Upsample.
struct Sr3UNetImpl::Layer : public torch::nn::Module {
  enum Kind { kRes, kDown, kUp } kind;
  torch::nn::Conv2d c{nullptr}, res_conv{nullptr}, conv1{nullptr}, conv2{nullptr}, qkv{nullptr}, out{nullptr};
  torch::nn::GroupNorm n1{nullptr}, n2{nullptr}, an{nullptr};
  torch::nn::Linear noise{nullptr};

  Layer(Kind k, int64_t in, int64_t outc, const BiDiffSrConfig& cfg, bool with_attn = false) : kind(k) {
    switch (k) {
      case kRes: {
        auto rb = holder(*this, "res_block");
        noise = holder(*holder(*rb, "noise_func"), "noise_func")
                    ->register_module("0", torch::nn::Linear(cfg.inner_channel, outc));
        auto b1 = holder(*holder(*rb, "block1"), "block");
        n1 = b1->register_module("0", torch::nn::GroupNorm(cfg.norm_groups, in));
        conv1 = b1->register_module("3", conv(in, outc, 3, 1, true));
        auto b2 = holder(*holder(*rb, "block2"), "block");
        n2 = b2->register_module("0", torch::nn::GroupNorm(cfg.norm_groups, outc));
        conv2 = b2->register_module("3", conv(outc, outc, 3, 1, true));
        if (in != outc) res_conv = rb->register_module("res_conv", conv(in, outc, 1, 1, true));
        if (with_attn) {
          auto a = holder(*this, "attn");
          an = a->register_module("norm", torch::nn::GroupNorm(cfg.norm_groups, outc));
          qkv = a->register_module("qkv", conv(outc, 3 * outc, 1, 1, false));
          out = a->register_module("out", conv(outc, outc, 1, 1, true));
        }
        break;
      }
      case kDown: c = register_module("conv", conv(in, in, 3, 2, true)); break;
      case kUp: c = register_module("conv", conv(in, in, 3, 1, true)); break;
    }
  }

  torch::Tensor run(const torch::Tensor& x, const torch::Tensor& e) {
    switch (kind) {
      case kRes: {
        torch::Tensor h = counted_conv(conv1, swish(counted_norm(n1, x)));
        h = h + counted_linear(noise, e).unsqueeze(-1).unsqueeze(-1);
        h = counted_conv(conv2, swish(counted_norm(n2, h)));  // Dropout: identity at test
        h = h + (res_conv ? counted_conv(res_conv, x) : x);
        if (!an) return h;
        const int64_t b = h.size(0), ch = h.size(1), n = h.size(2) * h.size(3);
        auto parts = counted_conv(qkv, counted_norm(an, h)).reshape({b, 3 * ch, n}).chunk(3, 1);
        torch::Tensor attn = torch::softmax(
            torch::bmm(parts[0].transpose(1, 2), parts[1]) / std::sqrt(static_cast<double>(ch)), -1);
        if (g_sr3) g_sr3->macs_attention += 2.0 * static_cast<double>(b * n * n * ch);
        torch::Tensor o = torch::bmm(parts[2], attn.transpose(1, 2)).reshape(h.sizes());
        return counted_conv(out, o) + h;
      }
      case kDown: return counted_conv(c, x);
      case kUp: {
        torch::Tensor u = torch::upsample_nearest2d(x, c10::nullopt, std::vector<double>{2.0, 2.0});
        if (g_sr3) g_sr3->upsample_elements += static_cast<double>(u.numel());
        return counted_conv(c, u);
      }
    }
    return x;
  }
};

Sr3UNetImpl::Sr3UNetImpl(const BiDiffSrConfig& c) : config_(c) {
  auto mlp = holder(*this, "noise_level_mlp");
  mlp1_ = mlp->register_module("1", torch::nn::Linear(c.inner_channel, 4 * c.inner_channel));
  mlp3_ = mlp->register_module("3", torch::nn::Linear(4 * c.inner_channel, c.inner_channel));
  auto downs = holder(*this, "downs");
  // Layers are named by their index in the reference's ModuleList (downs.0 is conv_in).
  auto add = [](torch::nn::Module& parent, std::vector<std::shared_ptr<Layer>>& list,
                std::shared_ptr<Layer> l, size_t offset) {
    parent.register_module(std::to_string(list.size() + offset), l);
    list.push_back(std::move(l));
  };
  auto in = [](const std::vector<int64_t>& v, int64_t x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  };
  conv_in_ = downs->register_module("0", conv(c.in_channel, c.inner_channel, 3, 1, true));
  int64_t pre = c.inner_channel, now_res = c.image_size;
  std::vector<int64_t> feats = {pre};
  const size_t levels = c.channel_mults.size();
  for (size_t l = 0; l < levels; ++l) {
    const int64_t ch = c.inner_channel * c.channel_mults[l];
    for (int64_t b = 0; b < c.res_blocks; ++b) {
      add(*downs, downs_, std::make_shared<Layer>(Layer::kRes, pre, ch, c, in(c.attn_res, now_res)), 1);
      feats.push_back(ch);
      pre = ch;
    }
    if (l + 1 < levels) {
      add(*downs, downs_, std::make_shared<Layer>(Layer::kDown, pre, pre, c), 1);
      feats.push_back(pre);
      now_res /= 2;
    }
  }
  auto mid = holder(*this, "mid");
  add(*mid, mid_, std::make_shared<Layer>(Layer::kRes, pre, pre, c, true), 0);
  add(*mid, mid_, std::make_shared<Layer>(Layer::kRes, pre, pre, c, false), 0);
  auto ups = holder(*this, "ups");
  for (size_t l = levels; l-- > 0;) {
    const int64_t ch = c.inner_channel * c.channel_mults[l];
    for (int64_t b = 0; b < c.res_blocks + 1; ++b) {
      add(*ups, ups_,
          std::make_shared<Layer>(Layer::kRes, pre + feats.back(), ch, c, in(c.attn_res, now_res)), 0);
      feats.pop_back();
      pre = ch;
    }
    if (l > 0) {
      add(*ups, ups_, std::make_shared<Layer>(Layer::kUp, pre, pre, c), 0);
      now_res *= 2;
    }
  }
  auto block = holder(*holder(*this, "final_conv"), "block");
  final_norm_ = block->register_module("0", torch::nn::GroupNorm(c.norm_groups, pre));
  final_conv_ = block->register_module("3", conv(pre, c.out_channel, 3, 1, true));
}

torch::Tensor Sr3UNetImpl::forward(const torch::Tensor& x, const torch::Tensor& c, const torch::Tensor& t) {
  torch::Tensor e = bi_diffsr_timestep_embedding(t.reshape({-1}), config_.inner_channel);
  e = counted_linear(mlp3_, swish(counted_linear(mlp1_, e)));
  torch::Tensor h = config_.in_channel != x.size(1) ? torch::cat({c, x}, 1) : x;
  std::vector<torch::Tensor> feats;
  h = counted_conv(conv_in_, h);
  feats.push_back(h);
  for (auto& d : downs_) {
    h = d->run(h, e);
    feats.push_back(h);
  }
  for (auto& m : mid_) h = m->run(h, e);
  for (auto& u : ups_) {
    if (u->kind == Layer::kRes) {
      h = u->run(torch::cat({h, feats.back()}, 1), e);
      feats.pop_back();
    } else {
      h = u->run(h, e);
    }
  }
  return counted_conv(final_conv_, swish(counted_norm(final_norm_, h)));
}

Sr3Cost sr3_cost(Sr3UNetImpl& net, int64_t height, int64_t width) {
  const BiDiffSrConfig& c = net.config();
  const int64_t f = int64_t{1} << (c.channel_mults.size() - 1);
  DMEVAL_CHECK(height % f == 0 && width % f == 0, "SR3 cost: {}x{} is not divisible by {}", height, width, f);
  Sr3Cost probe, cost;
  for (const auto& p : net.parameters()) cost.params += p.numel();
  const int64_t p = 4 * f;
  g_sr3 = &probe;
  try {
    torch::NoGradGuard no_grad;
    net.forward(torch::zeros({1, c.out_channel, p, p}), torch::zeros({1, c.in_channel - c.out_channel, p, p}),
                torch::zeros({1}, torch::kFloat32));
  } catch (...) {
    g_sr3 = nullptr;
    throw;
  }
  g_sr3 = nullptr;
  // Convolutions, GroupNorms and upsampling scale with the pixels, attention with their square, the
  // noise-level MLPs not at all.
  const double s = static_cast<double>(height * width) / static_cast<double>(p * p);
  cost.macs_conv = probe.macs_conv * s;
  cost.macs_linear = probe.macs_linear;
  cost.groupnorm_elements = probe.groupnorm_elements * s;
  cost.upsample_elements = probe.upsample_elements * s;
  cost.macs_attention = probe.macs_attention * s * s;
  return cost;
}

}  // namespace dmeval
