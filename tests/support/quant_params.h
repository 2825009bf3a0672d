// The reference repositories' quantizer constructor arguments (q-diffusion's `weight_quant_params` /
// `act_quant_params` of the golden variants.json files, the quantizer cases' `ctor`) as dmeval's spec.
#pragma once

#include <nlohmann/json.hpp>

#include "generators/quant/uniform_quantizer.h"

namespace dmeval::test {

inline UniformQuantizerSpec uniform_spec_from(const nlohmann::json& j,
                                              QuantFlavor flavor = QuantFlavor::kQDiffusion) {
  UniformQuantizerSpec s;
  s.flavor = flavor;
  s.bits = j.at("n_bits");
  s.symmetric = j.value("symmetric", false);
  s.channel_wise = j.value("channel_wise", false);
  s.scale_method = j.value("scale_method", "max");
  s.leaf_param = j.value("leaf_param", false);
  s.always_zero = j.value("always_zero", false);
  return s;
}

}  // namespace dmeval::test
