#include "generators/bi_diffsr/bi_diffsr_unet.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "core/checkpoint.h"
#include "core/error.h"
#include "core/torch_bridge.h"

namespace dmeval {

namespace {

// The cost counter of bi_diffsr_cost (this thread's, while it runs).
thread_local BiDiffSrCost* g_cost = nullptr;
void note_conv(const torch::Tensor& out, int64_t cin, int64_t k, bool binary) {
  if (!g_cost) return;
  const double macs = static_cast<double>(out.numel() * cin * k * k);
  (binary ? g_cost->macs_binary : g_cost->macs_fp_conv) += macs;
}
void note_linear(const torch::Tensor& out, int64_t in) {
  if (g_cost) g_cost->macs_linear += static_cast<double>(out.numel() * in);
}
void note_groupnorm(const torch::Tensor& in) {
  if (g_cost) g_cost->groupnorm_elements += static_cast<double>(in.numel());
}

torch::Tensor swish(const torch::Tensor& x) {
  return x * torch::sigmoid(x);
}

// An empty module that only names its children, so parameters carry the reference's keys.
std::shared_ptr<torch::nn::Module> holder(torch::nn::Module& parent, const std::string& name) {
  return parent.register_module(name, std::make_shared<torch::nn::Module>());
}

torch::nn::GroupNorm group_norm(int64_t groups, int64_t channels) {
  return torch::nn::GroupNorm(torch::nn::GroupNormOptions(groups, channels).eps(1e-5));
}

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t k, bool bias) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).padding(k / 2).bias(bias));
}

// BIConv: RPReLU_g(HardBinaryConv(sign(x + TaR_g))) + x, with K timestep groups.
class BiConvImpl : public torch::nn::Module {
 public:
  BiConvImpl(int64_t c, int64_t k, int64_t groups) : k_(k) {
    auto tar = holder(*this, "TaR");
    for (int64_t i = 0; i < groups; ++i)
      shift_.push_back(holder(*tar, fmt::format("dynamic_move_{}", i))
                           ->register_parameter("bias", torch::zeros({1, c, 1, 1})));
    weight_ = holder(*this, "binary_conv")->register_parameter("weight", torch::empty({c, c, k, k}));
    torch::nn::init::kaiming_uniform_(weight_, std::sqrt(5.0));
    auto taa = holder(*this, "TaA");
    for (int64_t i = 0; i < groups; ++i) {
      auto r = holder(*taa, fmt::format("dynamic_relu_{}", i));
      b0_.push_back(holder(*r, "pr_bias0")->register_parameter("bias", torch::zeros({1, c, 1, 1})));
      a_.push_back(holder(*r, "pr_prelu")->register_parameter("weight", torch::full({c}, 0.25)));
      b1_.push_back(holder(*r, "pr_bias1")->register_parameter("bias", torch::zeros({1, c, 1, 1})));
    }
  }
  torch::Tensor forward(const torch::Tensor& x, int64_t g,
                        std::map<std::string, torch::Tensor>* parts = nullptr) {
    DMEVAL_CHECK(g >= 0 && g < static_cast<int64_t>(shift_.size()), "BIConv: timestep group {} of {}", g,
                 shift_.size());
    const size_t i = static_cast<size_t>(g);
    torch::Tensor moved = x + shift_[i];
    torch::Tensor s = torch::sign(moved);
    // HardBinaryConv: α_o = mean |W_o| (nested over the last axes first, as written), W_b = α·sign(W).
    torch::Tensor alpha = weight_.abs().mean(3, true).mean(2, true).mean(1, true);
    torch::Tensor wb = alpha * torch::sign(weight_);
    torch::Tensor c = torch::conv2d(s, wb, {}, 1, k_ / 2);
    note_conv(c, weight_.size(1), k_, true);
    torch::Tensor y = torch::prelu(c + b0_[i], a_[i]) + b1_[i];
    if (parts) {
      (*parts)["TaR"] = moved;
      (*parts)["binary_activation"] = s;
      (*parts)["binary_conv"] = c;
      (*parts)["TaA"] = y;
      (*parts)["w_ideal"] = wb;
    }
    return y + x;
  }

