#include "generators/ldm/ldm_unet.h"

#include <fmt/format.h>

#include <cmath>
#include <set>

#include "core/error.h"

namespace dmeval {

namespace {

// An empty module that only names its children ("in_layers" with "0" and "2", ...), so that the
// parameters carry the reference's keys.
std::shared_ptr<torch::nn::Module> holder(torch::nn::Module& parent, const std::string& name) {
  return parent.register_module(name, std::make_shared<torch::nn::Module>());
}

torch::nn::GroupNorm group_norm(int64_t channels, double eps) {
  return torch::nn::GroupNorm(torch::nn::GroupNormOptions(32, channels).eps(eps));
}

class ResBlockImpl : public torch::nn::Module, public ReconBlock {
 public:
  ResBlockImpl(int64_t in, int64_t emb, int64_t out) {
    auto in_layers = holder(*this, "in_layers");
    in_norm = in_layers->register_module("0", group_norm(in, 1e-5));
    in_conv = in_layers->register_module("2", Conv2dLayer(in, out, 3, 1, 1, LayerRole::kResblockConv));
    auto emb_layers = holder(*this, "emb_layers");
    emb_proj = emb_layers->register_module("1", LinearLayer(emb, out, LayerRole::kResblockTembProj));
    auto out_layers = holder(*this, "out_layers");
    out_norm = out_layers->register_module("0", group_norm(out, 1e-5));
    out_conv = out_layers->register_module("3", Conv2dLayer(out, out, 3, 1, 1, LayerRole::kResblockConv));
    if (in != out)
      skip = register_module("skip_connection", Conv2dLayer(in, out, 1, 1, 0, LayerRole::kResblockShortcut));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& emb) {
    torch::Tensor h = in_conv(torch::silu(in_norm(x)));
    h = h + emb_proj(torch::silu(emb)).unsqueeze(-1).unsqueeze(-1);
    h = out_conv(torch::silu(out_norm(h)));  // Dropout: identity in evaluation
    torch::Tensor out = (skip ? skip->forward(x, split ? split_at : 0) : x) + h;
    if (probe) probe({x, emb}, out);
    return out;
  }
  torch::Tensor run(const std::vector<torch::Tensor>& in) override { return forward(in.at(0), in.at(1)); }
  // q-diffusion's split shortcut: an output block's 1x1 skip sees cat([h, skip]); with `split` on it
  // quantizes the first split_at channels (h's) and the rest separately.
  int64_t split_at = 0;
  bool split = false;
  torch::nn::GroupNorm in_norm{nullptr}, out_norm{nullptr};
  Conv2dLayer in_conv{nullptr}, out_conv{nullptr}, skip{nullptr};
  LinearLayer emb_proj{nullptr};
};
TORCH_MODULE(ResBlock);

// AttentionBlock with QKVAttentionLegacy (spec §1.2): qkv channels grouped per head.
class AttentionBlockImpl : public torch::nn::Module {
 public:
  AttentionBlockImpl(int64_t channels, int64_t heads) : heads(heads) {
    norm = register_module("norm", group_norm(channels, 1e-5));
    qkv = register_module("qkv", Conv2dLayer(channels, 3 * channels, 1, 1, 0, LayerRole::kAttention1x1, 1));
    proj_out =
        register_module("proj_out", Conv2dLayer(channels, channels, 1, 1, 0, LayerRole::kAttention1x1, 1));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const int64_t b = x.size(0), c = x.size(1);
    torch::Tensor xf = x.reshape({b, c, -1});
    torch::Tensor q3 = qkv->forward(norm(xf));
    const int64_t length = q3.size(2), ch = q3.size(1) / (3 * heads);
    auto parts = q3.reshape({b * heads, ch * 3, length}).split(ch, 1);
    const double scale = 1.0 / std::sqrt(std::sqrt(static_cast<double>(ch)));
    torch::Tensor q = parts[0] * scale, k = parts[1] * scale, v = parts[2];
    // q-diffusion's QuantQKMatMul / QuantSMVMatMul: q·s and k·s after the scaling, then the softmax
    // output and v.
    if (quantizer) q = quantizer->q(q), k = quantizer->k(k);
    torch::Tensor w = torch::einsum("bct,bcs->bts", {q, k});
    w = torch::softmax(w, -1);
    if (quantizer) w = quantizer->w(w), v = quantizer->v(v);
    torch::Tensor a = torch::einsum("bts,bcs->bct", {w, v}).reshape({b, -1, length});
    if (MacCounter* m = MacCounter::active()) m->attention += 2 * b * heads * ch * length * length;
    return (xf + proj_out->forward(a)).reshape(x.sizes());
  }
  int64_t heads;
  torch::nn::GroupNorm norm{nullptr};
  Conv2dLayer qkv{nullptr}, proj_out{nullptr};  // 1-D (nn.Conv1d)
  std::shared_ptr<AttentionQuantizer> quantizer;
};
TORCH_MODULE(AttentionBlock);

class CrossAttentionImpl : public torch::nn::Module {
 public:
  CrossAttentionImpl(int64_t query_dim, int64_t context_dim, int64_t heads, int64_t dim_head, bool cross)
      : heads(heads), scale(std::pow(static_cast<double>(dim_head), -0.5)) {
    const int64_t inner = heads * dim_head;
    to_q = register_module(
        "to_q", LinearLayer(query_dim, inner, cross ? LayerRole::kCrossAttnQ : LayerRole::kSelfAttnQ, false));
    to_k = register_module(
        "to_k",
        LinearLayer(context_dim, inner, cross ? LayerRole::kCrossAttnK : LayerRole::kSelfAttnK, false));
    to_v = register_module(
        "to_v",
        LinearLayer(context_dim, inner, cross ? LayerRole::kCrossAttnV : LayerRole::kSelfAttnV, false));
    auto out = holder(*this, "to_out");
    to_out = out->register_module(
        "0", LinearLayer(inner, query_dim, cross ? LayerRole::kCrossAttnOut : LayerRole::kSelfAttnOut));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context) {
    const torch::Tensor& ctx = context.defined() ? context : x;
    auto split_heads = [&](const torch::Tensor& t) {  // b n (h d) -> (b h) n d
      const int64_t b = t.size(0), n = t.size(1), d = t.size(2) / heads;
      return t.reshape({b, n, heads, d}).permute({0, 2, 1, 3}).reshape({b * heads, n, d});
    };
    torch::Tensor q = split_heads(to_q(x)), k = split_heads(to_k(ctx)), v = split_heads(to_v(ctx));
    // q-diffusion's quantized transformer attention: q and k after the head split (the scale after the
    // product), then the softmax output and v.
    if (quantizer) q = quantizer->q(q), k = quantizer->k(k);
    torch::Tensor sim = torch::einsum("bid,bjd->bij", {q, k}) * scale;
    torch::Tensor attn = sim.softmax(-1);
    if (quantizer) attn = quantizer->w(attn), v = quantizer->v(v);
    torch::Tensor out = torch::einsum("bij,bjd->bid", {attn, v});
    if (MacCounter* m = MacCounter::active())
      m->attention += 2 * q.size(0) * q.size(1) * k.size(1) * q.size(2);
    const int64_t b = x.size(0), n = out.size(1), d = out.size(2);
    out = out.reshape({b, heads, n, d}).permute({0, 2, 1, 3}).reshape({b, n, heads * d});
    return to_out(out);
  }
  int64_t heads;
  double scale;
  LinearLayer to_q{nullptr}, to_k{nullptr}, to_v{nullptr}, to_out{nullptr};
  std::shared_ptr<AttentionQuantizer> quantizer;
};
TORCH_MODULE(CrossAttention);

// BasicTransformerBlock; registration order attn1, ff, attn2, norm1..3 as the reference's keys.
class TransformerBlockImpl : public torch::nn::Module, public ReconBlock {
 public:
  TransformerBlockImpl(int64_t dim, int64_t heads, int64_t dim_head, int64_t context_dim) {
    attn1 = register_module("attn1", CrossAttention(dim, dim, heads, dim_head, false));
    auto ff = holder(*this, "ff");
    auto net = holder(*ff, "net");
    auto geglu = holder(*net, "0");
    ff_proj = geglu->register_module("proj", LinearLayer(dim, dim * 4 * 2, LayerRole::kFeedForward));
    ff_out = net->register_module("2", LinearLayer(dim * 4, dim, LayerRole::kFeedForward));
    attn2 = register_module("attn2", CrossAttention(dim, context_dim, heads, dim_head, true));
    norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
    norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
    norm3 = register_module("norm3", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
  }
  torch::Tensor forward(const torch::Tensor& input, const torch::Tensor& context) {
    torch::Tensor x = attn1(norm1(input), torch::Tensor()) + input;
    x = attn2(norm2(x), context) + x;
    auto ag = ff_proj(norm3(x)).chunk(2, -1);  // GEGLU: a * gelu(gate), exact (erf) GELU
    torch::Tensor out = ff_out(ag[0] * torch::gelu(ag[1])) + x;
    if (probe) probe({input, context}, out);
    return out;
  }
  torch::Tensor run(const std::vector<torch::Tensor>& in) override { return forward(in.at(0), in.at(1)); }
  CrossAttention attn1{nullptr}, attn2{nullptr};
  LinearLayer ff_proj{nullptr}, ff_out{nullptr};
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr}, norm3{nullptr};
};
TORCH_MODULE(TransformerBlock);

class SpatialTransformerImpl : public torch::nn::Module {
 public:
  SpatialTransformerImpl(int64_t channels, int64_t heads, int64_t dim_head, int64_t depth,
                         int64_t context_dim) {
    const int64_t inner = heads * dim_head;
    norm = register_module("norm", group_norm(channels, 1e-6));
    proj_in = register_module("proj_in", Conv2dLayer(channels, inner, 1, 1, 0, LayerRole::kTransformerProj));
    auto list = holder(*this, "transformer_blocks");
    for (int64_t i = 0; i < depth; ++i)
      blocks.push_back(
          list->register_module(std::to_string(i), TransformerBlock(inner, heads, dim_head, context_dim)));
    proj_out =
        register_module("proj_out", Conv2dLayer(inner, channels, 1, 1, 0, LayerRole::kTransformerProj));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context) {
    const int64_t b = x.size(0), h = x.size(2), w = x.size(3);
    torch::Tensor y = proj_in(norm(x));
    const int64_t c = y.size(1);
    y = y.reshape({b, c, h * w}).permute({0, 2, 1});  // b c h w -> b (h w) c
    for (auto& blk : blocks) y = blk(y, context);
    y = y.permute({0, 2, 1}).reshape({b, c, h, w});
    return proj_out(y) + x;
  }
  torch::nn::GroupNorm norm{nullptr};
  Conv2dLayer proj_in{nullptr}, proj_out{nullptr};
  std::vector<TransformerBlock> blocks;
};
TORCH_MODULE(SpatialTransformer);

}  // namespace

class LdmBlockImpl : public torch::nn::Module {
 public:
  enum class Kind { kConv, kRes, kAttention, kTransformer, kDown, kUp };
  template <class M>
  void add(Kind kind, M module) {
    kinds.push_back(kind);
    std::shared_ptr<torch::nn::Module> m = register_module(std::to_string(modules.size()), module);
    modules.push_back(std::move(m));
  }
  torch::Tensor forward(torch::Tensor h, const torch::Tensor& emb, const torch::Tensor& context) {
    for (size_t i = 0; i < kinds.size(); ++i) {
      torch::nn::Module* m = modules[i].get();
      switch (kinds[i]) {
        case Kind::kUp: h = torch::upsample_nearest2d(h, {h.size(2) * 2, h.size(3) * 2}); [[fallthrough]];
        case Kind::kConv:
        case Kind::kDown: h = static_cast<Conv2dLayerImpl*>(m)->forward(h); break;
        case Kind::kRes: h = static_cast<ResBlockImpl*>(m)->forward(h, emb); break;
        case Kind::kAttention: h = static_cast<AttentionBlockImpl*>(m)->forward(h); break;
        case Kind::kTransformer: h = static_cast<SpatialTransformerImpl*>(m)->forward(h, context); break;
      }
    }
    return h;
  }
  // Downsample (conv 3x3 stride 2 padding 1, key `<i>.op`) and Upsample (nearest x2, then conv 3x3,
  // key `<i>.conv`): the child `<i>` only names the convolution, which is what `modules` keeps.
  void add_down(int64_t channels) {
    add_resample(Kind::kDown, "op", channels, 2, LayerRole::kDownsampleConv);
  }
  void add_up(int64_t channels) { add_resample(Kind::kUp, "conv", channels, 1, LayerRole::kUpsampleConv); }
  std::vector<Kind> kinds;
  std::vector<std::shared_ptr<torch::nn::Module>> modules;  // for resampling: the convolution

