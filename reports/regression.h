// Regression reports between two runs: every aggregate metric, the model size and the latencies of
// the candidate against the baseline. A change counts as a regression only if it is worse than both
// the metric's threshold (max(abs, rel * |baseline|)) and the measurement noise
// (k * sqrt(noise_b^2 + noise_c^2): bootstrap over samples for FID/IS, binomial for precision and
// recall, the p10-p90 spread of repeats for latency). Metrics computed differently (another
// feature network, weights, preprocessing, compat or reference set) are not compared: they are
// reported as incomparable, and so is a metric the candidate lost; both fail the report.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "db/sqlite.h"

namespace dmeval::reports {

struct Threshold {
  double abs = 0;
  double rel = 0;  // fraction of |baseline|
};

struct RegressOptions {
  std::map<std::string, Threshold> thresholds;  // overrides of default_thresholds()
  double noise_k = 2.0;
};

// Sensible defaults per metric name ("fid", "psnr", "latency", "size_mb", ...).
const std::map<std::string, Threshold>& default_thresholds();
// "fid=0.5" (absolute) or "fid=2%" (relative) -> (name, threshold).
std::pair<std::string, Threshold> parse_threshold(const std::string& text);

enum class Verdict { kUnchanged, kImproved, kRegressed, kIncomparable, kMissing, kNew };
const char* verdict_name(Verdict v);

struct Comparison {
  std::string metric;  // "fid", "latency image b=1 (cuda)", "size_mb"
  std::string dataset;
  std::optional<double> baseline, candidate;
  double threshold = 0, noise = 0;
  bool noise_known = false;
  int better = 0;  // -1 lower is better, +1 higher
  Verdict verdict = Verdict::kUnchanged;
  std::string reason;
};

struct RegressReport {
  int64_t baseline = 0, candidate = 0;
  std::vector<Comparison> rows;
  bool failed() const;  // any regression, incomparable or missing metric
};

RegressReport compare_runs(db::Connection& c, int64_t baseline, int64_t candidate,
                           const RegressOptions& options);

// Two sweeps (all runs under two tags), cell by cell: runs pair up by method, bits, steps and sample
// count; a cell the candidate lacks fails the report.
struct SweepRegressReport {
  std::string baseline_tag, candidate_tag;
  struct Cell {
    std::string cell;
    RegressReport report;
  };
  std::vector<Cell> cells;
  std::vector<std::string> missing_cells, new_cells;
  bool failed() const;
};
SweepRegressReport compare_tags(db::Connection& c, const std::string& baseline_tag,
                                const std::string& candidate_tag, const RegressOptions& options);
std::string render_sweep_regress(const SweepRegressReport& report, const std::string& format);
std::string render_regress(const RegressReport& report, const std::string& format);  // md or html

}  // namespace dmeval::reports
