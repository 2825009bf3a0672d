// What the golden_ldm_* tests share: reading the golden set's arrays and configs, the first stage
// loaded as the golden set stores it, and the two discrete comparisons of the LDM decode path expressed
// with numeric_checks' compare_codes — codebook indices (a difference allowed only where the two best
// codebook distances are within 1e-5 relative, spec ldm.md §12) and uint8 values of the reference
// scripts' truncating conversions (a difference allowed only where the float value lies within the
// decoded-image tolerance 1e-4 of a level boundary).
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <string>

#include "core/npy.h"
#include "core/torch_bridge.h"
#include "generators/ldm/ldm_config.h"
#include "generators/ldm/ldm_unet.h"
#include "generators/ldm/ldm_weights.h"
#include "generators/ldm/vq_decoder.h"
#include "tests/support/golden.h"
#include "tests/support/numeric_checks.h"

namespace dmeval::test {

inline torch::Tensor ldm_golden_array(const std::string& relative) {
  return to_torch(read_npy_file(golden_path("ldm/" + relative)));
}

inline nlohmann::json ldm_golden_config(const std::string& model) {
  return nlohmann::json::parse(read_text(golden_path("ldm/" + model + "/config.json")));
}

inline double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

// The shared first stage: `model`'s first_stage_config with decoder/first_stage.ckpt (decode path only).
inline VqFirstStage ldm_golden_first_stage(const std::string& model = "ldm_uncond") {
  const LdmConfig c = ldm_config_from_json(ldm_golden_config(model), model + "/config.json");
  VqFirstStage fs(c.first_stage);
  fs->eval();
  load_ldm_weights(*fs, golden_path("ldm/decoder/first_stage.ckpt"), "first_stage_model.",
                   {"encoder.", "quant_conv.", "loss."});
  return fs;
}

// dmeval's codebook indices of latents `z` against the reference's; the "distance to a tie" is the
// gap between the two best squared distances relative to the second.
inline CodeCheck compare_codebook_indices(VqFirstStage& fs, const torch::Tensor& z, const torch::Tensor& got,
                                          const torch::Tensor& want) {
  const torch::Tensor& e = fs->codebook->weight;
  torch::Tensor flat = z.permute({0, 2, 3, 1}).reshape({-1, z.size(1)}).to(torch::kFloat64);
  torch::Tensor d = (flat.unsqueeze(1) - e.to(torch::kFloat64).unsqueeze(0)).square().sum(2);
  torch::Tensor best2 = std::get<0>(d.topk(2, 1, /*largest=*/false));
  torch::Tensor gap = (best2.select(1, 1) - best2.select(1, 0)) / best2.select(1, 1).abs().clamp_min(1e-300);
  return compare_codes(got.reshape({-1}), want.reshape({-1}).to(torch::kLong), gap, torch::tensor(1e-5));
}

// uint8 values (B, H, W, 3) of a truncating conversion of `images` (B, 3, H, W) against the
// reference's; the distance is the float level's distance to the nearest integer, in image units.
inline CodeCheck compare_ldm_uint8(const torch::Tensor& got, const torch::Tensor& want,
                                   const torch::Tensor& images, const std::string& conversion) {
  // "ptqd" first maps to [0, 1], which halves the slope of the level in the image value.
  const bool ptqd = conversion == "ptqd";
  torch::Tensor pre = ptqd ? torch::clamp((images + 1) / 2, 0, 1) : images;
  torch::Tensor level = ((pre.to(torch::kFloat64) + 1) * 127.5).permute({0, 2, 3, 1});
  torch::Tensor distance = (level - level.round()).abs() / (ptqd ? 63.75 : 127.5);
  return compare_codes(got, want, distance, torch::tensor(1e-4));
}

}  // namespace dmeval::test
