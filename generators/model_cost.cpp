#include "generators/model_cost.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <set>

#include "core/error.h"

namespace dmeval {

ParameterCounts count_parameters(const torch::nn::Module& model) {
  ParameterCounts c;
  std::set<const void*> layer_params;
  for (const LayerInfo& l : list_layers(model)) {
    ++c.num_layers;
    c.sum_out_channels += l.out_channels;
    int64_t w = 1;
    for (int64_t d : l.weight_shape) w *= d;
    c.layer_weights += w;
    c.layer_biases += l.out_channels;
    if (l.role == LayerRole::kFirstConv || l.role == LayerRole::kLastConv) {
      c.first_last_weights += w;
      c.sum_out_channels_first_last += l.out_channels;
    }
  }
  for (const auto& p : model.named_parameters(true)) c.total += p.value().numel();
  c.other = c.total - c.layer_weights - c.layer_biases;
  return c;
}

namespace {
struct ConventionName {
  SizeConvention c;
  const char* name;
};
constexpr ConventionName kConventions[] = {
    {SizeConvention::kAllParamsAtBits, "all_params_times_b"},
    {SizeConvention::kWeightsAtBitsRestFp32, "weights_b_rest_fp32"},
    {SizeConvention::kFirstLastFp32, "weights_b_first_last_fp32_rest_fp32"},
    {SizeConvention::kFirstLast8Bit, "weights_b_first_last_8bit_rest_fp32"},
};
}  // namespace

const char* size_convention_name(SizeConvention c) {
  for (const auto& e : kConventions)
    if (e.c == c) return e.name;
  return "?";
}

SizeConvention size_convention_from_name(const std::string& name) {
  std::string names;
  for (const auto& e : kConventions) {
    if (name == e.name) return e.c;
    names += (names.empty() ? "" : ", ") + std::string(e.name);
  }
  fail("unknown size convention '{}': one of {}", name, names);
}

const std::vector<SizeConvention>& size_conventions() {
  static const std::vector<SizeConvention> kAll = {
      SizeConvention::kAllParamsAtBits, SizeConvention::kWeightsAtBitsRestFp32,
      SizeConvention::kFirstLastFp32, SizeConvention::kFirstLast8Bit};
  return kAll;
}

const char* scale_overhead_name(ScaleOverhead o) {
  switch (o) {
    case ScaleOverhead::kNone: return "none";
    case ScaleOverhead::kFp32DeltaFp32Zero: return "channelwise_fp32_delta_fp32_zp";
    case ScaleOverhead::kFp32DeltaInt8Zero: return "channelwise_fp32_delta_int8_zp";
  }
  return "?";
}

double model_size_bytes(const ParameterCounts& c, double bits, SizeConvention convention,
                        ScaleOverhead overhead) {
  DMEVAL_CHECK(bits > 0 && bits <= 32, "weight bit width {} out of range (0, 32]", bits);
  const double b = bits / 8.0;
  const double rest_fp32 = 4.0 * static_cast<double>(c.layer_biases + c.other);
  const auto inner = static_cast<double>(c.layer_weights - c.first_last_weights);
  const auto first_last = static_cast<double>(c.first_last_weights);
  double bytes = 0;
  switch (convention) {
    case SizeConvention::kAllParamsAtBits: bytes = static_cast<double>(c.total) * b; break;
    case SizeConvention::kWeightsAtBitsRestFp32:
      bytes = static_cast<double>(c.layer_weights) * b + rest_fp32;
      break;
    case SizeConvention::kFirstLastFp32: bytes = inner * b + first_last * 4.0 + rest_fp32; break;
    case SizeConvention::kFirstLast8Bit: bytes = inner * b + first_last * 1.0 + rest_fp32; break;
  }
  switch (overhead) {
    case ScaleOverhead::kNone: break;
    case ScaleOverhead::kFp32DeltaFp32Zero: bytes += 8.0 * static_cast<double>(c.sum_out_channels); break;
    case ScaleOverhead::kFp32DeltaInt8Zero: bytes += 5.0 * static_cast<double>(c.sum_out_channels); break;
  }
  return bytes;
}

double model_size_bytes(const torch::nn::Module& model,
                        const std::function<double(const LayerInfo&)>& bits_of) {
  ParameterCounts c = count_parameters(model);
  double bytes = 4.0 * static_cast<double>(c.layer_biases + c.other);
  for (const LayerInfo& l : list_layers(model)) {
    int64_t w = 1;
    for (int64_t d : l.weight_shape) w *= d;
    const double bits = bits_of(l);
    DMEVAL_CHECK(bits > 0 && bits <= 32, "layer {}: weight bit width {} out of range (0, 32]", l.name, bits);
    bytes += static_cast<double>(w) * bits / 8.0;
  }
  return bytes;
}

MacCount count_macs(const std::function<void()>& forward) {
  MacCounter counter;
  torch::NoGradGuard no_grad;
  forward();
  return {counter.layers, counter.attention};
}

}  // namespace dmeval
