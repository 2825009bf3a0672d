// One self-contained HTML file: tables, plots and sample grids (PNG inlined as data: URIs), and a
// regression summary. No external resources, so it can be mailed or archived as it is.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "reports/regression.h"
#include "reports/table.h"

namespace dmeval::reports {

struct HtmlFigure {
  std::string caption;
  std::string png_path;  // read and inlined
};

struct HtmlReport {
  std::string title = "dmeval report";
  std::string subtitle;  // provenance line: database, time, dmeval version
  std::vector<Table> tables;
  std::vector<HtmlFigure> plots;
  std::vector<HtmlFigure> grids;
  std::optional<RegressReport> regression;
};

std::string render_html_report(const HtmlReport& report);
std::string base64(const std::string& bytes);

}  // namespace dmeval::reports
