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

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "harness/cli/run_options.h"

namespace dmeval::cli {

// Runs the cell; nullopt while chunks remain (this process's share is done: run again or the other
// shards), else the result (scores, size, latency, calibration, db run id).
std::optional<nlohmann::ordered_json> run_cell(const RunCellOptions& o);

// Scores a finished run folder and records it (db options as given; no db when `db` is null).
nlohmann::ordered_json score_run_folder(const std::string& dir, const DbOptions* db, bool quiet);

// The row as the tables print it (one line of Markdown with its header).
std::string format_cell_row(const nlohmann::ordered_json& result);

}  // namespace dmeval::cli
