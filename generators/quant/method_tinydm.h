// TinyDM's calibration pieces that the golden tests drive directly (the methods themselves are in
// the registry as `tinydm`, `tinydm-b1`, `tinydm-attn`; spec tinydm.md §5-6).
#pragma once

#include <torch/types.h>

#include <memory>
#include <vector>

#include "generators/quant/quant_method.h"
#include "generators/quant/tinydm_quantizer.h"

namespace dmeval {

// Entropy score of every step index (spec 6.2): Σ_l H_l(j) / C_l − sample_weight · count(j), with
// H_l(j) the mean over groups of −Σ_c p log p of layer l's assignment at step j.
torch::Tensor tinydm_step_scores(const std::vector<const TinyDMActQuantizer*>& layers,
                                 const torch::Tensor& count, double sample_weight);
// The pick among step indices window_start .. S−1: the maximum score, ties to the largest index.
int64_t tinydm_select_step(const torch::Tensor& scores, int64_t window_start);

// Everything a calibration run computed, per round (golden comparisons, reports).
struct TinyDMTrace {
  std::vector<torch::Tensor> x_T, scores, calib_sets, loss_mse, loss_entropy, groups_range, init_range;
  std::vector<int64_t> picks;
  std::vector<torch::Tensor> loss_noise;          // every calibration step's e, all rounds in order
  std::vector<std::vector<torch::Tensor>> alpha;  // per round, per quantized layer (module order)
};

// Calibrates `tinydm` (attention = false) or `tinydm-attn` on ctx (settings as the method's), recording
// intermediates into `trace` when given.
std::unique_ptr<QuantizedModel> tinydm_calibrate(QuantContext& ctx, bool attention, TinyDMTrace* trace);

// Names of the layers TinyDM quantizes in a UNet (module order): the ResnetBlock 3x3 convolutions,
// plus the attention 1x1 convolutions with `attention`.
std::vector<std::string> tinydm_layer_names(const torch::nn::Module& network, bool attention);

// Model size under the conventions of spec D8 (bytes): the quantized weights at their bits, every
// other parameter float32, the weight ranges (min, max per output channel), the frozen activation
// ranges (lo, hi per step and input channel) or the activation state as trained (logits and group
// ranges), all float32.
struct TinyDMSize {
  int64_t layers = 0, quantized_weight_numel = 0, sum_in_channels = 0, sum_out_channels = 0;
  int64_t alpha_numel = 0, groups_range_numel = 0;
  double quantized_weight_bytes = 0, unquantized_fp32_bytes = 0, weight_range_bytes = 0;
  double collapsed_ranges_bytes = 0, state_as_trained_bytes = 0;
  double total_without_activation_state() const {
    return quantized_weight_bytes + unquantized_fp32_bytes + weight_range_bytes;
  }
};
TinyDMSize tinydm_size(const torch::nn::Module& network, int64_t steps, int weight_bits, bool attention);

}  // namespace dmeval
