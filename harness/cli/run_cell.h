// One table cell end to end (`dmeval run`), shared by `dmeval sweep` and `dmeval merge`.
//
// A cell's run folder holds everything its scores need, so that any process can finish it:
//   options.json    the resolved options (what `dmeval run --resume DIR` continues with)
//   .dmeval/        the chunk ledger (the run's identity, one record per committed chunk)
//   features/       the scoring network's features per committed chunk
//   cell.json       what the table row says besides the scores: method, bits, sampler, size,
//                   calibration, feature network, reference (path and SHA-256), latency
//   reference.npz   the reference statistics and features, when computed from images
// Scoring reads only this folder (and a reference file it names), never the model: `dmeval merge`
// scores shards made on other machines without their weights.
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
  std::string profile;  // "" = shapes when no model is given, none when one is
  ModelOptions model;
  QuantOptions quant;
  DbOptions db;
  SamplerSpec sampler;
  std::string ref, out, shard, save_samples, network = "shapes-net", network_weights, compat = "pytorch-fid",
                                             device = "cpu";
  int64_t samples = 1000, batch = 64, micro_batch = 8, chunk = 256, seed = 0, max_chunks = 0,
          latency_repeats = 5, e2e_repeats = 1, bootstrap = 20;
  int64_t feature_batch =
      0;  // images per feature-network pass; 0 = the network's (64 shapes-net, 50 Inception)
  bool json = false, quiet = false, no_db = false;
};

// The options of `dmeval run` (profile, model, method, sampler, reference, feature network, run
// folder, db, latency).
void add_run_cell_options(CLI::App* cmd, RunCellOptions& o);
// Fills what the command line left unset from the profile (`--profile`, or shapes when no model was
// given); a profile's files that are missing are named in one error. The profile's calibration
// budget for the method is applied by run_cell (a sweep runs several methods).
void resolve_run_options(const CLI::App& cmd, RunCellOptions& o);
// Where runs go when --out is not given: runs/<profile or model>.
std::string default_run_root(const RunCellOptions& o);
// The cell's folder name: <method>-W<w>A<a>-<steps>steps-n<N>[-seed<k>].
std::string cell_name(const RunCellOptions& o);

// Runs the cell; nullopt while chunks remain (this process's share is done: run again or the other
// shards), else the result (scores, size, latency, calibration, db run id).
std::optional<nlohmann::ordered_json> run_cell(const RunCellOptions& o);

// Scores a finished run folder and records it (db options as given; no db when `db` is null).
nlohmann::ordered_json score_run_folder(const std::string& dir, const DbOptions* db, bool quiet);

// The options saved in a run folder (for --resume and merge).
RunCellOptions read_run_options(const std::string& dir);

// The row as the tables print it (one line of Markdown with its header).
std::string format_cell_row(const nlohmann::ordered_json& result);

}  // namespace dmeval::cli
