// A latent-diffusion model as its LatentDiffusion config describes it (the `model:` tree of the
// configs/latent-diffusion/*.yaml files, or the same tree as JSON): the UNet, the VQ first stage, the
// conditioning stage (none or the class embedder), the schedule and the EMA flag. Presets carry the two
// released LDM-4 configs (spec ldm.md §1.3, §2, §3, §10): `lsun_bedrooms-ldm-vq-4` and `cin256-v2`.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace dmeval {

struct LdmUNetConfig {
  int64_t image_size = 64, in_channels = 3, out_channels = 3, model_channels = 224, num_res_blocks = 2;
  std::vector<int64_t> attention_resolutions = {8, 4, 2};  // downsampling factors
  std::vector<int64_t> channel_mult = {1, 2, 3, 4};
  int64_t num_heads = -1, num_head_channels = -1;
  bool use_spatial_transformer = false;
  int64_t transformer_depth = 1, context_dim = -1;
  bool legacy = true;
  double dropout = 0.0;  // training only
};

// The `params` of a `unet_config` block (the LDM YAML/JSON config's
// model.params.unet_config.params); unknown keys and unsupported options are errors naming `source`.
LdmUNetConfig ldm_unet_config_from_json(const nlohmann::json& params, const std::string& source);

struct VqDecoderConfig {
  int64_t embed_dim = 3, n_embed = 8192;
  int64_t z_channels = 3, resolution = 256, in_channels = 3, out_ch = 3, ch = 128, num_res_blocks = 2;
  std::vector<int64_t> ch_mult = {1, 2, 4};
  std::vector<int64_t> attn_resolutions;
};

// The `params` of a `first_stage_config` block (embed_dim, n_embed, ddconfig); errors name `source`.
VqDecoderConfig vq_decoder_config_from_json(const nlohmann::json& params, const std::string& source);

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
// The text of a config file (YAML, or JSON with `json`); errors name `source`.
LdmConfig parse_ldm_config_text(const std::string& text, const std::string& source, bool json);
// A preset name, or a .yaml/.yml/.json config file.
LdmConfig resolve_ldm_config(const std::string& name_or_path);
// Whether `path` is a config file holding a LatentDiffusion tree (read cheaply: its text names a
// unet_config and a first_stage_config).
bool looks_like_ldm_config(const std::string& path);
// What determines the model's outputs, as JSON (the UNet, first stage, conditioning, schedule).
nlohmann::ordered_json describe_ldm_config(const LdmConfig& c);
std::vector<std::string> ldm_preset_names();

}  // namespace dmeval
