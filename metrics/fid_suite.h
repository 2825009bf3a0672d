// The FID-family suite: FID, sFID, IS, precision and recall (k = 3), and on request KID, of generated
// images against a reference, with bootstrap noise of FID and IS and binomial noise of
// precision/recall for regression reports. One computation (fid_family_metrics) serves `dmeval run`
// (features persisted per chunk in a run folder: exact mergeable moments, so resumed, sharded and
// merged runs give the same numbers) and `dmeval score` (features from one pass over image files).
#pragma once

#include <torch/types.h>

#include <nlohmann/json.hpp>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "metrics/metric_suite.h"
#include "metrics/moments.h"
#include "metrics/reference_stats.h"

namespace dmeval {

// The generated side, however it was gathered; what a metric does not need may stay empty.
struct GeneratedFeatures {
  int64_t n = 0;
  std::optional<FeatureStats> pool, spatial;  // exact moments (FID, sFID)
  torch::Tensor pool_features;                // N x D (precision/recall, KID, FID bootstrap, exact route)
  torch::Tensor spatial_features;             // N x D_s (sFID's exact route only)
  torch::Tensor logits;                       // N x C (IS)
};

struct FidSuiteOptions {
  // Which metrics (fid, sfid, is, precision, recall, kid); empty: fid and is, sfid when the reference
  // has spatial statistics, precision and recall when it has per-image features.
  std::set<std::string> metrics;
  std::string suffix;  // metric-name suffix ("[shapes-net]"; "" for Inception)
  // What each tap is ("pool3 (2048)"), recorded with the metrics.
  std::string pool_desc, spatial_desc, logits_desc;
  int64_t bootstrap = 0;  // resamples for the FID/IS noise (0 or 1: none)
  bool adm = false;       // ADM's IS splits (else torch-fidelity's)
  // Small sets (N <= D) have singular covariances: when both sides' per-image features are given
  // (the generated side's and `ref_pool_features` / `ref_spatial_features`), the Fréchet distance of
  // a singular pair takes the exact cross-Gram route (frechet_distance_features).
  bool exact_small_sets = false;
  torch::Tensor ref_spatial_features;
};

// name + suffix -> {"value", and what produced it}, in the order fid, sfid, is, precision, recall, kid.
nlohmann::ordered_json fid_family_metrics(const GeneratedFeatures& gen, const ReferenceStats& reference,
                                          const FidSuiteOptions& options);

// A run folder's chunks as the suite's input.
struct FidSuiteInputs {
  std::string features_dir;  // chunks of "pool", "spatial", "logits"
  int64_t n = 0;             // generated images
  std::string provenance;    // the scoring network's; every chunk must carry it
  FidSuiteOptions options;   // metrics left empty: what the reference allows
};

// fid_family_metrics over a run folder: fid, sfid (when the reference has spatial statistics), is,
// and precision and recall (when it has per-image features).
nlohmann::ordered_json fid_family_scores(const FidSuiteInputs& in, const ReferenceStats& reference);

std::vector<MetricColumn> fid_family_columns(const std::string& suffix);

}  // namespace dmeval
