// The options of one table cell (`dmeval run`, and each cell of `dmeval sweep`), declared once in
// run_option_table(): the command-line binding, the run folder's options.json and the keys a profile
// file may set all come from it. Values are layered defaults -> profile -> command line, and the
// source of every effective value is recorded with the run (options.json "sources").
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <map>
#include <string>

#include "harness/cli/db_cli.h"
#include "harness/cli/generation_cli.h"

namespace dmeval::cli {

struct RunCellOptions : GenerationOptions {
  std::string profile;  // "" = shapes when no model is given, none when one is
  DbOptions db;
  std::string ref, out, shard, save_samples, network = "shapes-net", network_weights, compat = "pytorch-fid";
  int64_t max_chunks = 0, latency_repeats = 5, e2e_repeats = 1, bootstrap = 20;
  int64_t feature_batch =
      0;  // images per feature-network pass; 0 = the network's (64 shapes-net, 50 Inception)
  bool json = false, quiet = false, no_db = false;
  // Where each effective value came from ("default", "profile NAME (FILE)", "command line"); filled by
  // resolve_run_options, recorded in options.json and cell.json.
  std::map<std::string, std::string> sources;

  RunCellOptions();  // the cell defaults: 1000 samples, chunks of 256
};

const OptionTable<RunCellOptions>& run_option_table();

// The options of `dmeval run` (profile, model, method, sampler, reference, feature network, run
// folder, db, latency).
void add_run_cell_options(CLI::App* cmd, RunCellOptions& o);
// Layers the options: defaults, then the profile's (`--profile`, or shapes when no model was given),
// then what the command line gave. A profile's files that are missing are named in one error. The
// profile's calibration budget for the method is applied by run_cell (a sweep runs several methods).
void resolve_run_options(const CLI::App& cmd, RunCellOptions& o);
// Where runs go when --out is not given: runs/<profile or model>.
std::string default_run_root(const RunCellOptions& o);
// The cell's folder name: <method>-W<w>A<a>-<steps>steps-n<N>[-<sampler>][-seed<k>].
std::string cell_name(const RunCellOptions& o);

// options.json: {"dmeval_run_options": 2, "options": {key: value}, "sources": {key: source}}.
nlohmann::ordered_json run_options_to_json(const RunCellOptions& o);
// Reads it back (also the nested layout of earlier versions); errors name `where` and the key.
RunCellOptions run_options_from_json(const nlohmann::json& j, const std::string& where);
// The options saved in a run folder (for --resume and merge).
RunCellOptions read_run_options(const std::string& dir);

}  // namespace dmeval::cli
