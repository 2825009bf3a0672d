#include "metrics/metric_suite.h"

#include <fmt/format.h>

#include "core/error.h"
#include "metrics/fid_suite.h"

namespace dmeval {

namespace {
std::vector<MetricColumn> paired_columns(const std::string&) {
  return {{"psnr", "PSNR ↑", 2}, {"ssim", "SSIM ↑", 4}, {"lpips", "LPIPS ↓", 4}};
}
}  // namespace

const std::vector<MetricSuite>& metric_suites() {
  static const std::vector<MetricSuite> kSuites = {
      {"fid-family",
       "FID, sFID, IS, precision/recall (k = 3) against a reference, on a scoring network's taps",
       {"pool", "spatial", "logits"},
       {"fid", "sfid", "is", "precision", "recall"},
       &fid_family_columns},
      {"paired-sr",
       "PSNR and SSIM (BasicSR conventions) and LPIPS over (SR, HR) pairs",
       {"images"},
       {"psnr", "ssim", "lpips"},
       &paired_columns},
  };
  return kSuites;
}

std::vector<std::string> metric_suite_names() {
  std::vector<std::string> n;
  for (const auto& s : metric_suites()) n.push_back(s.name);
  return n;
}

const MetricSuite& metric_suite(const std::string& name) {
  for (const auto& s : metric_suites())
    if (s.name == name) return s;
  fail("unknown metric suite '{}' (suites: {})", name, fmt::join(metric_suite_names(), ", "));
}

std::string markdown_row(const std::vector<std::pair<std::string, std::string>>& leading,
                         const std::vector<MetricColumn>& columns, const nlohmann::ordered_json& values) {
  std::string header = "|", rule = "|", row = "|";
  for (const auto& [h, v] : leading) {
    header += " " + h + " |";
    rule += "---|";
    row += " " + v + " |";
  }
  for (const auto& c : columns) {
    header += " " + c.header + " |";
    rule += "---|";
    const bool have = values.contains(c.metric) && values[c.metric].is_number();
    row += " " +
           (have ? fmt::format("{:.{}f}", values[c.metric].get<double>(), c.digits) : std::string("–")) +
           " |";
  }
  return header + "\n" + rule + "\n" + row + "\n";
}

}  // namespace dmeval