 private:
  int64_t k_;
  torch::Tensor weight_;
  std::vector<torch::Tensor> shift_, b0_, a_, b1_;
};
TORCH_MODULE(BiConv);

class SelfAttentionImpl : public torch::nn::Module {
 public:
  SelfAttentionImpl(int64_t c, int64_t groups) {
    norm = register_module("norm", group_norm(groups, c));
    qkv = register_module("qkv", conv(c, 3 * c, 1, false));
    out = register_module("out", conv(c, c, 1, true));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const int64_t b = x.size(0), c = x.size(1), n = x.size(2) * x.size(3);
    note_groupnorm(x);
    torch::Tensor q3 = qkv(norm(x));
    note_conv(q3, c, 1, false);
    auto parts = q3.reshape({b, 3 * c, n}).chunk(3, 1);
    if (g_cost) g_cost->macs_attention += 2.0 * static_cast<double>(b * n * n * c);
    torch::Tensor attn = torch::bmm(parts[0].transpose(1, 2), parts[1]) / std::sqrt(static_cast<double>(c));
    attn = torch::softmax(attn, -1);
    torch::Tensor o = torch::bmm(parts[2], attn.transpose(1, 2)).reshape(x.sizes());
    torch::Tensor y = out(o);
    note_conv(y, c, 1, false);
    return y + x;
  }
  torch::nn::GroupNorm norm{nullptr};
  torch::nn::Conv2d qkv{nullptr}, out{nullptr};
};
TORCH_MODULE(SelfAttention);

}  // namespace

// One entry of downs / mid / ups: conv_in, a resnet block (BI or FP, optionally with attention), CP_Down,
// CP_Up, or a fusion (BI or FP). Registered under its index with the reference's child names.
struct BiDiffSrUNetImpl::Layer : public torch::nn::Module {
  enum Kind { kConvIn, kRes, kDown, kUp, kFusion } kind;
  bool fp = false;
  // conv_in
  torch::Tensor weight, bias;
  // resnet block
  torch::nn::GroupNorm n1{nullptr}, n2{nullptr};
  BiConv bc1{nullptr}, bc2{nullptr};
  torch::nn::Conv2d fc1{nullptr}, fc2{nullptr};
  torch::nn::Linear temb{nullptr};
  SelfAttention attn{nullptr};

  Layer(Kind k, int64_t c, const BiDiffSrConfig& cfg, bool full_precision, bool with_attn = false)
      : kind(k), fp(full_precision) {
    const int64_t K = cfg.dynamic_group;
    switch (k) {
      case kConvIn:
        weight = register_parameter("weight", torch::empty({cfg.inner_channel, cfg.in_channel, 3, 3}));
        bias = register_parameter("bias", torch::zeros({cfg.inner_channel}));
        torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
        break;
      case kRes: {
        auto rb = holder(*this, "res_block");
        temb = holder(*rb, "timestep_func")->register_module("1", torch::nn::Linear(cfg.inner_channel, c));
        auto b1 = rb->register_module("block1", std::make_shared<torch::nn::Module>());
        auto b2 = rb->register_module("block2", std::make_shared<torch::nn::Module>());
        n1 = holder(*b1, "block")->register_module("0", group_norm(cfg.norm_groups, c));
        n2 = holder(*b2, "block")->register_module("0", group_norm(cfg.norm_groups, c));
        if (fp) {
          fc1 = b1->register_module("conv", conv(c, c, 3, true));
          fc2 = b2->register_module("conv", conv(c, c, 3, true));
        } else {
          bc1 = b1->register_module("conv", BiConv(c, 3, K));
          bc2 = b2->register_module("conv", BiConv(c, 3, K));
        }
        if (with_attn) attn = register_module("attn", SelfAttention(c, cfg.norm_groups));
        break;
      }
      case kDown:  // CP_Down(c): two BIConvs on the halves, summed, pixel-unshuffled
        bc1 = register_module("biconv1", BiConv(c / 2, 3, K));
        bc2 = register_module("biconv2", BiConv(c / 2, 3, K));
        break;
      case kUp:  // CP_Up(c): two BIConvs, concatenated, pixel-shuffled
        bc1 = register_module("biconv1", BiConv(c, 3, K));
        bc2 = register_module("biconv2", BiConv(c, 3, K));
        break;
      case kFusion:  // CS_Fusion(2c -> c)
        if (fp) {
          fc1 = register_module("biconv_1", conv(c, c, 1, true));  // quirk Q3: biased
          fc2 = register_module("biconv_2", conv(c, c, 1, true));
        } else {
          bc1 = register_module("biconv_1", BiConv(c, 1, K));
          bc2 = register_module("biconv_2", BiConv(c, 1, K));
        }
        break;
    }
  }

