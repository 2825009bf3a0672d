#include "generators/quant/quantized_unet.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <set>

#include "core/error.h"
#include "core/torch_bridge.h"

namespace dmeval {

torch::Tensor WeightQuantizerSlot::forward(const torch::Tensor& w) {
  if (adaround) return adaround->forward(w);
  return uniform->forward(w);
}

QuantLayer::QuantLayer(LayerQuantSpec spec) : spec_(std::move(spec)) {
  if (spec_.weight) weight.uniform = std::make_unique<UniformQuantizer>(*spec_.weight);
  if (spec_.act) act = std::make_unique<UniformQuantizer>(*spec_.act);
}

torch::Tensor QuantLayer::forward(const torch::Tensor& input, const LayerCall& call) {
  if (call.split != 0 && split != 0) {
    DMEVAL_CHECK(call.split == split, "layer split changed from {} to {}", split, call.split);
  } else if (call.split != 0) {  // created lazily on the first split call, as in q-diffusion
    split = call.split;
    if (spec_.weight) weight_0.uniform = std::make_unique<UniformQuantizer>(*spec_.weight);
    if (spec_.act && spec_.act_position == ActPosition::kInput)
      act_0 = std::make_unique<UniformQuantizer>(*spec_.act);
  }
  torch::Tensor x = input;
  const bool quant_act = !spec_.disable_act_quant && use_act_quant && act;
  if (quant_act && spec_.act_position == ActPosition::kInput) {
    if (split != 0) {
      torch::Tensor x0 = act->forward(x.slice(1, 0, split));
      torch::Tensor x1 = act_0->forward(x.slice(1, split));
      x = torch::cat({x0, x1}, 1);
    } else {
      x = act->forward(x);
    }
  }
  torch::Tensor w = call.weight;
  if (use_weight_quant && weight.defined()) {
    if (split != 0)
      w = torch::cat(
          {weight.forward(call.weight.slice(1, 0, split)), weight_0.forward(call.weight.slice(1, split))}, 1);
    else
      w = weight.forward(call.weight);
  }
  torch::Tensor out = call.op(x, w, call.bias);
  if (quant_act && spec_.act_position == ActPosition::kOutput) out = act->forward(out);
  if (probe) probe(input, out);
  return out;
}

QuantAttention::QuantAttention(const UniformQuantizerSpec& act, int sm_abit, SoftmaxQuant softmax) {
  act_q = std::make_unique<UniformQuantizer>(act);
  act_k = std::make_unique<UniformQuantizer>(act);
  act_v = std::make_unique<UniformQuantizer>(act);
  UniformQuantizerSpec w = act;  // a copy of the activation settings at sm_abit bits
  w.bits = sm_abit;
  if (softmax != SoftmaxQuant::kActCopy) w.always_zero = true;
  if (softmax == SoftmaxQuant::kAsymmetricZero) w.symmetric = false;
  act_w = std::make_unique<UniformQuantizer>(w);
}

QuantPlan qdiffusion_plan(const torch::nn::Module& network, const UniformQuantizerSpec& weight,
                          const std::optional<UniformQuantizerSpec>& act, int sm_abit, bool split_shortcut) {
  QuantPlan p;
  for (size_t i = 0; i < list_layers(network).size(); ++i)
    p.layers.push_back({weight, act, ActPosition::kInput, false});
  p.attention = act;
  p.sm_abit = sm_abit;
  p.split_shortcut = split_shortcut;
  return p;
}

QuantizedUNet::QuantizedUNet(std::shared_ptr<DiffusionModel> model, QuantPlan plan)
    : model_(std::move(model)), plan_(std::move(plan)) {
  DMEVAL_CHECK(model_, "QuantizedUNet: no model");
  auto handles = layer_handles(model_->network());
  DMEVAL_CHECK(plan_.layers.size() == handles.size(), "quantization plan for {} layers, the model has {}",
               plan_.layers.size(), handles.size());
  for (size_t i = 0; i < handles.size(); ++i) {
    LayerHandle& h = handles[i];
    DMEVAL_CHECK(!h.quantizer(), "layer {} is already quantized", h.name);
    auto q = std::make_shared<QuantLayer>(plan_.layers[i]);
    h.quantizer() = q;
    layers_.emplace_back(h.name, q);
    if (h.linear && !h.linear->bias.defined()) biasless_.insert(h.name);
  }
  if (plan_.attention)
    for (AttentionHook& hook : model_->attention_hooks()) {
      auto q = std::make_shared<QuantAttention>(*plan_.attention, plan_.sm_abit, hook.softmax);
      q->qk_prefix = hook.qk_prefix.empty() ? hook.name : hook.qk_prefix;
      q->vw_prefix = hook.vw_prefix.empty() ? hook.name : hook.vw_prefix;
      q->running_stat = hook.running_stat;
      *hook.quantizer = q;
      attention_.emplace_back(hook.name, q);
      // Its quantizers are listed after the block's last layer.
      std::string last;
      for (const LayerHandle& l : handles)
        if (l.name.rfind(hook.name + ".", 0) == 0) last = l.name;
      DMEVAL_CHECK(!last.empty(), "attention block {} has no layer", hook.name);
      attention_after_[last].push_back(q.get());
    }
  model_->set_split_shortcut(plan_.split_shortcut);
}

QuantizedUNet::~QuantizedUNet() {
  for (LayerHandle& h : layer_handles(model_->network())) h.quantizer().reset();
  for (AttentionHook& hook : model_->attention_hooks()) hook.quantizer->reset();
  model_->set_split_shortcut(false);
}

void QuantizedUNet::set_quant_state(bool weight, bool act) {
  for (auto& [n, q] : layers_) {
    q->use_weight_quant = weight;
    q->use_act_quant = act;
  }
  for (auto& [n, q] : attention_) q->use_act_quant = act;
}

void QuantizedUNet::set_running_stat(bool on) {
  for (auto& [n, q] : layers_) {
    if (q->act) q->act->set_running_stat(on);
    if (q->act_0) q->act_0->set_running_stat(on);
  }
  for (auto& [n, q] : attention_)
    if (q->running_stat)
      for (UniformQuantizer* u : {q->act_q.get(), q->act_k.get(), q->act_v.get(), q->act_w.get()})
        u->set_running_stat(on);
}

void QuantizedUNet::convert_adaround() {
  std::map<std::string, const torch::Tensor*> weights;
  auto handles = layer_handles(model_->network());
  for (size_t i = 0; i < handles.size(); ++i) {
    QuantLayer& q = *layers_[i].second;
    const torch::Tensor& w = handles[i].weight();
    if (!q.weight.defined() || q.weight.adaround) continue;
    DMEVAL_CHECK(q.weight.uniform->inited(), "{}: weight quantizer not initialised", handles[i].name);
    if (q.split != 0) {
      q.weight.adaround = std::make_unique<AdaRoundQuantizer>(*q.weight.uniform, w.slice(1, 0, q.split));
      q.weight_0.adaround = std::make_unique<AdaRoundQuantizer>(*q.weight_0.uniform, w.slice(1, q.split));
    } else {
      q.weight.adaround = std::make_unique<AdaRoundQuantizer>(*q.weight.uniform, w);
    }
  }
}

std::vector<QuantizedUNet::Named> QuantizedUNet::quantizers() {
  std::vector<Named> out;
  auto slot = [&](const std::string& name, WeightQuantizerSlot& s) {
    if (s.adaround)
      out.push_back({name, nullptr, s.adaround.get(), true});
    else if (s.uniform)
      out.push_back({name, s.uniform.get(), nullptr, true});
  };
  for (auto& [name, q] : layers_) {
    // attention blocks' own quantizers come after their last layer (proj_out, to_out.0)
    slot(name + ".weight_quantizer", q->weight);
    if (q->act) out.push_back({name + ".act_quantizer", q->act.get(), nullptr, false});
    slot(name + ".weight_quantizer_0", q->weight_0);
    if (q->act_0) out.push_back({name + ".act_quantizer_0", q->act_0.get(), nullptr, false});
    auto it = attention_after_.find(name);
    if (it == attention_after_.end()) continue;
    for (QuantAttention* aq : it->second) {
      out.push_back({aq->qk_prefix + ".act_quantizer_q", aq->act_q.get(), nullptr, false});
      out.push_back({aq->qk_prefix + ".act_quantizer_k", aq->act_k.get(), nullptr, false});
      out.push_back({aq->vw_prefix + ".act_quantizer_v", aq->act_v.get(), nullptr, false});
      out.push_back({aq->vw_prefix + ".act_quantizer_w", aq->act_w.get(), nullptr, false});
    }
  }
  return out;
}

void QuantizedUNet::load_params(const NpzReader& z, bool round_up_as_alpha) {
  for (Named& n : quantizers()) {
    const std::string d = n.name + ".delta", zp = n.name + ".zero_point";
    DMEVAL_CHECK(z.contains(d) && z.contains(zp), "{}: no {} / {}", z.path(), d, zp);
    torch::Tensor delta = to_torch(z.read(d)), zero = to_torch(z.read(zp));
    if (n.adaround) {
      const std::string r = n.name + ".round_up", al = n.name + ".alpha";
      torch::Tensor alpha;
      if (z.contains(al)) {
        alpha = to_torch(z.read(al));
      } else {
        DMEVAL_CHECK(round_up_as_alpha && z.contains(r), "{}: no {} for an AdaRound quantizer", z.path(), al);
        alpha = to_torch(z.read(r)).to(torch::kFloat32) * 2 - 1;  // only the sign matters to hard rounding
      }
      *n.adaround = AdaRoundQuantizer(delta, zero, n.adaround->n_levels(), alpha);
    } else {
      n.uniform->set_params(delta, zero);
    }
  }
}

std::vector<std::pair<std::string, torch::Tensor>> QuantizedUNet::state_dict() {
  std::map<std::string, QuantLayer*> by_layer;
  for (auto& [n, q] : layers_) by_layer[n] = q.get();
  std::vector<std::pair<std::string, torch::Tensor>> out;
  auto add_uniform = [&](const std::string& name, const UniformQuantizer* u) {
    if (!u || !u->delta().defined()) return;
    out.emplace_back("model." + name + ".delta", u->delta().detach());
    out.emplace_back("model." + name + ".zero_point", u->zero_point().detach());
  };
  auto add_weight = [&](const std::string& name, const WeightQuantizerSlot& w) {
    if (w.adaround) {
      out.emplace_back("model." + name + ".alpha", w.adaround->alpha().detach());
      out.emplace_back("model." + name + ".zero_point", w.adaround->zero_point());
      out.emplace_back("model." + name + ".delta", w.adaround->delta());
    } else {
      add_uniform(name, w.uniform.get());
    }
  };
  auto ends_with = [](const std::string& k, const std::string& suffix) {
    return k.size() > suffix.size() && k.compare(k.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  for (const auto& p : model_->network().named_parameters(true)) {
    out.emplace_back("model." + p.key(), p.value().detach());
    const std::string& key = p.key();
    // A layer's quantizers follow its last tensor: the bias, or the weight of a layer without one.
    std::string layer;
    if (ends_with(key, ".bias"))
      layer = key.substr(0, key.size() - 5);
    else if (ends_with(key, ".weight") && biasless_.count(key.substr(0, key.size() - 7)))
      layer = key.substr(0, key.size() - 7);
    auto it = by_layer.find(layer);
    if (layer.empty() || it == by_layer.end()) continue;
    QuantLayer& q = *it->second;
    add_weight(layer + ".weight_quantizer", q.weight);
    add_uniform(layer + ".act_quantizer", q.act.get());
    add_weight(layer + ".weight_quantizer_0", q.weight_0);
    add_uniform(layer + ".act_quantizer_0", q.act_0.get());
    auto a = attention_after_.find(layer);
    if (a == attention_after_.end()) continue;
    for (QuantAttention* aq : a->second) {
      add_uniform(aq->qk_prefix + ".act_quantizer_q", aq->act_q.get());
      add_uniform(aq->qk_prefix + ".act_quantizer_k", aq->act_k.get());
      add_uniform(aq->vw_prefix + ".act_quantizer_v", aq->act_v.get());
      add_uniform(aq->vw_prefix + ".act_quantizer_w", aq->act_w.get());
    }
  }
  return out;
}

void QuantizedUNet::load_state_dict(const std::map<std::string, torch::Tensor>& dict,
                                    const std::string& source) {
  // Weight quantizers stored with an AdaRound alpha become AdaRound quantizers.
  auto to_adaround = [&](const std::string& name, WeightQuantizerSlot& slot) {
    auto a = dict.find("model." + name + ".alpha");
    auto d = dict.find("model." + name + ".delta");
    auto z = dict.find("model." + name + ".zero_point");
    if (slot.adaround || !slot.uniform || a == dict.end() || d == dict.end() || z == dict.end()) return;
    slot.adaround = std::make_unique<AdaRoundQuantizer>(
        d->second.to(torch::kFloat32).clone(), z->second.to(torch::kFloat32).clone(),
        slot.uniform->n_levels(), a->second.to(torch::kFloat32).clone());
  };
  for (auto& [name, q] : layers_) {
    to_adaround(name + ".weight_quantizer", q->weight);
    to_adaround(name + ".weight_quantizer_0", q->weight_0);
  }
  // Quantizers not yet initialised get placeholders so that their stored values are expected.
  for (Named& n : quantizers()) {
    if (!n.uniform || n.uniform->calibrated()) continue;
    auto d = dict.find("model." + n.name + ".delta");
    auto z = dict.find("model." + n.name + ".zero_point");
    n.uniform->set_params(d != dict.end() ? d->second.clone() : torch::ones({}),
                          z != dict.end() ? z->second.clone() : torch::zeros({}));
  }
  std::vector<std::pair<std::string, torch::Tensor>> mine = state_dict();
  std::set<std::string> expected;
  std::vector<std::string> missing, shapes;
  for (const auto& [k, v] : mine) {
    expected.insert(k);
    auto it = dict.find(k);
    if (it == dict.end())
      missing.push_back(k);
    else if (it->second.sizes() != v.sizes())
      shapes.push_back(fmt::format("{}: file [{}] vs model [{}]", k, fmt::join(it->second.sizes(), ", "),
                                   fmt::join(v.sizes(), ", ")));
  }
  std::vector<std::string> unexpected;
  for (const auto& [k, v] : dict)
    if (!expected.count(k)) unexpected.push_back(k);
  auto head = [](const std::vector<std::string>& v) {
    std::vector<std::string> h(v.begin(), v.begin() + std::min<size_t>(v.size(), 5));
    return fmt::format("{}{}", fmt::join(h, ", "),
                       v.size() > 5 ? fmt::format(" ... ({} in all)", v.size()) : "");
  };
  DMEVAL_CHECK(shapes.empty(),
               "{}: {} tensors have other shapes than this quantized model (bits/config?): {}", source,
               shapes.size(), head(shapes));
  DMEVAL_CHECK(
      missing.empty() && unexpected.empty(),
      "{}: not a q-diffusion state dict of this model and configuration: {} missing ({}), {} unexpected ({})",
      source, missing.size(), head(missing), unexpected.size(), head(unexpected));
  torch::NoGradGuard no_grad;
  // UNet parameters, then quantizer parameters by name.
  for (auto& p : model_->network().named_parameters(true)) p.value().copy_(dict.at("model." + p.key()));
  auto get = [&](const std::string& k) { return dict.at("model." + k).to(torch::kFloat32).clone(); };
  for (Named& n : quantizers()) {
    if (n.adaround) {
      *n.adaround = AdaRoundQuantizer(get(n.name + ".delta"), get(n.name + ".zero_point"),
                                      n.adaround->n_levels(), get(n.name + ".alpha"));
    } else {
      n.uniform->set_params(get(n.name + ".delta"), get(n.name + ".zero_point"));
    }
  }
}

std::vector<std::pair<std::string, torch::Tensor>> QuantizedUNet::quantizer_state() {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& [k, v] : state_dict()) {
    const std::string name = k.substr(6);  // without "model."
    if (name.find("_quantizer") != std::string::npos) out.emplace_back(name, v.contiguous());
  }
  return out;
}

void QuantizedUNet::load_quantizer_state(const std::map<std::string, torch::Tensor>& state,
                                         const std::string& source) {
  std::map<std::string, torch::Tensor> dict;
  for (const auto& p : model_->network().named_parameters(true))
    dict["model." + p.key()] = p.value().detach().clone();
  for (const auto& [k, v] : state) dict["model." + k] = v;
  load_state_dict(dict, source);
}

}  // namespace dmeval
