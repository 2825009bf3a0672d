// TinyDM's quantizers (the APQ-DM code base, spec tinydm.md §3-4): the per-output-channel weight
// quantizer without reconstruction, and the activation quantizer of a layer input that has its own
// range per sampler step index and input channel — a softmax mixture of 8 channel-group ranges whose
// assignment logits are learned. Every formula is evaluated in the reference's operation order, so
// that on one CPU thread the results are bit-identical to the reference (golden/tinydm).
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "generators/layers.h"

namespace dmeval {

constexpr int64_t kTinyDMGroups = 8;

// Group split of a vector of per-channel extremes (spec 4.6, `GroupWise_Quantizaion`): 8 equal-width
// bins between min and max (computed bounds; a value on a shared bound goes to the higher bin; the
// maximum may fall in no bin when the computed top bound rounds below it); each group's value is the
// min (kMin) or max (kMax) of its channels, or its upper bound when empty.
enum class GroupMode { kMin, kMax };
struct GroupSplit {
  torch::Tensor values;    // (8,) float32
  torch::Tensor marks;     // (C,) int64: bin 1..8, 0 = in no bin
  torch::Tensor assigned;  // (C,) float32: each channel's group value (0 where in no bin)
};
GroupSplit tinydm_group_split(const torch::Tensor& v, GroupMode mode);

// Weight grid (decision D4): as coded (step from the positive end, codes may exceed b bits, NaN for a
// channel without positive weights) or clamped to the signed b-bit range with a guarded step.
enum class TinyDMWeightGrid { kAsCoded, kClamped };

struct TinyDMWeightRange {
  torch::Tensor min, max;  // (C_out,) float32: min(0, min W_c), max(0, max W_c)
};
TinyDMWeightRange tinydm_weight_range(const torch::Tensor& weight);
// The fake-quantized weight (spec 3, literal clamp formula). `codes` receives round(clamped / step),
// `clamped` the clamp formula's result, `step` the per-channel step.
struct TinyDMWeightParts {
  torch::Tensor clamped, codes, step;
};
torch::Tensor tinydm_quantize_weight(const torch::Tensor& weight, const TinyDMWeightRange& range, int bits,
                                     TinyDMWeightGrid grid = TinyDMWeightGrid::kAsCoded,
                                     TinyDMWeightParts* parts = nullptr);

// Per-channel asymmetric fake quantizer of spec 4.3 with range [lo, hi] ((C,) or (1,) tensors): the
// input is viewed with the channel as the last axis, as the reference does.
struct TinyDMActParams {
  torch::Tensor lo, hi, scale, zero_point;
};
TinyDMActParams tinydm_act_params(const torch::Tensor& lo, const torch::Tensor& hi, int bits);
torch::Tensor tinydm_fake_quant(const torch::Tensor& x, const TinyDMActParams& p, int bits,
                                torch::Tensor* codes = nullptr);

// The activation quantizer state of one layer (spec 4.1) and its two forwards.
class TinyDMActQuantizer {
 public:
  TinyDMActQuantizer(int64_t steps, int64_t channels, int bits);

  int64_t steps() const { return groups_range.size(0); }
  int64_t channels() const { return alpha.size(2); }
  int bits() const { return bits_; }

  // Inference (spec 4.3): the range of step index k is the softmax mixture of its group ranges.
  torch::Tensor forward(const torch::Tensor& x, int64_t k, torch::Tensor* codes = nullptr);
  // The per-channel range lo/hi of step index k (spec 4.3, group order accumulation).
  std::pair<torch::Tensor, torch::Tensor> mixed_range(int64_t k) const;
  // Calibration mode (spec 4.4; with `search`, first the range search of 4.5): stores the group
  // ranges of step k and returns the mixture of the 8 group-quantized inputs, differentiable in the
  // logits of row k only.
  torch::Tensor calibrate(const torch::Tensor& x, int64_t k, bool search);
  // One calibration-mode evaluation with the range [init_min, init_max] (0-d tensors).
  torch::Tensor calibrate_with(const torch::Tensor& x, int64_t k, const torch::Tensor& init_min,
                               const torch::Tensor& init_max);
  // Drops cached inference ranges (after the state changed).
  void invalidate() { cache_.clear(); }

  torch::Tensor groups_range;                    // (S, 8, 2)
  torch::Tensor alpha;                           // (S, 8, C), requires grad during calibration
  torch::Tensor init_range_min, init_range_max;  // (S)
  std::vector<int> search_choice;                // per step index: winning shrink factor index (-1: none yet)
  // Verification seam of forward() (inference), as UniformQuantizer::input_tap: the layer-by-layer
  // golden test observes dmeval's input and substitutes the reference's recorded one.
  std::function<torch::Tensor(const torch::Tensor&)> input_tap;

 private:
  int bits_;
  std::vector<std::optional<TinyDMActParams>> cache_;
};

// What TinyDM puts around one layer: weight and input quantizers reading the step index of the call
// from the model's shared step counter.
class TinyDMLayer : public LayerQuantizer {
 public:
  TinyDMLayer(std::shared_ptr<int64_t> step, const torch::Tensor& weight, int weight_bits, int act_bits,
              int64_t steps, int64_t in_channels, TinyDMWeightGrid grid);
  torch::Tensor forward(const torch::Tensor& x, const LayerCall& call) override;

  bool calibrating = false, search = false;
  std::unique_ptr<TinyDMActQuantizer> act;  // none when activations stay float
  TinyDMWeightRange weight_range;
  int weight_bits = 32;  // 32: float weights
  TinyDMWeightGrid grid;
  void invalidate() {
    qweight_ = torch::Tensor();
    if (act) act->invalidate();
  }

 private:
  std::shared_ptr<int64_t> step_;
  torch::Tensor qweight_;  // cached fake-quantized weight
};

}  // namespace dmeval
