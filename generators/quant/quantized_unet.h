// A fake-quantized diffusion network (any family's DiffusionModel): quantizers attached to its layer
// and attention hooks according to a plan (one entry per Conv2d/Linear), the structure every PTQ
// method here shares. Each layer can
// quantize its weight (per-channel or per-tensor; uniform, later AdaRound) and its input (q-diffusion,
// PTQD, TinyDM) or its output (QDrop/PTQ4DM); q-diffusion's split shortcut gives the decoder's 1x1
// shortcuts (DiffusionModel::set_split_shortcut) separate quantizers for the two halves of their concatenated
// input; attention blocks can quantize q, k, v and the softmax before the matrix products (QuantAttnBlock).
//
// Quantizer names follow q-diffusion's checkpoints: `<layer>.weight_quantizer[_0]`,
// `<layer>.act_quantizer[_0]`, `<attn>.act_quantizer_{q,k,v,w}`; state_dict() writes q-diffusion's
// calibrated-checkpoint layout.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/npy.h"
#include "generators/diffusion_model.h"
#include "generators/quant/adaround.h"
#include "generators/quant/uniform_quantizer.h"

namespace dmeval {

enum class ActPosition { kInput, kOutput };

struct LayerQuantSpec {
  std::optional<UniformQuantizerSpec> weight;  // none: float weight
  std::optional<UniformQuantizerSpec> act;     // none: float activation
  ActPosition act_position = ActPosition::kInput;
  bool disable_act_quant = false;  // e.g. QDrop's network output
};

struct QuantPlan {
  std::vector<LayerQuantSpec> layers;             // in layer_handles() order
  std::optional<UniformQuantizerSpec> attention;  // q, k, v quantizers; w at sm_abit bits
  int sm_abit = 8;
  bool split_shortcut = false;
};

// One weight quantizer slot: uniform until converted to AdaRound.
struct WeightQuantizerSlot {
  std::unique_ptr<UniformQuantizer> uniform;
  std::unique_ptr<AdaRoundQuantizer> adaround;
  torch::Tensor forward(const torch::Tensor& w);
  bool defined() const { return uniform || adaround; }
};

class QuantLayer : public LayerQuantizer {
 public:
  explicit QuantLayer(LayerQuantSpec spec);
  torch::Tensor forward(const torch::Tensor& x, const LayerCall& call) override;
  const LayerQuantSpec& spec() const { return spec_; }

  bool use_weight_quant = false, use_act_quant = false;
  int64_t split = 0;
  WeightQuantizerSlot weight, weight_0;
  std::unique_ptr<UniformQuantizer> act, act_0;
  // While set, receives this layer's input and output of every call (calibration caches).
  std::function<void(const torch::Tensor& input, const torch::Tensor& output)> probe;

 private:
  LayerQuantSpec spec_;
};

class QuantAttention : public AttentionQuantizer {
 public:
  // q, k, v with the activation settings; w at sm_abit bits, set up as `softmax` says (layers.h).
  QuantAttention(const UniformQuantizerSpec& act, int sm_abit, SoftmaxQuant softmax = SoftmaxQuant::kActCopy);
  torch::Tensor q(const torch::Tensor& x) override { return use_act_quant ? act_q->forward(x) : x; }
  torch::Tensor k(const torch::Tensor& x) override { return use_act_quant ? act_k->forward(x) : x; }
  torch::Tensor v(const torch::Tensor& x) override { return use_act_quant ? act_v->forward(x) : x; }
  torch::Tensor w(const torch::Tensor& x) override { return use_act_quant ? act_w->forward(x) : x; }
  bool use_act_quant = false;
  std::unique_ptr<UniformQuantizer> act_q, act_k, act_v, act_w;
  // Quantizer names: `<qk_prefix>.act_quantizer_{q,k}`, `<vw_prefix>.act_quantizer_{v,w}`.
  std::string qk_prefix, vw_prefix;
  bool running_stat = false;  // whether set_running_stat reaches them
};

class QuantizedUNet {
 public:
  // Attaches quantizers to `model`'s network (shared with the caller) as `plan` says.
  QuantizedUNet(std::shared_ptr<DiffusionModel> model, QuantPlan plan);
  ~QuantizedUNet();  // detaches them again
  QuantizedUNet(const QuantizedUNet&) = delete;
  QuantizedUNet& operator=(const QuantizedUNet&) = delete;

  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const Conditioning& c = {}) {
    return model_->forward(x, t, c);
  }
  void set_quant_state(bool weight, bool act);
  void set_running_stat(bool on);
  // q-diffusion's convert_adaround: every weight quantizer (and its split twin) becomes AdaRound,
  // initialised from the float weight (slice); hard rounding.
  void convert_adaround();

  struct Named {
    std::string name;  // "down.0.block.0.conv1.weight_quantizer"
    UniformQuantizer* uniform = nullptr;
    AdaRoundQuantizer* adaround = nullptr;
    bool is_weight = false;
  };
  // Every quantizer that exists now, in module order (weight, act, weight_0, act_0 per layer; each
  // attention block's after its last layer: proj_out, to_out.0).
  std::vector<Named> quantizers();
  // Δ/z (and AdaRound α, or its rounding bits) from arrays named `<quantizer>.delta` etc.
  void load_params(const NpzReader& z, bool round_up_as_alpha = true);

  // q-diffusion's `qnn.state_dict()` layout: "model." + every network tensor in module order, each
  // quantized layer's quantizers after its bias (its weight when it has none; AdaRound: alpha,
  // zero_point, delta; uniform: delta, zero_point), attention quantizers after the block's last layer.
  std::vector<std::pair<std::string, torch::Tensor>> state_dict();
  // Loads such a dict (e.g. q-diffusion's calibrated ckpt.pth) into this model: the split structure
  // must exist (one forward made it); weight quantizers with an alpha in the dict become AdaRound.
  // Checks every key and shape; errors name `source`.
  void load_state_dict(const std::map<std::string, torch::Tensor>& dict, const std::string& source);

  // The quantizer tensors alone, named `<quantizer>.delta` etc. (calibration files), and loading
  // them back into a model of the same plan (the split structure must exist).
  std::vector<std::pair<std::string, torch::Tensor>> quantizer_state();
  void load_quantizer_state(const std::map<std::string, torch::Tensor>& state, const std::string& source);

  const QuantPlan& plan() const { return plan_; }
  DiffusionModel& model() { return *model_; }
  torch::nn::Module& network() { return model_->network(); }
  std::vector<std::pair<std::string, std::shared_ptr<QuantLayer>>>& layers() { return layers_; }
  std::vector<std::pair<std::string, std::shared_ptr<QuantAttention>>>& attention() { return attention_; }

 private:
  std::shared_ptr<DiffusionModel> model_;
  QuantPlan plan_;
  std::vector<std::pair<std::string, std::shared_ptr<QuantLayer>>> layers_;
  std::vector<std::pair<std::string, std::shared_ptr<QuantAttention>>> attention_;
  // The attention blocks whose quantizers follow each layer (its last layer), by layer name.
  std::map<std::string, std::vector<QuantAttention*>> attention_after_;
  std::set<std::string> biasless_;  // layers without a bias (their quantizers follow the weight)
};

// q-diffusion's plan: every layer quantizes its input and weight with the same specs; attention
// matmuls quantized when activations are.
QuantPlan qdiffusion_plan(const torch::nn::Module& network, const UniformQuantizerSpec& weight,
                          const std::optional<UniformQuantizerSpec>& act, int sm_abit, bool split_shortcut);

}  // namespace dmeval