  torch::Tensor run(const torch::Tensor& x, const torch::Tensor& e, int64_t g) {
    switch (kind) {
      case kConvIn: {
        torch::Tensor y = torch::conv2d(x, weight, bias, 1, 1);
        note_conv(y, weight.size(1), 3, false);
        return y;
      }
      case kRes: {
        auto block = [&](torch::nn::GroupNorm& n, BiConv& b, torch::nn::Conv2d& f, const torch::Tensor& in) {
          note_groupnorm(in);
          torch::Tensor h = swish(n(in));  // Dropout: identity at test
          if (!fp) return b(h, g);
          torch::Tensor y = f(h);
          note_conv(y, h.size(1), 3, false);
          return y;
        };
        torch::Tensor h = block(n1, bc1, fc1, x);
        torch::Tensor te = temb(swish(e));
        note_linear(te, e.size(1));
        h = h + te.unsqueeze(-1).unsqueeze(-1);
        h = block(n2, bc2, fc2, h);
        h = h + x;
        return attn ? attn(h) : h;
      }
      case kDown: {
        const int64_t half = x.size(1) / 2;
        return torch::pixel_unshuffle(bc1(x.slice(1, 0, half), g) + bc2(x.slice(1, half), g), 2);
      }
      case kUp: return torch::pixel_shuffle(torch::cat({bc1(x, g), bc2(x, g)}, 1), 2);
      case kFusion: {
        const int64_t c = x.size(1) / 2;
        torch::Tensor a = x.slice(1, 0, c), b = x.slice(1, c);
        torch::Tensor f1 = torch::cat({a.slice(1, 1, c, 2), b.slice(1, 0, c, 2)}, 1);
        torch::Tensor f2 = torch::cat({a.slice(1, 0, c, 2), b.slice(1, 1, c, 2)}, 1);
        if (!fp) return bc1(f1, g) + bc2(f2, g);
        torch::Tensor y1 = fc1(f1), y2 = fc2(f2);
        note_conv(y1, c, 1, false), note_conv(y2, c, 1, false);
        return y1 + y2;
      }
    }
    return x;
  }
};

