// BinaryDM's trained low-bit layers (spec binarydm.md §3, generators.md §5.5-5.6): a LayerQuantizer
// that makes a model's Conv2d/Conv1d/Linear a BNN layer as ours_util.py trains it — a precision switch
// ('full' = the plain float op), the LSQ activation quantizer `_ActQ` at 8/4/2 bits or none, and the
// weight either binarised (order 1: sign(W)·s1; order 2: + sign(W − sign(W)·s1)·s2; scales set from the
// weights on the first binary call, trainable afterwards, clipped straight-through sign) or, for the
// LSQ-2bit baseline of the tables (spec §7, dmeval's construction: the code has no LSQ weight
// quantizer), an LSQ weight quantizer with a per-output-channel step.
//
// The trainable tensors are registered on the layer's own module under the reference's names
// (`scaling_first_order`, `scaling_second_order`, `quantizer_a.alpha`; LSQ: `weight_step`), so the
// network's state dict is the reference's and the optimizer, the EMA copy and checkpoints see them.
#pragma once

#include <torch/nn/module.h>
#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

#include "generators/layers.h"
#include "generators/quant/binarizer.h"
#include "generators/quant/lsq.h"

namespace dmeval {

struct BnnLayerSpec {
  int order = 1;            // binarised weights: 1 or 2 sign bases
  int lsq_bits = 0;         // > 0: LSQ weight quantizer at this many bits instead of the binarizer
  int act_bits = 8;         // _ActQ bits; 32 = no activation quantizer (binary_act False)
  bool stays_full = false;  // the layers the reference forces back to 'full' (never quantized)
};

// `_ActQ` with its α a registered parameter: every call overwrites α with 2·mean|x|/√Qp (the
// reference's quirk: dynamic quantization) and then quantizes with it, so α's gradient reaches the
// optimizer (which moves it, to be overwritten at the next call).
class ActQuantizerImpl : public torch::nn::Module {
 public:
  explicit ActQuantizerImpl(int bits);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor alpha;
  LsqActQuantizer lsq;
};
TORCH_MODULE(ActQuantizer);

// LSQ weight quantizer (Esser et al.): signed grid [−2^(b−1), 2^(b−1)−1], a step per output channel
// initialised on the first call to 2·mean|W[o]|/√Qp, gradient scale 1/√(elements per channel · Qp).
class LsqWeightQuantizer {
 public:
  LsqWeightQuantizer(int bits, torch::Tensor step);
  torch::Tensor forward(const torch::Tensor& w);
  bool inited = false;
  torch::Tensor step;

 private:
  int64_t qn_, qp_;
};

class BnnLayer : public LayerQuantizer {
 public:
  // Registers the layer's parameters on `layer` (initial scales rand·0.001 as the constructor draws
  // them, from `gen`; α 0).
  BnnLayer(torch::nn::Module& layer, int64_t out_channels, int64_t weight_dims, const BnnLayerSpec& spec,
           torch::Generator gen);
  torch::Tensor forward(const torch::Tensor& x, const LayerCall& call) override;

  // 'full' (plain float) until its group is switched on.
  bool full = true;
  const BnnLayerSpec& spec() const { return spec_; }
  bool inited() const;
  void set_inited(bool on);    // a restored layer: its scales come from the checkpoint
  torch::Tensor s1, s2, step;  // the registered parameters (s2 only for order 2, step only for LSQ)
  ActQuantizer act{nullptr};   // undefined with act_bits 32

 private:
  BnnLayerSpec spec_;
  std::unique_ptr<WeightBinarizer> binarizer_;
  std::unique_ptr<LsqWeightQuantizer> lsq_;
};

// BinaryDM's attention quantizers (QKVAttentionLegacy with binary_act): q·scale, k·scale, the softmax
// weights and v each through an 8-bit _ActQ once switched on; registered as `attention.act_quantizer_*`
// under the attention block.
class BnnAttentionQuantizer : public AttentionQuantizer {
 public:
  BnnAttentionQuantizer(torch::nn::Module& block, int bits);
  torch::Tensor q(const torch::Tensor& x) override { return on ? q_(x) : x; }
  torch::Tensor k(const torch::Tensor& x) override { return on ? k_(x) : x; }
  torch::Tensor v(const torch::Tensor& x) override { return on ? v_(x) : x; }
  torch::Tensor w(const torch::Tensor& x) override { return on ? w_(x) : x; }
  bool on = false;

 private:
  ActQuantizer q_{nullptr}, k_{nullptr}, v_{nullptr}, w_{nullptr};
};

// The module at `path` below `root` (a named_modules key), or an error naming it.
torch::nn::Module& module_at(torch::nn::Module& root, const std::string& path);

}  // namespace dmeval
