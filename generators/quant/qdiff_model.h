// Q-Diffusion's fake-quantized UNet (qdiff QuantModel / QuantModule / QuantResnetBlock /
// QuantAttnBlock, spec generators.md §6.1) built on the ddim UNet's quantizer hooks: every Conv2d and
// Linear quantizes its input (per-tensor activation quantizer) and its weight (per-channel), bias
// float; with the split shortcut the decoder's 1x1 shortcuts get separate quantizers for the two
// halves of their concatenated input; attention quantizes q, k, v and the softmax before the matrix
// products (sm_abit bits). Quantizers are named as in q-diffusion checkpoints
// (`<layer>.weight_quantizer[_0]`, `<layer>.act_quantizer[_0]`, `<attn>.act_quantizer_{q,k,v,w}`).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/npy.h"
#include "generators/ddim_unet.h"
#include "generators/quant/adaround.h"
#include "generators/quant/uniform_quantizer.h"

namespace dmeval {

struct QDiffQuantConfig {
  UniformQuantizerSpec weight;              // e.g. 4-bit, channel-wise, max, asymmetric
  std::optional<UniformQuantizerSpec> act;  // none: weight-only quantization
  int sm_abit = 8;                          // softmax output quantizer bits
  bool split_shortcut = true;
};

// One weight quantizer slot: uniform until converted to AdaRound.
struct WeightQuantizerSlot {
  std::unique_ptr<UniformQuantizer> uniform;
  std::unique_ptr<AdaRoundQuantizer> adaround;
  torch::Tensor forward(const torch::Tensor& w);
};

class QDiffLayerQuantizer : public LayerQuantizer {
 public:
  explicit QDiffLayerQuantizer(const QDiffQuantConfig& config);
  torch::Tensor forward(const torch::Tensor& x, const LayerCall& call) override;

  bool use_weight_quant = false, use_act_quant = false, disable_act_quant = false;
  int64_t split = 0;
  WeightQuantizerSlot weight, weight_0;
  std::unique_ptr<UniformQuantizer> act, act_0;

 private:
  const QDiffQuantConfig& config_;
};

class QDiffAttentionQuantizer : public AttentionQuantizer {
 public:
  explicit QDiffAttentionQuantizer(const QDiffQuantConfig& config);
  torch::Tensor q(const torch::Tensor& x) override { return use_act_quant ? act_q->forward(x) : x; }
  torch::Tensor k(const torch::Tensor& x) override { return use_act_quant ? act_k->forward(x) : x; }
  torch::Tensor v(const torch::Tensor& x) override { return use_act_quant ? act_v->forward(x) : x; }
  torch::Tensor w(const torch::Tensor& x) override { return use_act_quant ? act_w->forward(x) : x; }
  bool use_act_quant = false;
  std::unique_ptr<UniformQuantizer> act_q, act_k, act_v, act_w;
};

class QDiffQuantModel {
 public:
  // Attaches quantizers to every layer and attention block of `unet` (shared with the caller).
  QDiffQuantModel(DdimUNet unet, QDiffQuantConfig config);
  ~QDiffQuantModel();  // detaches them again

  void set_quant_state(bool weight, bool act);
  void set_running_stat(bool on);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t) { return unet_->forward(x, t); }
  // q-diffusion's convert_adaround: every weight quantizer (and its split twin) becomes AdaRound,
  // initialised from the float weight (slice); hard rounding.
  void convert_adaround();

  struct Named {
    std::string name;  // "down.0.block.0.conv1.weight_quantizer"
    UniformQuantizer* uniform = nullptr;
    AdaRoundQuantizer* adaround = nullptr;
    bool is_weight = false;
  };
  // Every quantizer that exists now, in module order (weight, act, weight_0, act_0 per layer; then the
  // attention quantizers of each block after its layers, as q-diffusion's state dict lists them).
  std::vector<Named> quantizers();
  // Δ/z (and AdaRound α or its rounding bits) from arrays named `<quantizer>.delta` etc.
  void load_params(const NpzReader& z, bool round_up_as_alpha = true);

  // q-diffusion's `qnn.state_dict()` layout: "model." + every UNet tensor in module order, each
  // quantized layer's quantizers after its bias (AdaRound: alpha, zero_point, delta; uniform: delta,
  // zero_point), attention quantizers after the block's proj_out.
  std::vector<std::pair<std::string, torch::Tensor>> state_dict();
  // Loads such a dict (e.g. q-diffusion's calibrated ckpt.pth) into a model whose structure already
  // exists (initialised, and converted to AdaRound if the dict has alphas). Checks every key and
  // shape; errors name `source`.
  void load_state_dict(const std::map<std::string, torch::Tensor>& dict, const std::string& source);

  const QDiffQuantConfig& config() const { return config_; }
  DdimUNet& unet() { return unet_; }

 private:
  DdimUNet unet_;
  QDiffQuantConfig config_;
  std::vector<std::pair<std::string, std::shared_ptr<QDiffLayerQuantizer>>> layers_;
  std::vector<std::pair<std::string, std::shared_ptr<QDiffAttentionQuantizer>>> attention_;
};

}  // namespace dmeval