BiDiffSrConfig bi_diffsr_config_from_json(const nlohmann::json& j, const std::string& source) {
  DMEVAL_CHECK(j.is_object(), "{}: network_g must be an object", source);
  BiDiffSrConfig c;
  static const std::set<std::string> kKeys = {
      "type",       "in_channel", "out_channel", "inner_channel", "norm_groups", "channel_mults", "attn_res",
      "res_blocks", "dropout",    "image_size",  "fp_res",        "total_step",  "dynamic_group"};
  for (const auto& [k, v] : j.items())
    DMEVAL_CHECK(kKeys.count(k), "{}: network_g has an unknown key '{}'", source, k);
  DMEVAL_CHECK(j.value("type", std::string("BIDiffSRUNet")) == "BIDiffSRUNet",
               "{}: network_g type {} is not BIDiffSRUNet", source, j.value("type", std::string()));
  auto i64 = [&](const char* k, int64_t& v) {
    if (j.contains(k)) v = j.at(k).get<int64_t>();
  };
  auto list = [&](const char* k, std::vector<int64_t>& v) {
    if (j.contains(k)) v = j.at(k).get<std::vector<int64_t>>();
  };
  i64("in_channel", c.in_channel), i64("out_channel", c.out_channel), i64("inner_channel", c.inner_channel);
  i64("norm_groups", c.norm_groups), i64("res_blocks", c.res_blocks), i64("image_size", c.image_size);
  i64("total_step", c.total_step), i64("dynamic_group", c.dynamic_group);
  list("channel_mults", c.channel_mults), list("attn_res", c.attn_res), list("fp_res", c.fp_res);
  if (j.contains("dropout")) c.dropout = j.at("dropout").get<double>();
  DMEVAL_CHECK(!c.channel_mults.empty() && c.dynamic_group >= 1 && c.total_step >= 1 && c.res_blocks >= 1,
               "{}: network_g needs channel_mults, dynamic_group, total_step and res_blocks >= 1", source);
  for (size_t i = 1; i < c.channel_mults.size(); ++i)
    DMEVAL_CHECK(c.channel_mults[i] == 2 * c.channel_mults[i - 1],
                 "{}: channel_mults {} must double from level to level (CP_Down doubles the channels)",
                 source, fmt::format("{}", fmt::join(c.channel_mults, ",")));
  DMEVAL_CHECK(c.channel_mults[0] == 1, "{}: channel_mults must start at 1 (no shortcut after conv_in)",
               source);
  return c;
}

BiDiffSrUNetImpl::BiDiffSrUNetImpl(const BiDiffSrConfig& c) : config_(c) {
  auto mlp = holder(*this, "timestep_level_mlp");
  mlp1_ = mlp->register_module("1", torch::nn::Linear(c.inner_channel, 4 * c.inner_channel));
  mlp3_ = mlp->register_module("3", torch::nn::Linear(4 * c.inner_channel, c.inner_channel));
  auto add = [](torch::nn::Module& parent, std::vector<std::shared_ptr<Layer>>& list,
                std::shared_ptr<Layer> l) {
    parent.register_module(std::to_string(list.size()), l);
    list.push_back(std::move(l));
  };
  auto downs = holder(*this, "downs");
  add(*downs, downs_, std::make_shared<Layer>(Layer::kConvIn, c.inner_channel, c, true));
  auto in = [](const std::vector<int64_t>& v, int64_t x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  };
  int64_t now_res = c.image_size, pre = c.inner_channel;
  const size_t levels = c.channel_mults.size();
  for (size_t l = 0; l < levels; ++l) {
    const int64_t ch = c.inner_channel * c.channel_mults[l];
    for (int64_t b = 0; b < c.res_blocks; ++b) {
      add(*downs, downs_, std::make_shared<Layer>(Layer::kRes, ch, c, false, in(c.attn_res, now_res)));
      pre = ch;
    }
    if (l + 1 < levels) {
      add(*downs, downs_, std::make_shared<Layer>(Layer::kDown, pre, c, false));
      pre *= 2;
      now_res /= 2;
    }
  }
  auto mid = holder(*this, "mid");
  add(*mid, mid_, std::make_shared<Layer>(Layer::kRes, pre, c, false, true));  // quirk Q7: always attention
  add(*mid, mid_, std::make_shared<Layer>(Layer::kRes, pre, c, false, false));
  auto ups = holder(*this, "ups");
  for (size_t l = levels; l-- > 0;) {
    const int64_t ch = c.inner_channel * c.channel_mults[l];
    const bool fp = in(c.fp_res, now_res);
    for (int64_t b = 0; b < c.res_blocks + 1; ++b) {
      add(*ups, ups_, std::make_shared<Layer>(Layer::kFusion, ch, c, fp));
      add(*ups, ups_, std::make_shared<Layer>(Layer::kRes, ch, c, fp, in(c.attn_res, now_res)));
      pre = ch;
    }
    if (l > 0) {
      add(*ups, ups_, std::make_shared<Layer>(Layer::kUp, pre, c, false));  // CP_Up is always binarized
      pre /= 2;
      now_res *= 2;
    }
  }
  auto fin = holder(*this, "final_conv");
  auto block = holder(*fin, "block");
  final_norm_ = block->register_module("0", group_norm(c.norm_groups, pre));
  final_conv_ = block->register_module("3", conv(pre, c.out_channel, 3, true));
}

