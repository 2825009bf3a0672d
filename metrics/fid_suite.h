// The FID-family suite: FID, sFID, IS, precision and recall (k = 3) of generated images against a
// reference, from the scoring network's taps persisted per chunk in a run folder (exact mergeable
// moments, so resumed, sharded and merged runs give the same numbers), with bootstrap noise of FID and
// IS and binomial noise of precision/recall for regression reports.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "metrics/metric_suite.h"
#include "metrics/reference_stats.h"

namespace dmeval {

struct FidSuiteInputs {
  std::string features_dir;  // chunks of "pool", "spatial", "logits"
  int64_t n = 0;             // generated images
  std::string provenance;    // the scoring network's; every chunk must carry it
  std::string suffix;        // metric-name suffix ("[shapes-net]"; "" for Inception)
  // What each tap is ("pool3 (2048)"), recorded with the metrics.
  std::string pool_desc, spatial_desc, logits_desc;
  int64_t bootstrap = 0;  // resamples for the FID/IS noise (0 or 1: none)
  bool adm = false;       // ADM's IS splits (else torch-fidelity's)
};

// name -> {"value", ...} for fid, sfid (when the reference has spatial statistics), is, and precision
// and recall (when it has per-image features), each name + suffix.
nlohmann::ordered_json fid_family_scores(const FidSuiteInputs& in, const ReferenceStats& reference);

std::vector<MetricColumn> fid_family_columns(const std::string& suffix);

}  // namespace dmeval
