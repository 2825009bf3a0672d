// Published numbers (reports/published/paper-results.json, converted from the papers' tables with
// their sources; users may pass their own file in the same format) and how a measured cell finds
// its published counterpart.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace dmeval::reports {

struct PublishedValue {
  std::string paper, table, dataset, model, sampler, method, metric, fid_tool, note;
  std::optional<int64_t> steps, w_bits, a_bits, n_samples;
  double value = 0;
};

// Reads a published-results JSON file ({"rows": [...]}); errors name the file and the row.
std::vector<PublishedValue> load_published(const std::string& path);
// The file shipped with dmeval: $DMEVAL_PUBLISHED, else reports/published/paper-results.json next
// to the sources (the build records where), else the installed share folder.
std::string default_published_path();

// The published metric name and scale for a dmeval metric ("precision" -> "Precision", x100).
struct PublishedName {
  std::string metric;
  double scale = 1;
};
std::optional<PublishedName> published_name(const std::string& dmeval_metric);

// Same method (case-insensitive; "fp" also matches "FP", "Full Prec."), bits, steps and dataset
// (case-insensitive; empty dataset matches any). Returns the first match.
const PublishedValue* find_published(const std::vector<PublishedValue>& table, const std::string& method,
                                     std::optional<int64_t> w_bits, std::optional<int64_t> a_bits,
                                     std::optional<int64_t> steps, const std::string& dataset,
                                     const std::string& published_metric);

}  // namespace dmeval::reports