int64_t BiDiffSrUNetImpl::group_of(int64_t t) const {
  const double v = static_cast<double>(t) * static_cast<double>(config_.dynamic_group) /
                   static_cast<double>(config_.total_step);
  return std::clamp<int64_t>(static_cast<int64_t>(v), 0, config_.dynamic_group - 1);
}

torch::Tensor bi_diffsr_timestep_embedding(const torch::Tensor& t, int64_t dim) {
  const int64_t count = dim / 2;
  torch::Tensor step =
      torch::arange(count, torch::TensorOptions().dtype(torch::kFloat32).device(t.device())) /
      static_cast<double>(count);
  torch::Tensor e = t.reshape({-1, 1}).to(torch::kFloat32) * torch::exp(-std::log(1e4) * step.unsqueeze(0));
  return torch::cat({torch::sin(e), torch::cos(e)}, -1);
}

torch::Tensor BiDiffSrUNetImpl::forward(const torch::Tensor& x, const torch::Tensor& c,
                                        const torch::Tensor& t) {
  return forward_traced(x, c, t, nullptr);
}

torch::Tensor BiDiffSrUNetImpl::forward_traced(const torch::Tensor& x, const torch::Tensor& c,
                                               const torch::Tensor& t,
                                               std::vector<std::pair<std::string, torch::Tensor>>* trace) {
  DMEVAL_CHECK(t.numel() == x.size(0), "BI-DiffSR: {} timesteps for a batch of {}", t.numel(), x.size(0));
  auto record = [&](const std::string& name, const torch::Tensor& v) {
    if (trace) trace->emplace_back(name, v);
  };
  const torch::Tensor tt = t.reshape({-1}).to(torch::kLong);
  const int64_t g = group_of(tt[0].item<int64_t>());  // quirk Q4: batch element 0 decides
  torch::Tensor e = bi_diffsr_timestep_embedding(tt, config_.inner_channel);
  torch::Tensor e1 = mlp1_(e);
  note_linear(e1, e.size(1));
  e = mlp3_(swish(e1));
  note_linear(e, e1.size(1));
  record("timestep_level_mlp", e);
  torch::Tensor h = config_.in_channel != 3 ? torch::cat({c, x}, 1) : x;
  std::vector<torch::Tensor> feats;
  for (size_t i = 0; i < downs_.size(); ++i) {
    h = downs_[i]->run(h, e, g);
    record(fmt::format("downs.{}", i), h);
    feats.push_back(h);
  }
  for (size_t i = 0; i < mid_.size(); ++i) {
    h = mid_[i]->run(h, e, g);
    record(fmt::format("mid.{}", i), h);
  }
  for (size_t i = 0; i < ups_.size(); ++i) {
    if (ups_[i]->kind == Layer::kFusion) {
      DMEVAL_CHECK(!feats.empty(), "BI-DiffSR: the decoder ran out of skip features");
      h = ups_[i]->run(torch::cat({h, feats.back()}, 1), e, g);
      feats.pop_back();
    } else {
      h = ups_[i]->run(h, e, g);
    }
    record(fmt::format("ups.{}", i), h);
  }
  note_groupnorm(h);
  const int64_t cin = h.size(1);
  h = final_conv_(swish(final_norm_(h)));
  note_conv(h, cin, 3, false);
  record("final_conv", h);
  return h;
}

