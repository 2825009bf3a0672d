#include "generators/quant/qdiff_model.h"

#include <torch/torch.h>

#include "core/error.h"
#include "core/torch_bridge.h"

namespace dmeval {

torch::Tensor WeightQuantizerSlot::forward(const torch::Tensor& w) {
  if (adaround) return adaround->forward(w);
  return uniform->forward(w);
}

QDiffLayerQuantizer::QDiffLayerQuantizer(const QDiffQuantConfig& config) : config_(config) {
  weight.uniform = std::make_unique<UniformQuantizer>(config.weight);
  if (config.act) act = std::make_unique<UniformQuantizer>(*config.act);
}

torch::Tensor QDiffLayerQuantizer::forward(const torch::Tensor& input, const LayerCall& call) {
  if (call.split != 0 && split != 0) {
    DMEVAL_CHECK(call.split == split, "layer split changed from {} to {}", split, call.split);
  } else if (call.split != 0) {  // created lazily on the first split call, as in q-diffusion
    split = call.split;
    weight_0.uniform = std::make_unique<UniformQuantizer>(config_.weight);
    if (config_.act) act_0 = std::make_unique<UniformQuantizer>(*config_.act);
  }
  torch::Tensor x = input;
  if (!disable_act_quant && use_act_quant && act) {
    if (split != 0) {
      torch::Tensor x0 = act->forward(x.slice(1, 0, split));
      torch::Tensor x1 = act_0->forward(x.slice(1, split));
      x = torch::cat({x0, x1}, 1);
    } else {
      x = act->forward(x);
    }
  }
  torch::Tensor w = call.weight;
  if (use_weight_quant) {
    if (split != 0)
      w = torch::cat(
          {weight.forward(call.weight.slice(1, 0, split)), weight_0.forward(call.weight.slice(1, split))}, 1);
    else
      w = weight.forward(call.weight);
  }
  return call.op(x, w, call.bias);
}

QDiffAttentionQuantizer::QDiffAttentionQuantizer(const QDiffQuantConfig& config) {
  DMEVAL_CHECK(config.act.has_value(), "attention quantizers need activation quantization");
  act_q = std::make_unique<UniformQuantizer>(*config.act);
  act_k = std::make_unique<UniformQuantizer>(*config.act);
  act_v = std::make_unique<UniformQuantizer>(*config.act);
  UniformQuantizerSpec w = *config.act;  // a copy of the activation settings at sm_abit bits
  w.bits = config.sm_abit;
  act_w = std::make_unique<UniformQuantizer>(w);
}

QDiffQuantModel::QDiffQuantModel(DdimUNet unet, QDiffQuantConfig config)
    : unet_(std::move(unet)), config_(std::move(config)) {
  for (LayerHandle& h : layer_handles(*unet_)) {
    DMEVAL_CHECK(!h.quantizer(), "layer {} is already quantized", h.name);
    auto q = std::make_shared<QDiffLayerQuantizer>(config_);
    h.quantizer() = q;
    layers_.emplace_back(h.name, q);
  }
  if (config_.act)
    for (auto& [name, block] : unet_->attention_blocks()) {
      auto q = std::make_shared<QDiffAttentionQuantizer>(config_);
      block->quantizer = q;
      attention_.emplace_back(name, q);
    }
  unet_->set_split_shortcut(config_.split_shortcut);
}

QDiffQuantModel::~QDiffQuantModel() {
  for (LayerHandle& h : layer_handles(*unet_)) h.quantizer().reset();
  for (auto& [name, block] : unet_->attention_blocks()) block->quantizer.reset();
  unet_->set_split_shortcut(false);
}

void QDiffQuantModel::set_quant_state(bool weight, bool act) {
  for (auto& [n, q] : layers_) {
    q->use_weight_quant = weight;
    q->use_act_quant = act;
  }
  for (auto& [n, q] : attention_) q->use_act_quant = act;
}

void QDiffQuantModel::set_running_stat(bool on) {
  for (auto& [n, q] : layers_) {
    if (q->act) q->act->set_running_stat(on);
    if (q->act_0) q->act_0->set_running_stat(on);
  }
}

void QDiffQuantModel::convert_adaround() {
  std::map<std::string, const torch::Tensor*> weights;
  auto handles = layer_handles(*unet_);
  for (size_t i = 0; i < handles.size(); ++i) {
    QDiffLayerQuantizer& q = *layers_[i].second;
    const torch::Tensor& w = handles[i].weight();
    DMEVAL_CHECK(q.weight.uniform && q.weight.uniform->inited(), "{}: weight quantizer not initialised",
                 handles[i].name);
    if (q.split != 0) {
      q.weight.adaround = std::make_unique<AdaRoundQuantizer>(*q.weight.uniform, w.slice(1, 0, q.split));
      q.weight_0.adaround = std::make_unique<AdaRoundQuantizer>(*q.weight_0.uniform, w.slice(1, q.split));
    } else {
      q.weight.adaround = std::make_unique<AdaRoundQuantizer>(*q.weight.uniform, w);
    }
  }
}

std::vector<QDiffQuantModel::Named> QDiffQuantModel::quantizers() {
  std::vector<Named> out;
  auto slot = [&](const std::string& name, WeightQuantizerSlot& s) {
    if (s.adaround)
      out.push_back({name, nullptr, s.adaround.get(), true});
    else if (s.uniform)
      out.push_back({name, s.uniform.get(), nullptr, true});
  };
  size_t a = 0;
  for (auto& [name, q] : layers_) {
    // attention blocks' own quantizers come after their last layer (proj_out)
    slot(name + ".weight_quantizer", q->weight);
    if (q->act) out.push_back({name + ".act_quantizer", q->act.get(), nullptr, false});
    slot(name + ".weight_quantizer_0", q->weight_0);
    if (q->act_0) out.push_back({name + ".act_quantizer_0", q->act_0.get(), nullptr, false});
    if (a < attention_.size() && name == attention_[a].first + ".proj_out") {
      QDiffAttentionQuantizer& aq = *attention_[a].second;
      const std::string& an = attention_[a].first;
      out.push_back({an + ".act_quantizer_q", aq.act_q.get(), nullptr, false});
      out.push_back({an + ".act_quantizer_k", aq.act_k.get(), nullptr, false});
      out.push_back({an + ".act_quantizer_v", aq.act_v.get(), nullptr, false});
      out.push_back({an + ".act_quantizer_w", aq.act_w.get(), nullptr, false});
      ++a;
    }
  }
  return out;
}

void QDiffQuantModel::load_params(const NpzReader& z, bool round_up_as_alpha) {
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

}  // namespace dmeval
