#include "generators/ddim/ddim_unet.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace dmeval {

namespace {

// ddim's `nonlinearity`: written as a product, not a fused SiLU (the bits differ).
torch::Tensor swish(const torch::Tensor& x) {
  return x * torch::sigmoid(x);
}

torch::nn::GroupNorm normalize(int64_t channels) {
  return torch::nn::GroupNorm(torch::nn::GroupNormOptions(32, channels).eps(1e-6).affine(true));
}

bool contains(const std::vector<int64_t>& v, int64_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

torch::Tensor ddim_timestep_embedding(const torch::Tensor& t, int64_t dim) {
  DMEVAL_CHECK(t.dim() == 1, "timesteps must be a 1-D tensor, got {} dimensions", t.dim());
  DMEVAL_CHECK(dim >= 4, "timestep embedding dimension {} too small", dim);
  const int64_t half = dim / 2;
  const double k = std::log(10000.0) / static_cast<double>(half - 1);
  // float32 arange times the double constant (rounded to float32 by the multiplication, as in PyTorch).
  torch::Tensor freq = torch::exp(torch::arange(half, torch::dtype(torch::kFloat32)) * -k).to(t.device());
  torch::Tensor arg = t.to(torch::kFloat32).unsqueeze(1) * freq.unsqueeze(0);
  torch::Tensor emb = torch::cat({torch::sin(arg), torch::cos(arg)}, 1);
  if (dim % 2 == 1) emb = torch::constant_pad_nd(emb, {0, 1, 0, 0}, 0);
  return emb;
}

ResnetBlockImpl::ResnetBlockImpl(int64_t in, int64_t out, int64_t temb_channels, double p)
    : in_channels(in), out_channels(out), dropout(p) {
  norm1 = register_module("norm1", normalize(in));
  conv1 = register_module("conv1", Conv2dLayer(in, out, 3, 1, 1, LayerRole::kResblockConv));
  temb_proj = register_module("temb_proj", LinearLayer(temb_channels, out, LayerRole::kResblockTembProj));
  norm2 = register_module("norm2", normalize(out));
  conv2 = register_module("conv2", Conv2dLayer(out, out, 3, 1, 1, LayerRole::kResblockConv));
  if (in != out)
    nin_shortcut =
        register_module("nin_shortcut", Conv2dLayer(in, out, 1, 1, 0, LayerRole::kResblockShortcut));
}

torch::Tensor ResnetBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& temb, int64_t split) {
  torch::Tensor h = conv1(swish(norm1(x)));
  h = h + temb_proj(swish(temb)).unsqueeze(-1).unsqueeze(-1);
  h = swish(norm2(h));
  if (dropout > 0 && is_training()) h = torch::dropout(h, dropout, /*train=*/true);
  h = conv2(h);
  torch::Tensor skip = nin_shortcut ? nin_shortcut->forward(x, split) : x;
  torch::Tensor out = skip + h;
  if (probe) probe(x, temb, out);
  return out;
}

AttnBlockImpl::AttnBlockImpl(int64_t c) {
  norm = register_module("norm", normalize(c));
  q = register_module("q", Conv2dLayer(c, c, 1, 1, 0, LayerRole::kAttention1x1));
  k = register_module("k", Conv2dLayer(c, c, 1, 1, 0, LayerRole::kAttention1x1));
  v = register_module("v", Conv2dLayer(c, c, 1, 1, 0, LayerRole::kAttention1x1));
  proj_out = register_module("proj_out", Conv2dLayer(c, c, 1, 1, 0, LayerRole::kAttention1x1));
}

torch::Tensor AttnBlockImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = norm(x);
  torch::Tensor qh = q(h), kh = k(h), vh = v(h);
  const int64_t b = qh.size(0), c = qh.size(1), hh = qh.size(2), ww = qh.size(3);
  torch::Tensor qm = qh.reshape({b, c, hh * ww}).permute({0, 2, 1});  // b, hw, c
  torch::Tensor km = kh.reshape({b, c, hh * ww});                     // b, c, hw
  if (quantizer) {
    qm = quantizer->q(qm);
    km = quantizer->k(km);
  }
  torch::Tensor w = torch::bmm(qm, km);            // b, hw, hw
  w = w * std::pow(static_cast<double>(c), -0.5);  // Python's int(c)**(-0.5)
  w = torch::softmax(w, 2);
  torch::Tensor vm = vh.reshape({b, c, hh * ww});
  torch::Tensor wt = w.permute({0, 2, 1});
  if (quantizer) {
    vm = quantizer->v(vm);
    wt = quantizer->w(wt);
  }
  torch::Tensor out = torch::bmm(vm, wt).reshape({b, c, hh, ww});
  if (MacCounter* counter = MacCounter::active()) counter->attention += 2 * b * (hh * ww) * (hh * ww) * c;
  torch::Tensor y = x + proj_out(out);
  if (probe) probe(x, y);
  return y;
}

