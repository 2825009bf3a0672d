// Configuration of the ddim UNet and its diffusion process, as the ermongroup/ddim YAML configs
// hold it (spec generators.md §1.1, §3). Built-in presets by name, or any ddim .yml file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "generators/diffusion_config.h"

namespace dmeval {

struct UNetConfig {
  std::string type = "simple";  // "simple" or "bayesian" (adds a `logvar` parameter of length T)
  int64_t ch = 128;
  int64_t out_ch = 3;
  std::vector<int64_t> ch_mult = {1, 2, 2, 2};
  int64_t num_res_blocks = 2;
  std::vector<int64_t> attn_resolutions = {16};
  double dropout = 0.1;
  int64_t in_channels = 3;
  int64_t resolution = 32;  // data.image_size
  bool resamp_with_conv = true;
  int64_t num_timesteps = 1000;  // diffusion.num_diffusion_timesteps (only for "bayesian")
};

struct ModelConfig {
  std::string name;    // preset name or the .yml path
  std::string source;  // "preset" or the file it was read from
  UNetConfig unet;
  DiffusionConfig diffusion;
  bool ema = true;
  double ema_rate = 0.9999;
  int64_t channels = 3;     // data.channels
  std::string dataset;      // data.dataset (+ category), informational
  std::string ddim_config;  // presets: the ermongroup/ddim config they reproduce ("configs/cifar10.yml")
};

// Presets with the values of ddim's configs/{cifar10,celeba,bedroom,church}.yml (and lsun_cat, which
// pytorch_diffusion ships with the LSUN network): cifar10, celeba, lsun_bedroom, lsun_church, lsun_cat.
const std::vector<std::string>& model_preset_names();
ModelConfig model_preset(const std::string& name);  // throws listing the presets
// Reads a ddim-style YAML config (sections data, model, diffusion); errors name the file and key.
ModelConfig read_ddim_yaml(const std::string& path);
// The same from text already in memory; `name` appears in errors.
ModelConfig parse_ddim_yaml(const std::string& text, const std::string& name);
// A preset name, or a path ending in .yml/.yaml.
ModelConfig resolve_model_config(const std::string& name_or_path);

// Canonical one-line description (recorded with results).
std::string describe(const ModelConfig& c);
// The same without the name and source: what determines the network and the schedule.
std::string describe_architecture(const ModelConfig& c);
// Checks structural constraints (channel counts divisible by 32 for GroupNorm, resolution divisible
// by 2^(levels-1), ...) and throws naming the field.
void validate(const ModelConfig& c);

}  // namespace dmeval
