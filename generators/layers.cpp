#include "generators/layers.h"

#include <torch/nn/init.h>
#include <torch/torch.h>

#include <cmath>

#include "core/error.h"

namespace dmeval {

const char* layer_role_name(LayerRole role) {
  switch (role) {
    case LayerRole::kTimestepMlp: return "timestep_mlp";
    case LayerRole::kFirstConv: return "first_conv";
    case LayerRole::kLastConv: return "last_conv";
    case LayerRole::kResblockConv: return "resblock_conv";
    case LayerRole::kResblockShortcut: return "resblock_shortcut_1x1";
    case LayerRole::kResblockTembProj: return "resblock_temb_proj";
    case LayerRole::kAttention1x1: return "attention_1x1";
    case LayerRole::kDownsampleConv: return "downsample_conv";
    case LayerRole::kUpsampleConv: return "upsample_conv";
    case LayerRole::kSelfAttnQ: return "self_attn_q";
    case LayerRole::kSelfAttnK: return "self_attn_k";
    case LayerRole::kSelfAttnV: return "self_attn_v";
    case LayerRole::kSelfAttnOut: return "self_attn_out";
    case LayerRole::kCrossAttnQ: return "cross_attn_q";
    case LayerRole::kCrossAttnK: return "cross_attn_k";
    case LayerRole::kCrossAttnV: return "cross_attn_v";
    case LayerRole::kCrossAttnOut: return "cross_attn_out";
    case LayerRole::kFeedForward: return "feed_forward";
    case LayerRole::kTransformerProj: return "transformer_proj";
    case LayerRole::kConditioning: return "conditioning";
    case LayerRole::kAutoencoder: return "autoencoder";
  }
  return "?";
}

namespace {
thread_local MacCounter* g_mac_counter = nullptr;
}  // namespace

MacCounter::MacCounter() : previous_(g_mac_counter) {
  g_mac_counter = this;
}
MacCounter::~MacCounter() {
  g_mac_counter = previous_;
}
MacCounter* MacCounter::active() {
  return g_mac_counter;
}

namespace {
// torch.nn's reset_parameters for Conv/Linear: kaiming_uniform_(a=sqrt(5)) on the weight and
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) on the bias.
void default_init(torch::Tensor& weight, torch::Tensor& bias, int64_t fan_in) {
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  if (bias.defined()) torch::nn::init::uniform_(bias, -bound, bound);
}
}  // namespace

Conv2dLayerImpl::Conv2dLayerImpl(int64_t in, int64_t out, int64_t k, int64_t s, int64_t p, LayerRole r,
                                 int64_t d)
    : in_channels(in), out_channels(out), kernel(k), stride(s), padding(p), role(r), dims(d) {
  DMEVAL_CHECK(d == 1 || d == 2, "convolution layers are 1-D or 2-D, not {}-D", d);
  weight = register_parameter("weight", d == 1 ? torch::empty({out, in, k}) : torch::empty({out, in, k, k}));
  bias = register_parameter("bias", torch::empty({out}));
  reset_parameters();
}

void Conv2dLayerImpl::reset_parameters() {
  default_init(weight, bias, in_channels * (dims == 1 ? kernel : kernel * kernel));
}

torch::Tensor Conv2dLayerImpl::forward(const torch::Tensor& x, int64_t split) {
  torch::Tensor y;
  if (quantizer) {
    const std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&)> op =
        [this](const torch::Tensor& in, const torch::Tensor& w, const torch::Tensor& b) {
          return dims == 1 ? torch::conv1d(in, w, b, {stride}, {padding})
                           : torch::conv2d(in, w, b, {stride, stride}, {padding, padding});
        };
    y = quantizer->forward(x, LayerCall{weight, bias, op, split});
  } else {
    y = dims == 1 ? torch::conv1d(x, weight, bias, {stride}, {padding})
                  : torch::conv2d(x, weight, bias, {stride, stride}, {padding, padding});
  }
  if (MacCounter* c = MacCounter::active())
    c->layers += y.numel() * in_channels * (dims == 1 ? kernel : kernel * kernel);
  return y;
}

LinearLayerImpl::LinearLayerImpl(int64_t in, int64_t out, LayerRole r, bool with_bias)
    : in_features(in), out_features(out), role(r) {
  weight = register_parameter("weight", torch::empty({out, in}));
  if (with_bias) bias = register_parameter("bias", torch::empty({out}));
  reset_parameters();
}

void LinearLayerImpl::reset_parameters() {
  default_init(weight, bias, in_features);
}

torch::Tensor LinearLayerImpl::forward(const torch::Tensor& x) {
  torch::Tensor y;
  if (quantizer) {
    const std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&)> op =
        [](const torch::Tensor& in, const torch::Tensor& w, const torch::Tensor& b) {
          return torch::linear(in, w, b);
        };
    y = quantizer->forward(x, LayerCall{weight, bias, op, 0});
  } else {
    y = torch::linear(x, weight, bias);
  }
  if (MacCounter* c = MacCounter::active()) c->layers += y.numel() * in_features;
  return y;
}

std::vector<LayerInfo> list_layers(const torch::nn::Module& root) {
  std::vector<LayerInfo> out;
  for (const auto& item : root.named_modules("", /*include_self=*/false)) {
    const torch::nn::Module* m = item.value().get();
    if (const auto* c = dynamic_cast<const Conv2dLayerImpl*>(m)) {
      LayerInfo li{item.key(), c->dims == 1 ? "Conv1d" : "Conv2d", c->role, c->weight.sizes().vec(),
                   c->out_channels};
      li.kernel = c->kernel;
      li.stride = c->stride;
      li.padding = c->padding;
      li.macs_per_output = c->in_channels * (c->dims == 1 ? c->kernel : c->kernel * c->kernel);
      out.push_back(std::move(li));
    } else if (const auto* l = dynamic_cast<const LinearLayerImpl*>(m)) {
      LayerInfo li{item.key(), "Linear", l->role, l->weight.sizes().vec(), l->out_features};
      li.macs_per_output = l->in_features;
      out.push_back(std::move(li));
    }
  }
  return out;
}

std::vector<LayerHandle> layer_handles(torch::nn::Module& root) {
  std::vector<LayerHandle> out;
  for (const auto& item : root.named_modules("", /*include_self=*/false)) {
    torch::nn::Module* m = item.value().get();
    if (auto* c = dynamic_cast<Conv2dLayerImpl*>(m))
      out.push_back({item.key(), c, nullptr});
    else if (auto* l = dynamic_cast<LinearLayerImpl*>(m))
      out.push_back({item.key(), nullptr, l});
  }
  return out;
}

}  // namespace dmeval