DdimUNetImpl::DdimUNetImpl(const UNetConfig& cfg) : config_(cfg) {
  ModelConfig check;
  check.unet = cfg;
  check.channels = cfg.in_channels;
  validate(check);
  const int64_t ch = cfg.ch, temb_ch = 4 * ch;
  const auto levels = static_cast<int64_t>(cfg.ch_mult.size());
  std::vector<int64_t> in_ch_mult = {1};
  in_ch_mult.insert(in_ch_mult.end(), cfg.ch_mult.begin(), cfg.ch_mult.end());

  if (cfg.type == "bayesian") logvar_ = register_parameter("logvar", torch::zeros({cfg.num_timesteps}));

  temb_ = register_module("temb", std::make_shared<torch::nn::Module>());
  auto dense = temb_->register_module("dense", torch::nn::ModuleList());
  dense0_ = LinearLayer(ch, temb_ch, LayerRole::kTimestepMlp);
  dense1_ = LinearLayer(temb_ch, temb_ch, LayerRole::kTimestepMlp);
  dense->push_back(dense0_);
  dense->push_back(dense1_);

  conv_in_ = register_module("conv_in", Conv2dLayer(cfg.in_channels, ch, 3, 1, 1, LayerRole::kFirstConv));

  int64_t curr_res = cfg.resolution, block_in = 0;
  auto down_list = register_module("down", torch::nn::ModuleList());
  for (int64_t i = 0; i < levels; ++i) {
    auto level = std::make_shared<Level>();
    level->block = level->register_module("block", torch::nn::ModuleList());
    level->attn = level->register_module("attn", torch::nn::ModuleList());
    block_in = ch * in_ch_mult[i];
    const int64_t block_out = ch * cfg.ch_mult[i];
    for (int64_t j = 0; j < cfg.num_res_blocks; ++j) {
      level->block->push_back(ResnetBlock(block_in, block_out, temb_ch, cfg.dropout));
      block_in = block_out;
      if (contains(cfg.attn_resolutions, curr_res)) level->attn->push_back(AttnBlock(block_in));
    }
    if (i != levels - 1) {
      level->resample = level->register_module("downsample", std::make_shared<torch::nn::Module>());
      if (cfg.resamp_with_conv)
        level->resample_conv = level->resample->register_module(
            "conv", Conv2dLayer(block_in, block_in, 3, 2, 0, LayerRole::kDownsampleConv));
      curr_res /= 2;
    }
    down_list->push_back(level);
    down_.push_back(level);
  }

  auto mid = register_module("mid", std::make_shared<torch::nn::Module>());
  mid_block_1_ = mid->register_module("block_1", ResnetBlock(block_in, block_in, temb_ch, cfg.dropout));
  mid_attn_1_ = mid->register_module("attn_1", AttnBlock(block_in));
  mid_block_2_ = mid->register_module("block_2", ResnetBlock(block_in, block_in, temb_ch, cfg.dropout));

  // Built from the lowest resolution up (channel counts depend on that order), stored by level.
  up_.resize(levels);
  for (int64_t i = levels - 1; i >= 0; --i) {
    auto level = std::make_shared<Level>();
    level->block = level->register_module("block", torch::nn::ModuleList());
    level->attn = level->register_module("attn", torch::nn::ModuleList());
    const int64_t block_out = ch * cfg.ch_mult[i];
    int64_t skip_in = ch * cfg.ch_mult[i];
    for (int64_t j = 0; j < cfg.num_res_blocks + 1; ++j) {
      if (j == cfg.num_res_blocks) skip_in = ch * in_ch_mult[i];
      level->block->push_back(ResnetBlock(block_in + skip_in, block_out, temb_ch, cfg.dropout));
      block_in = block_out;
      if (contains(cfg.attn_resolutions, curr_res)) level->attn->push_back(AttnBlock(block_in));
    }
    if (i != 0) {
      level->resample = level->register_module("upsample", std::make_shared<torch::nn::Module>());
      if (cfg.resamp_with_conv)
        level->resample_conv = level->resample->register_module(
            "conv", Conv2dLayer(block_in, block_in, 3, 1, 1, LayerRole::kUpsampleConv));
      curr_res *= 2;
    }
    up_[i] = level;
  }
  auto up_list = register_module("up", torch::nn::ModuleList());
  for (const auto& level : up_) up_list->push_back(level);

  norm_out_ = register_module("norm_out", normalize(block_in));
  conv_out_ = register_module("conv_out", Conv2dLayer(block_in, cfg.out_ch, 3, 1, 1, LayerRole::kLastConv));
}

