#include "generators/ldm/vq_decoder.h"

#include <fmt/format.h>

#include <cmath>

#include "core/error.h"

namespace dmeval {

namespace {

torch::nn::GroupNorm normalize(int64_t channels) {
  return torch::nn::GroupNorm(torch::nn::GroupNormOptions(32, channels).eps(1e-6));
}

torch::Tensor swish(const torch::Tensor& x) {
  return x * torch::sigmoid(x);
}

// ResnetBlock without temb_proj (temb_channels = 0).
class VqResnetBlockImpl : public torch::nn::Module {
 public:
  VqResnetBlockImpl(int64_t in, int64_t out) {
    norm1 = register_module("norm1", normalize(in));
    conv1 = register_module("conv1", Conv2dLayer(in, out, 3, 1, 1, LayerRole::kAutoencoder));
    norm2 = register_module("norm2", normalize(out));
    conv2 = register_module("conv2", Conv2dLayer(out, out, 3, 1, 1, LayerRole::kAutoencoder));
    if (in != out)
      nin_shortcut = register_module("nin_shortcut", Conv2dLayer(in, out, 1, 1, 0, LayerRole::kAutoencoder));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor h = conv1(swish(norm1(x)));
    h = conv2(swish(norm2(h)));
    return (nin_shortcut ? nin_shortcut(x) : x) + h;
  }
  torch::nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  Conv2dLayer conv1{nullptr}, conv2{nullptr}, nin_shortcut{nullptr};
};
TORCH_MODULE(VqResnetBlock);

// AttnBlock: single head, 1x1 q/k/v/proj_out, the C^-0.5 scale after the product.
class VqAttnBlockImpl : public torch::nn::Module {
 public:
  explicit VqAttnBlockImpl(int64_t c) {
    norm = register_module("norm", normalize(c));
    q = register_module("q", Conv2dLayer(c, c, 1, 1, 0, LayerRole::kAutoencoder));
    k = register_module("k", Conv2dLayer(c, c, 1, 1, 0, LayerRole::kAutoencoder));
    v = register_module("v", Conv2dLayer(c, c, 1, 1, 0, LayerRole::kAutoencoder));
    proj_out = register_module("proj_out", Conv2dLayer(c, c, 1, 1, 0, LayerRole::kAutoencoder));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor h = norm(x);
    const int64_t b = x.size(0), c = x.size(1), hh = x.size(2), ww = x.size(3);
    torch::Tensor qq = q(h).reshape({b, c, hh * ww}).permute({0, 2, 1});
    torch::Tensor kk = k(h).reshape({b, c, hh * ww});
    torch::Tensor w = torch::bmm(qq, kk) * std::pow(static_cast<double>(c), -0.5);
    w = torch::softmax(w, 2);
    torch::Tensor vv = v(h).reshape({b, c, hh * ww});
    torch::Tensor out = torch::bmm(vv, w.permute({0, 2, 1})).reshape({b, c, hh, ww});
    return x + proj_out(out);
  }
  torch::nn::GroupNorm norm{nullptr};
  Conv2dLayer q{nullptr}, k{nullptr}, v{nullptr}, proj_out{nullptr};
};
TORCH_MODULE(VqAttnBlock);

struct UpLevel {
  std::vector<VqResnetBlock> blocks;
  std::vector<VqAttnBlock> attns;
  Conv2dLayer upsample{nullptr};
};

std::shared_ptr<torch::nn::Module> holder(torch::nn::Module& parent, const std::string& name) {
  return parent.register_module(name, std::make_shared<torch::nn::Module>());
}

}  // namespace

class VqDecoderImpl : public torch::nn::Module {
 public:
  explicit VqDecoderImpl(const VqDecoderConfig& c) {
    const int64_t levels = static_cast<int64_t>(c.ch_mult.size());
    int64_t block_in = c.ch * c.ch_mult.back();
    int64_t curr_res = c.resolution >> (levels - 1);
    conv_in =
        register_module("conv_in", Conv2dLayer(c.z_channels, block_in, 3, 1, 1, LayerRole::kAutoencoder));
    auto mid = holder(*this, "mid");
    mid_block_1 = mid->register_module("block_1", VqResnetBlock(block_in, block_in));
    mid_attn_1 = mid->register_module("attn_1", VqAttnBlock(block_in));
    mid_block_2 = mid->register_module("block_2", VqResnetBlock(block_in, block_in));
    up.resize(static_cast<size_t>(levels));
    std::vector<std::shared_ptr<torch::nn::Module>> level_modules(static_cast<size_t>(levels));
    for (int64_t l = levels - 1; l >= 0; --l) {
      auto m = std::make_shared<torch::nn::Module>();
      auto blocks = m->register_module("block", std::make_shared<torch::nn::Module>());
      auto attns = m->register_module("attn", std::make_shared<torch::nn::Module>());
      const int64_t block_out = c.ch * c.ch_mult[static_cast<size_t>(l)];
      UpLevel& u = up[static_cast<size_t>(l)];
      for (int64_t b = 0; b <= c.num_res_blocks; ++b) {
        u.blocks.push_back(blocks->register_module(std::to_string(b), VqResnetBlock(block_in, block_out)));
        block_in = block_out;
        for (int64_t r : c.attn_resolutions)
          if (r == curr_res)
            u.attns.push_back(attns->register_module(std::to_string(u.attns.size()), VqAttnBlock(block_in)));
      }
      if (l != 0) {
        auto us = m->register_module("upsample", std::make_shared<torch::nn::Module>());
        u.upsample =
            us->register_module("conv", Conv2dLayer(block_in, block_in, 3, 1, 1, LayerRole::kAutoencoder));
        curr_res *= 2;
      }
      level_modules[static_cast<size_t>(l)] = m;
    }
    auto list = holder(*this, "up");  // indexed by level: up.0 runs last
    for (size_t l = 0; l < level_modules.size(); ++l)
      list->register_module(std::to_string(l), level_modules[l]);
    norm_out = register_module("norm_out", normalize(block_in));
    conv_out = register_module("conv_out", Conv2dLayer(block_in, c.out_ch, 3, 1, 1, LayerRole::kAutoencoder));
  }
  torch::Tensor forward(const torch::Tensor& z) {
    torch::Tensor h = conv_in(z);
    h = mid_block_2(mid_attn_1(mid_block_1(h)));
    for (int64_t l = static_cast<int64_t>(up.size()) - 1; l >= 0; --l) {
      UpLevel& u = up[static_cast<size_t>(l)];
      for (size_t b = 0; b < u.blocks.size(); ++b) {
        h = u.blocks[b](h);
        if (!u.attns.empty()) h = u.attns[b](h);
      }
      if (l != 0) h = u.upsample(torch::upsample_nearest2d(h, {h.size(2) * 2, h.size(3) * 2}));
    }
    return conv_out(swish(norm_out(h)));
  }
  Conv2dLayer conv_in{nullptr}, conv_out{nullptr};
  VqResnetBlock mid_block_1{nullptr}, mid_block_2{nullptr};
  VqAttnBlock mid_attn_1{nullptr};
  std::vector<UpLevel> up;
  torch::nn::GroupNorm norm_out{nullptr};
};

// taming's Encoder (double_z false): levels of num_res_blocks ResnetBlocks (AttnBlocks at the
// attn_resolutions), a Downsample after every level but the last (zero padding right and bottom by one,
// then a stride-2 3x3 convolution without padding), the mid blocks, norm_out, swish, conv_out.
class VqEncoderImpl : public torch::nn::Module {
 public:
  explicit VqEncoderImpl(const VqDecoderConfig& c) {
    const int64_t levels = static_cast<int64_t>(c.ch_mult.size());
    conv_in = register_module("conv_in", Conv2dLayer(c.in_channels, c.ch, 3, 1, 1, LayerRole::kAutoencoder));
    int64_t curr_res = c.resolution, block_in = c.ch;
    auto list = holder(*this, "down");
    down.resize(static_cast<size_t>(levels));
    for (int64_t l = 0; l < levels; ++l) {
      auto m = list->register_module(std::to_string(l), std::make_shared<torch::nn::Module>());
      auto blocks = m->register_module("block", std::make_shared<torch::nn::Module>());
      auto attns = m->register_module("attn", std::make_shared<torch::nn::Module>());
      const int64_t block_out = c.ch * c.ch_mult[static_cast<size_t>(l)];
      UpLevel& d = down[static_cast<size_t>(l)];
      for (int64_t b = 0; b < c.num_res_blocks; ++b) {
        d.blocks.push_back(blocks->register_module(std::to_string(b), VqResnetBlock(block_in, block_out)));
        block_in = block_out;
        for (int64_t r : c.attn_resolutions)
          if (r == curr_res)
            d.attns.push_back(attns->register_module(std::to_string(d.attns.size()), VqAttnBlock(block_in)));
      }
      if (l != levels - 1) {
        auto ds = m->register_module("downsample", std::make_shared<torch::nn::Module>());
        d.upsample =
            ds->register_module("conv", Conv2dLayer(block_in, block_in, 3, 2, 0, LayerRole::kAutoencoder));
        curr_res /= 2;
      }
    }
    auto mid = holder(*this, "mid");
    mid_block_1 = mid->register_module("block_1", VqResnetBlock(block_in, block_in));
    mid_attn_1 = mid->register_module("attn_1", VqAttnBlock(block_in));
    mid_block_2 = mid->register_module("block_2", VqResnetBlock(block_in, block_in));
    norm_out = register_module("norm_out", normalize(block_in));
    conv_out =
        register_module("conv_out", Conv2dLayer(block_in, c.z_channels, 3, 1, 1, LayerRole::kAutoencoder));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor h = conv_in(x);
    for (UpLevel& d : down) {
      for (size_t b = 0; b < d.blocks.size(); ++b) {
        h = d.blocks[b](h);
        if (!d.attns.empty()) h = d.attns[b](h);
      }
      if (d.upsample) h = d.upsample(torch::constant_pad_nd(h, {0, 1, 0, 1}, 0.0));
    }
    h = mid_block_2(mid_attn_1(mid_block_1(h)));
    return conv_out(swish(norm_out(h)));
  }
  Conv2dLayer conv_in{nullptr}, conv_out{nullptr};
  VqResnetBlock mid_block_1{nullptr}, mid_block_2{nullptr};
  VqAttnBlock mid_attn_1{nullptr};
  std::vector<UpLevel> down;  // `upsample` holds the level's downsampling convolution
  torch::nn::GroupNorm norm_out{nullptr};
};

VqFirstStageImpl::VqFirstStageImpl(const VqDecoderConfig& c, bool with_encoder) : config_(c) {
  if (with_encoder) {
    encoder = register_module("encoder", VqEncoder(c));
    quant_conv = register_module("quant_conv",
                                 Conv2dLayer(c.z_channels, c.embed_dim, 1, 1, 0, LayerRole::kAutoencoder));
  }
  decoder = register_module("decoder", VqDecoder(c));
  auto q = holder(*this, "quantize");
  codebook = q->register_module("embedding", torch::nn::Embedding(c.n_embed, c.embed_dim));
  post_quant_conv = register_module("post_quant_conv",
                                    Conv2dLayer(c.embed_dim, c.z_channels, 1, 1, 0, LayerRole::kAutoencoder));
}

torch::Tensor VqFirstStageImpl::encode(const torch::Tensor& x) {
  DMEVAL_CHECK(has_encoder(), "this first stage was loaded for decoding only (no encoder weights)");
  DMEVAL_CHECK(x.dim() == 4 && x.size(1) == config_.in_channels && x.size(2) == config_.resolution &&
                   x.size(3) == config_.resolution,
               "images of shape [{}] do not fit the first stage ({} channels, {}x{})",
               fmt::join(x.sizes(), ", "), config_.in_channels, config_.resolution, config_.resolution);
  return quant_conv->forward(encoder->forward(x));
}

std::pair<torch::Tensor, torch::Tensor> VqFirstStageImpl::quantize(const torch::Tensor& z) {
  DMEVAL_CHECK(z.dim() == 4 && z.size(1) == config_.embed_dim,
               "latents of shape [{}] do not fit the first stage ({} channels)", fmt::join(z.sizes(), ", "),
               config_.embed_dim);
  const torch::Tensor& e = codebook->weight;
  torch::Tensor zh = z.permute({0, 2, 3, 1}).contiguous();  // b c h w -> b h w c
  torch::Tensor flat = zh.view({-1, config_.embed_dim});
  torch::Tensor d = torch::sum(flat.square(), 1, true) + torch::sum(e.square(), 1) -
                    2 * torch::einsum("bd,dn->bn", {flat, e.t()});
  torch::Tensor idx = torch::argmin(d, 1);
  torch::Tensor zq = torch::embedding(e, idx).view(zh.sizes());
  zq = zh + (zq - zh);
  return {idx.view({z.size(0), z.size(2), z.size(3)}), zq.permute({0, 3, 1, 2}).contiguous()};
}

VqDecodeResult VqFirstStageImpl::decode(const torch::Tensor& z, bool force_not_quantize) {
  VqDecodeResult r;
  if (force_not_quantize) {
    r.quantized = z;
  } else {
    std::tie(r.indices, r.quantized) = quantize(z);
  }
  r.images = decoder->forward(post_quant_conv->forward(r.quantized));
  return r;
}

const std::vector<std::string>& ldm_uint8_conversions() {
  static const std::vector<std::string> names = {"png", "np", "ptqd"};
  return names;
}

torch::Tensor ldm_images_to_uint8(const torch::Tensor& images, const std::string& conversion) {
  torch::Tensor x = images.to(torch::kFloat32);
  torch::Tensor out;
  if (conversion == "png") {
    x = (torch::clamp(x, -1.0, 1.0) + 1.0) / 2.0;
    // NumPy's astype(uint8) after 255 * x in float32: truncation toward zero
    out = (255 * x).to(torch::kUInt8);
  } else if (conversion == "np") {
    out = ((x + 1) * 127.5).clamp(0, 255).to(torch::kUInt8);
  } else if (conversion == "ptqd") {
    x = torch::clamp((x + 1.0) / 2.0, 0.0, 1.0);
    out = ((x + 1) * 127.5).clamp(0, 255).to(torch::kUInt8);
  } else {
    fail("unknown uint8 conversion '{}' (png, np, ptqd)", conversion);
  }
  return out.permute({0, 2, 3, 1}).contiguous();
}

}  // namespace dmeval