 private:
  void add_resample(Kind kind, const char* key, int64_t channels, int64_t stride, LayerRole role) {
    auto named = holder(*this, std::to_string(modules.size()));
    kinds.push_back(kind);
    std::shared_ptr<torch::nn::Module> conv =
        named->register_module(key, Conv2dLayer(channels, channels, 3, stride, 1, role));
    modules.push_back(std::move(conv));
  }
};

torch::Tensor ldm_timestep_embedding(const torch::Tensor& t, int64_t dim) {
  const int64_t half = dim / 2;
  torch::Tensor freqs =
      torch::exp(-std::log(10000.0) * torch::arange(0, half, torch::dtype(torch::kFloat32)) / half)
          .to(t.device());
  torch::Tensor args = t.to(torch::kFloat32).unsqueeze(1) * freqs.unsqueeze(0);
  torch::Tensor emb = torch::cat({torch::cos(args), torch::sin(args)}, -1);
  if (dim % 2) emb = torch::cat({emb, torch::zeros_like(emb.slice(1, 0, 1))}, -1);
  return emb;
}

LdmUNetImpl::LdmUNetImpl(const LdmUNetConfig& c) : config_(c) {
  const int64_t mc = c.model_channels, emb = mc * 4;
  auto te = holder(*this, "time_embed");
  time_embed_0_ = te->register_module("0", LinearLayer(mc, emb, LayerRole::kTimestepMlp));
  time_embed_2_ = te->register_module("2", LinearLayer(emb, emb, LayerRole::kTimestepMlp));

  // Heads of an attention block at `ch` channels (openaimodel.py, legacy = true).
  int64_t num_heads = c.num_heads;
  auto attention = [&](LdmBlockImpl& block, int64_t ch) {
    int64_t dim_head;
    if (c.num_head_channels == -1) {
      dim_head = ch / num_heads;
    } else {
      num_heads = ch / c.num_head_channels;
      dim_head = c.num_head_channels;
    }
    if (c.legacy) dim_head = c.use_spatial_transformer ? ch / num_heads : c.num_head_channels;
    if (c.use_spatial_transformer) {
      block.add(LdmBlockImpl::Kind::kTransformer,
                SpatialTransformer(ch, num_heads, dim_head, c.transformer_depth, c.context_dim));
    } else {
      const int64_t heads = dim_head == -1 ? num_heads : ch / dim_head;
      block.add(LdmBlockImpl::Kind::kAttention, AttentionBlock(ch, heads));
    }
  };
  auto has_attention = [&](int64_t ds) {
    for (int64_t r : c.attention_resolutions)
      if (r == ds) return true;
    return false;
  };

  auto inputs = holder(*this, "input_blocks");
  std::vector<int64_t> chans;
  int64_t ch = mc, ds = 1;
  {
    LdmBlock b;
    b->add(LdmBlockImpl::Kind::kConv, Conv2dLayer(c.in_channels, mc, 3, 1, 1, LayerRole::kFirstConv));
    input_blocks_.push_back(inputs->register_module("0", b));
    chans.push_back(ch);
  }
  const int64_t levels = static_cast<int64_t>(c.channel_mult.size());
  for (int64_t level = 0; level < levels; ++level) {
    for (int64_t r = 0; r < c.num_res_blocks; ++r) {
      LdmBlock b;
      b->add(LdmBlockImpl::Kind::kRes, ResBlock(ch, emb, c.channel_mult[level] * mc));
      ch = c.channel_mult[level] * mc;
      if (has_attention(ds)) attention(*b, ch);
      input_blocks_.push_back(inputs->register_module(std::to_string(input_blocks_.size()), b));
      chans.push_back(ch);
    }
    if (level != levels - 1) {
      LdmBlock b;
      b->add_down(ch);
      input_blocks_.push_back(inputs->register_module(std::to_string(input_blocks_.size()), b));
      chans.push_back(ch);
      ds *= 2;
    }
  }
  middle_block_ = LdmBlock();
  middle_block_->add(LdmBlockImpl::Kind::kRes, ResBlock(ch, emb, ch));
  attention(*middle_block_, ch);
  middle_block_->add(LdmBlockImpl::Kind::kRes, ResBlock(ch, emb, ch));
  register_module("middle_block", middle_block_);

  auto outputs = holder(*this, "output_blocks");
  for (int64_t level = levels - 1; level >= 0; --level) {
    for (int64_t r = 0; r <= c.num_res_blocks; ++r) {
      const int64_t ich = chans.back();
      chans.pop_back();
      LdmBlock b;
      ResBlock res(ch + ich, emb, mc * c.channel_mult[level]);
      res->split_at = ch;  // cat([h, skip]): h's channels first
      b->add(LdmBlockImpl::Kind::kRes, res);
      ch = mc * c.channel_mult[level];
      if (has_attention(ds)) attention(*b, ch);
      if (level > 0 && r == c.num_res_blocks) {
        b->add_up(ch);
        ds /= 2;
      }
      output_blocks_.push_back(outputs->register_module(std::to_string(output_blocks_.size()), b));
    }
  }
  auto out = holder(*this, "out");
  out_norm_ = out->register_module("0", group_norm(ch, 1e-5));
  out_conv_ = out->register_module("2", Conv2dLayer(mc, c.out_channels, 3, 1, 1, LayerRole::kLastConv));
}

torch::Tensor LdmUNetImpl::forward(const torch::Tensor& x, const torch::Tensor& t,
                                   const torch::Tensor& context) {
  return forward_traced(x, t, context, nullptr);
}

torch::Tensor LdmUNetImpl::forward_traced(const torch::Tensor& x, const torch::Tensor& t,
                                          const torch::Tensor& context,
                                          std::vector<std::pair<std::string, torch::Tensor>>* trace) {
  DMEVAL_CHECK(config_.use_spatial_transformer == context.defined(),
               "the LDM UNet {} a context (cross-attention conditioning)",
               config_.use_spatial_transformer ? "needs" : "takes no");
  auto record = [&](const std::string& name, const torch::Tensor& v) {
    if (trace) trace->emplace_back(name, v);
  };
  torch::Tensor emb =
      time_embed_2_(torch::silu(time_embed_0_(ldm_timestep_embedding(t, config_.model_channels))));
  record("time_embed", emb);
  std::vector<torch::Tensor> hs;
  torch::Tensor h = x;
  for (size_t i = 0; i < input_blocks_.size(); ++i) {
    h = input_blocks_[i]->forward(h, emb, context);
    record(fmt::format("input_blocks.{}", i), h);
    hs.push_back(h);
  }
  h = middle_block_->forward(h, emb, context);
  record("middle_block", h);
  for (size_t i = 0; i < output_blocks_.size(); ++i) {
    h = torch::cat({h, hs.back()}, 1);
    hs.pop_back();
    h = output_blocks_[i]->forward(h, emb, context);
    record(fmt::format("output_blocks.{}", i), h);
  }
  h = out_norm_(h);
  record("out.0_groupnorm", h);
  return out_conv_(torch::silu(h));
}

std::vector<AttentionHook> LdmUNetImpl::attention_hooks() {
  std::vector<AttentionHook> out;
  for (const auto& item : named_modules("", /*include_self=*/false)) {
    torch::nn::Module* m = item.value().get();
    if (auto* a = dynamic_cast<AttentionBlockImpl*>(m)) {
      AttentionHook h;
      h.name = item.key();
      h.quantizer = &a->quantizer;
      h.qk_prefix = item.key() + ".attention.qkv_matmul";
      h.vw_prefix = item.key() + ".attention.smv_matmul";
      h.softmax = SoftmaxQuant::kAsymmetricZero;
      h.running_stat = false;  // set_running_stat does not reach q-diffusion's matmul blocks (spec §11.1)
      out.push_back(h);
    } else if (auto* c = dynamic_cast<CrossAttentionImpl*>(m)) {
      AttentionHook h;
      h.name = item.key();
      h.quantizer = &c->quantizer;
      h.softmax = SoftmaxQuant::kAlwaysZero;
      h.running_stat = true;  // QuantBasicTransformerBlock's attention quantizers follow running statistics
      out.push_back(h);
    }
  }
  return out;
}

void LdmUNetImpl::set_split_shortcut(bool on) {
  for (auto& b : output_blocks_)
    for (auto& m : b->modules)
      if (auto* r = dynamic_cast<ResBlockImpl*>(m.get())) r->split = on && r->skip;
}

ClassEmbedderImpl::ClassEmbedderImpl(int64_t n, int64_t d) : n_classes(n), embed_dim(d) {
  embedding = register_module("embedding", torch::nn::Embedding(n, d));
}

torch::Tensor ClassEmbedderImpl::forward(const torch::Tensor& labels) {
  DMEVAL_CHECK(labels.dim() == 1, "class labels must be one per image");
  if (labels.numel() > 0) {
    const int64_t lo = labels.min().item<int64_t>(), hi = labels.max().item<int64_t>();
    DMEVAL_CHECK(lo >= 0 && hi < n_classes, "class labels {}..{} outside 0..{}", lo, hi, n_classes - 1);
  }
  return embedding(labels.to(torch::kLong)).unsqueeze(1);
}

}  // namespace dmeval
