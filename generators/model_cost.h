// Cost accounting of a UNet: parameter counts, the papers' "Size (MB)" under each storage convention
// (spec generators.md §7; golden model_facts/size_accounting.json), and MACs per forward.
#pragma once

#include <torch/nn/module.h>
#include <torch/types.h>

#include <functional>
#include <string>
#include <vector>

#include "generators/layers.h"

namespace dmeval {

struct ParameterCounts {
  int64_t total = 0;
  int64_t layer_weights = 0;       // Conv2d / Linear weights
  int64_t layer_biases = 0;        // Conv2d / Linear biases
  int64_t other = 0;               // everything else (GroupNorm affine, logvar, ...)
  int64_t first_last_weights = 0;  // weights of the first and last convolution
  int64_t num_layers = 0;          // Conv2d + Linear
  int64_t sum_out_channels = 0;    // over all layers = number of per-channel scales
  int64_t sum_out_channels_first_last = 0;
};
ParameterCounts count_parameters(const torch::nn::Module& model);

// How a quantized model's bytes are counted. The papers do not say which they use, so every size
// dmeval reports names its convention; the default is kWeightsAtBitsRestFp32.
enum class SizeConvention {
  kAllParamsAtBits,        // all_params_times_b: every parameter at b bits (the naive figure)
  kWeightsAtBitsRestFp32,  // weights_b_rest_fp32: Conv/Linear weights at b bits, biases and norms fp32
  kFirstLastFp32,          // weights_b_first_last_fp32_rest_fp32: same, first/last conv weights fp32
  kFirstLast8Bit,          // weights_b_first_last_8bit_rest_fp32: same, first/last conv weights 8-bit
};
const char* size_convention_name(SizeConvention c);
SizeConvention size_convention_from_name(const std::string& name);
const std::vector<SizeConvention>& size_conventions();

// Per-output-channel scale storage added on top (channel-wise quantizers).
enum class ScaleOverhead { kNone, kFp32DeltaFp32Zero, kFp32DeltaInt8Zero };
const char* scale_overhead_name(ScaleOverhead o);

// Bytes for weights at `bits` (32 = float) under the convention, plus the scale overhead.
double model_size_bytes(const ParameterCounts& counts, double bits, SizeConvention convention,
                        ScaleOverhead overhead = ScaleOverhead::kNone);

// Bytes for an arbitrary per-layer assignment: bits_of(layer) for each Conv/Linear weight (32 = float),
// biases and all other parameters in float32 (the per-method rules of the quantization methods).
double model_size_bytes(const torch::nn::Module& model,
                        const std::function<double(const LayerInfo&)>& bits_of);

struct MacCount {
  int64_t layers = 0, attention = 0;
  int64_t total() const { return layers + attention; }
};
// MACs of one forward at batch 1 (per image and denoising step), counted while running `forward`.
MacCount count_macs(const std::function<void()>& forward);

}  // namespace dmeval
