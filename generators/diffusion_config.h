// The diffusion process as the model configs state it (ddim YAML `diffusion:`, LDM `params:`).
// Free of libtorch, so the config readers build without it (the fuzz targets).
#pragma once

#include <cstdint>
#include <string>

namespace dmeval {

struct DiffusionConfig {
  std::string beta_schedule = "linear";  // linear | quad | const | jsd | sigmoid
  double beta_start = 0.0001;
  double beta_end = 0.02;
  int64_t num_timesteps = 1000;
  std::string var_type = "fixedlarge";  // recorded; not used by the DDIM/DDPM step functions
};

}  // namespace dmeval
