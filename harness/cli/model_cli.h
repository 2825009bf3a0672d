// What the generator commands (run, sample, bench, quantize) share: choosing the model (a family's
// preset or config file), loading and checking its weights, and describing both.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <string>

#include "generators/diffusion_model.h"
#include "harness/cli/option_table.h"

namespace dmeval::cli {

// The model options are the generators' ModelSpec (family, preset or config, weights).
using ModelOptions = ModelSpec;

// --family, --model, --config, --checkpoint, --random-weights, --no-ema, --allow-unknown-weights.
const OptionTable<ModelOptions>& model_option_table();
void add_model_options(CLI::App* cmd, ModelOptions& o);

// A loaded model of any family (generators/diffusion_model.h).
struct LoadedModel {
  std::shared_ptr<DiffusionModel> model;
  nlohmann::ordered_json describe() const { return model->describe(); }
  // What determines the model's outputs (architecture, schedule, weights' SHA-256, EMA): no paths.
  nlohmann::ordered_json identity() const { return model->identity(); }
  std::string weights_id() const { return model->weights_id(); }  // SHA-256, or "random:<seed>"
};

LoadedModel load_model(const ModelOptions& o);

}  // namespace dmeval::cli
