// q-diffusion's quantizer parameter dicts (`weight_quant_params` / `act_quant_params` of the golden
// variants.json files) as dmeval's quantizer spec.
#pragma once

#include <nlohmann/json.hpp>

#include "generators/quant/uniform_quantizer.h"

namespace dmeval::test {

inline UniformQuantizerSpec qdiff_spec_from(const nlohmann::json& j) {
  UniformQuantizerSpec s;
  s.flavor = QuantFlavor::kQDiffusion;
  s.bits = j.at("n_bits");
  s.symmetric = j.value("symmetric", false);
  s.channel_wise = j.value("channel_wise", false);
  s.scale_method = j.value("scale_method", "max");
  s.leaf_param = j.value("leaf_param", false);
  s.always_zero = j.value("always_zero", false);
  return s;
}

}  // namespace dmeval::test
