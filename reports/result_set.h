// What the reports read from the results database: finished runs with their configuration, model
// size and aggregate metrics (per-item values are left out), each metric with its provenance.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "db/sqlite.h"

namespace dmeval::reports {

struct MetricValue {
  std::optional<double> value;  // nullopt: undefined
  std::optional<double> std, noise;
  std::optional<int64_t> n;
  std::string dataset;
  // What produced it; cells of one column must agree on this to be comparable.
  std::string feature_network, weights_sha256, mode, compat, reference_sha256;
  std::string provenance_key() const;
};

struct RunResult {
  int64_t id = 0;
  std::string tag, started_at, git_revision;
  std::string method, sampler, model;
  std::optional<int64_t> w_bits, a_bits, steps, samples, params;
  std::optional<double> size_mb, flops;
  std::optional<double> bops;  // binary operations per network pass (binarized cells: OPs = BOPs/64 + FLOPs)
  std::string size_counting;   // how size_mb was counted ("" when not recorded)
  // Calibration settings that departed from the method's defaults, "key=value, ..." in recorded order
  // ("" when none or not recorded); tables state them under the table, per method.
  std::string calibration_changes;
  // Trained methods (BinaryDM, its baselines): (step, mean loss over the log interval) of the training.
  std::vector<std::pair<int64_t, double>> training_curve;
  std::map<std::string, MetricValue> metrics;  // by metric name ("fid", "psnr", ...), one dataset
  std::string dataset;                         // of the metrics ("" when not recorded)
};

struct ResultFilter {
  std::string tag, method, dataset, bits;  // bits "4/8"
  std::optional<int64_t> steps;
  std::vector<int64_t> runs;  // explicit run ids (then no "latest per setting" reduction)
};

// One RunResult per (run, dataset); unless `runs` is given, only the latest finished run per
// (method, bits, steps, dataset) is kept, so a rerun replaces its predecessor in the tables.
std::vector<RunResult> load_results(db::Connection& c, const ResultFilter& filter);

}  // namespace dmeval::reports
