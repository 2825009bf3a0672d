// Metric suites by name (Faiss-style registry): what `dmeval run` scores a run with, each declaring
// the sink outputs (feature taps) it reads, the metrics it returns and the columns of the row the
// tables print. A suite returns generic metric rows — name -> {"value", and what produced it:
// "features", "route", "std", "noise", "k", "scheme" ...} — that db/ records and reports/ print
// whatever they are.
//
//   fid-family  FID, sFID, IS, precision and recall of generated images against a reference, on a
//               scoring network's pool / spatial / logits taps (fid_suite.h)
//   paired-sr   PSNR, SSIM (BasicSR) and LPIPS over (SR, HR) image pairs (paired_suite.h)
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace dmeval {

// One column of a suite's table row.
struct MetricColumn {
  std::string metric;  // key in the suite's metrics object ("fid[shapes-net]")
  std::string header;  // "FID[shapes-net] ↓"
  int digits = 2;
};

struct MetricSuite {
  std::string name, description;
  std::vector<std::string> taps;     // sink outputs it reads ("pool", "spatial", "logits"; "images")
  std::vector<std::string> metrics;  // base names of what it returns ("fid", "sfid", ...)
  // The row's columns; `suffix` names the scoring network when it is not the papers' ("[shapes-net]").
  std::vector<MetricColumn> (*columns)(const std::string& suffix) = nullptr;
};

const std::vector<MetricSuite>& metric_suites();
const MetricSuite& metric_suite(const std::string& name);  // throws listing the suites
std::vector<std::string> metric_suite_names();

// A row of `columns` as Markdown (header, rule, values; "–" for a metric absent from `metrics`).
std::string markdown_row(const std::vector<std::pair<std::string, std::string>>& leading,
                         const std::vector<MetricColumn>& columns, const nlohmann::ordered_json& values);

}  // namespace dmeval
