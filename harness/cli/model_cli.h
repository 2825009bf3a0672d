// What the generator commands (sample, bench latency; later run, quantize) share: choosing the
// model (preset or ddim .yml), loading and checking its weights, and describing both.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <string>

#include "generators/ddim_unet.h"
#include "generators/unet_config.h"
#include "generators/unet_weights.h"

namespace dmeval::cli {

struct ModelOptions {
  std::string model = "cifar10";  // preset name or ddim .yml (--model), or --config FILE.yml
  std::string config;
  std::string checkpoint;
  int64_t random_weights = -1;  // seed: PyTorch's default init instead of a checkpoint
  bool no_ema = false;
  bool allow_unknown = false;
};

void add_model_options(CLI::App* cmd, ModelOptions& o);

struct LoadedModel {
  ModelConfig config;
  DdimUNet unet{nullptr};
  UNetWeightsInfo weights;  // empty path for random weights
  int64_t random_seed = -1;
  nlohmann::ordered_json describe() const;
  // What determines the model's outputs (architecture, schedule, weights' SHA-256, EMA): no paths.
  nlohmann::ordered_json identity() const;
  std::string weights_id() const;  // SHA-256, or "random:<seed>"
};

LoadedModel load_model(const ModelOptions& o);

}  // namespace dmeval::cli