void DdimUNetImpl::set_channels_last(bool on) {
  torch::NoGradGuard no_grad;
  channels_last_ = on;
  const auto format = on ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
  for (auto& p : parameters())
    if (p.dim() == 4) p.set_data(p.contiguous(format));
}

torch::Tensor DdimUNetImpl::forward(const torch::Tensor& x, const torch::Tensor& t) {
  return run(x, t, nullptr);
}

std::vector<std::pair<std::string, AttnBlockImpl*>> DdimUNetImpl::attention_blocks() {
  std::vector<std::pair<std::string, AttnBlockImpl*>> out;
  for (const auto& item : named_modules("", false))
    if (auto* a = dynamic_cast<AttnBlockImpl*>(item.value().get())) out.emplace_back(item.key(), a);
  return out;
}

torch::Tensor DdimUNetImpl::forward_observed(const torch::Tensor& x, const torch::Tensor& t,
                                             const ForwardObserver& observer) {
  return run(x, t, &observer);
}

torch::Tensor DdimUNetImpl::run(const torch::Tensor& x_in, const torch::Tensor& t,
                                const ForwardObserver* obs) {
  const UNetConfig& c = config_;
  DMEVAL_CHECK(x_in.dim() == 4 && x_in.size(1) == c.in_channels && x_in.size(2) == c.resolution &&
                   x_in.size(3) == c.resolution,
               "UNet input must be (B, {}, {}, {}), got {}", c.in_channels, c.resolution, c.resolution,
               fmt::format("{}", fmt::join(x_in.sizes(), ", ")));
  DMEVAL_CHECK(t.dim() == 1 && t.size(0) == x_in.size(0), "timesteps must be (B,) with B = {}, got {} values",
               x_in.size(0), t.numel());
  auto note = [&](const std::string& name, const torch::Tensor& v) {
    if (obs) (*obs)(name, v);
  };
  torch::Tensor x = channels_last_ ? x_in.contiguous(torch::MemoryFormat::ChannelsLast) : x_in;

  torch::Tensor temb = ddim_timestep_embedding(t, c.ch);
  note("temb_sinusoid", temb);
  temb = dense0_(temb);
  note("temb.dense.0", temb);
  temb = dense1_(swish(temb));
  note("temb.dense.1", temb);

  const auto levels = static_cast<int64_t>(c.ch_mult.size());
  std::vector<torch::Tensor> hs;
  hs.push_back(conv_in_(x));
  note("conv_in", hs.back());
  for (int64_t i = 0; i < levels; ++i) {
    Level& lv = *down_[i];
    for (int64_t j = 0; j < c.num_res_blocks; ++j) {
      torch::Tensor h = lv.block->at<ResnetBlockImpl>(j).forward(hs.back(), temb);
      note(fmt::format("down.{}.block.{}", i, j), h);
      if (!lv.attn->is_empty()) {
        h = lv.attn->at<AttnBlockImpl>(j).forward(h);
        note(fmt::format("down.{}.attn.{}", i, j), h);
      }
      hs.push_back(h);
    }
    if (i != levels - 1) {
      torch::Tensor h = hs.back();
      if (lv.resample_conv)
        h = lv.resample_conv(torch::constant_pad_nd(h, {0, 1, 0, 1}, 0));
      else
        h = torch::avg_pool2d(h, {2, 2}, {2, 2});
      note(fmt::format("down.{}.downsample", i), h);
      hs.push_back(h);
    }
  }

  torch::Tensor h = mid_block_1_(hs.back(), temb);
  note("mid.block_1", h);
  h = mid_attn_1_(h);
  note("mid.attn_1", h);
  h = mid_block_2_(h, temb);
  note("mid.block_2", h);

  for (int64_t i = levels - 1; i >= 0; --i) {
    Level& lv = *up_[i];
    for (int64_t j = 0; j < c.num_res_blocks + 1; ++j) {
      const int64_t split = split_shortcut_ && i < 4 ? h.size(1) : 0;
      h = lv.block->at<ResnetBlockImpl>(j).forward(torch::cat({h, hs.back()}, 1), temb, split);
      hs.pop_back();
      note(fmt::format("up.{}.block.{}", i, j), h);
      if (!lv.attn->is_empty()) {
        h = lv.attn->at<AttnBlockImpl>(j).forward(h);
        note(fmt::format("up.{}.attn.{}", i, j), h);
      }
    }
    if (i != 0) {
      h = torch::upsample_nearest2d(h, c10::nullopt, std::vector<double>{2.0, 2.0});
      if (lv.resample_conv) h = lv.resample_conv(h);
      note(fmt::format("up.{}.upsample", i), h);
    }
  }
  h = norm_out_(h);
  note("norm_out", h);
  h = conv_out_(swish(h));
  note("conv_out", h);
  return channels_last_ ? h.contiguous() : h;
}

}  // namespace dmeval