BiDiffSrCost bi_diffsr_cost(BiDiffSrUNetImpl& net, int64_t height, int64_t width) {
  const BiDiffSrConfig& c = net.config();
  const int64_t f = int64_t{1} << (c.channel_mults.size() - 1);
  DMEVAL_CHECK(height % f == 0 && width % f == 0, "BI-DiffSR cost: {}x{} is not divisible by {}", height,
               width, f);
  BiDiffSrCost cost;
  for (const auto& p : net.named_parameters(true)) {
    cost.params_total += p.value().numel();
    if (p.key().find("binary_conv.weight") != std::string::npos) cost.params_binary += p.value().numel();
  }
  // One pass at a small size (4 pixels at the deepest level): convolutions and GroupNorms scale with the
  // pixels, attention with their square, the timestep MLPs not at all.
  const int64_t p = 4 * f;
  BiDiffSrCost probe;
  g_cost = &probe;
  try {
    torch::NoGradGuard no_grad;
    net.forward(torch::zeros({1, c.out_channel, p, p}), torch::zeros({1, c.in_channel - c.out_channel, p, p}),
                torch::zeros({1, 1}, torch::kLong));
  } catch (...) {
    g_cost = nullptr;
    throw;
  }
  g_cost = nullptr;
  const double s = static_cast<double>(height * width) / static_cast<double>(p * p);
  cost.macs_fp_conv = probe.macs_fp_conv * s;
  cost.macs_binary = probe.macs_binary * s;
  cost.groupnorm_elements = probe.groupnorm_elements * s;
  cost.macs_attention = probe.macs_attention * s * s;
  cost.macs_linear = probe.macs_linear;
  return cost;
}

torch::Tensor bi_diffsr_run_inner(torch::nn::Module& module, const torch::Tensor& x, int64_t g,
                                  std::map<std::string, torch::Tensor>* parts) {
  if (auto* b = dynamic_cast<BiConvImpl*>(&module)) return b->forward(x, g, parts);
  if (auto* a = dynamic_cast<SelfAttentionImpl*>(&module)) return a->forward(x);
  fail("{} is neither a BIConv nor a SelfAttention", module.name());
}

std::string load_bi_diffsr_weights(BiDiffSrUNetImpl& net, const std::string& path, bool ema) {
  Checkpoint ck = Checkpoint::open(path);
  std::string key = ema && ck.contains("params_ema") ? "params_ema" : "params";
  DMEVAL_CHECK(ck.contains(key), "{}: not a BasicSR checkpoint (no '{}' entry)", path, key);
  std::map<std::string, torch::Tensor> found;
  for (const auto& entry : ck.tensors_under(ck.find(key), "")) {
    std::string name = entry.path;
    if (name.rfind("module.", 0) == 0) name = name.substr(7);
    found[name] = to_torch(ck.read(entry.value));
  }
  auto params = net.named_parameters(true);
  torch::NoGradGuard no_grad;
  for (auto& p : params) {
    auto it = found.find(p.key());
    DMEVAL_CHECK(it != found.end(), "{}: '{}' is missing (not a BI-DiffSR network of this configuration?)",
                 path, p.key());
    DMEVAL_CHECK(it->second.sizes() == p.value().sizes(), "{}: '{}' has shape {}, the network's is {}", path,
                 p.key(), fmt::format("{}", it->second.sizes()), fmt::format("{}", p.value().sizes()));
    p.value().copy_(it->second.to(torch::kFloat32));
  }
  for (const auto& [k, v] : found)
    DMEVAL_CHECK(params.contains(k), "{}: '{}' is not a parameter of the network (another configuration?)",
                 path, k);
  return key;
}

}  // namespace dmeval
