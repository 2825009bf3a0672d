// One table cell end to end (`dmeval run`), shared by `dmeval sweep`.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "generators/samplers.h"
#include "harness/cli/db_cli.h"
#include "harness/cli/model_cli.h"
#include "harness/cli/quant_cli.h"

namespace dmeval::cli {

struct RunCellOptions {
  ModelOptions model;
  QuantOptions quant;
  DbOptions db;
  SamplerSpec sampler;
  std::string ref, out, shard, save_samples, network = "shapes-net",
                                             network_weights = "profiles/shapes/shapes-net.safetensors";
  int64_t samples = 1000, batch = 64, micro_batch = 8, chunk = 256, seed = 0, max_chunks = 0,
          latency_repeats = 5;
  bool json = false, quiet = false;
};

// The options of `dmeval run` (model, method, sampler, reference, feature network, run folder, db).
void add_run_cell_options(CLI::App* cmd, RunCellOptions& o);
// Runs the cell; nullopt while chunks remain (this process's share is done: run again or the other
// shards), else the result (scores, size, latency, calibration, db run id).
std::optional<nlohmann::ordered_json> run_cell(const RunCellOptions& o);

}  // namespace dmeval::cli
