// A latent-diffusion model as its LatentDiffusion config describes it (the `model:` tree of the
// configs/latent-diffusion/*.yaml files, or the same tree as JSON): the UNet, the VQ first stage, the
// conditioning stage (none or the class embedder), the schedule and the EMA flag. Presets carry the two
// released LDM-4 configs (spec ldm.md §1.3, §2, §3, §10): `lsun_bedrooms-ldm-vq-4` and `cin256-v2`.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "generators/ldm/ldm_unet.h"
#include "generators/ldm/vq_decoder.h"

namespace dmeval {

struct LdmConfig {
  std::string name, source;
  std::string dataset = "unknown (a config file)";
  LdmUNetConfig unet;
  VqDecoderConfig first_stage;
  int64_t n_classes = 0, class_embed_dim = 0;  // class embedder (0: unconditional)
  double linear_start = 0.0015, linear_end = 0.0195;
  int64_t timesteps = 1000;
  bool use_ema = false;
  double scale_factor = 1.0;
};

// The LatentDiffusion tree ({"target": ..., "params": {...}}, or {"model": that}); errors name `source`
// and the key.
LdmConfig ldm_config_from_json(const nlohmann::json& tree, const std::string& source);
// A preset name, or a .yaml/.yml/.json config file.
LdmConfig resolve_ldm_config(const std::string& name_or_path);
// Whether `path` is a config file holding a LatentDiffusion tree (read cheaply: its text names a
// unet_config and a first_stage_config).
bool looks_like_ldm_config(const std::string& path);
// What determines the model's outputs, as JSON (the UNet, first stage, conditioning, schedule).
nlohmann::ordered_json describe_ldm_config(const LdmConfig& c);
std::vector<std::string> ldm_preset_names();

}  // namespace dmeval
