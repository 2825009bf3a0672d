// The papers' comparison tables, built from results (layouts by name) and rendered as Markdown,
// LaTeX (booktabs, best per group in bold), CSV, HTML or JSON. Empty cells stay visibly empty;
// a cell whose provenance (feature network, weights, preprocessing, compat, reference set)
// differs from the rest of its column is marked and footnoted, never shown silently.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "reports/published.h"
#include "reports/result_set.h"

namespace dmeval::reports {

struct Column {
  std::string header;  // as printed, e.g. "FID ↓"
  std::string metric;  // dmeval metric ("fid") or run field ("size_mb", "params_m", "flops_g")
  int better = 0;      // -1 lower is better, +1 higher, 0 no ranking
  int decimals = 2;
  double scale = 1;  // display = value * scale (precision as %)
};

struct Cell {
  std::optional<double> value;  // display units; nullopt = empty
  int mark = 0;                 // 1-based footnote mark, 0 = none
  bool best = false;
  std::optional<double> paper;  // published value (display units) with --with-paper
  bool paper_looked_up = false;
};

struct Row {
  std::vector<std::string> keys;
  std::vector<Cell> cells;
  int group = 0;  // rows of one group are compared for "best" and separated by rules
  int64_t run_id = 0;
  std::string dataset;
};

struct Table {
  std::string title;
  std::vector<std::string> key_headers;
  std::vector<Column> columns;
  std::vector<Row> rows;
  std::vector<std::string> footnotes;  // footnotes[k-1] explains mark k
  std::vector<std::string> notes;      // unmarked lines under the table (e.g. how sizes were counted)
};

struct TableOptions {
  std::string layout = "generic";
  bool with_paper = false;
  std::vector<PublishedValue> published;
  std::string paper_dataset;  // dataset name in the published table, for runs that record none
};

std::vector<std::string> table_layout_names();
std::vector<Table> build_tables(const std::vector<RunResult>& results, const TableOptions& options);

std::vector<std::string> table_format_names();  // md, latex, csv, html, json
std::string render_tables(const std::vector<Table>& tables, const std::string& format);
// A CSV field, quoted (RFC 4180) when it holds a comma, quote or newline.
std::string csv_field(const std::string& text);
// Text for HTML element content and attribute values (&, <, >, ").
std::string html_escape(const std::string& text);
// Footnote mark k as text ("†", "‡", ...), and in LaTeX.
std::string mark_symbol(int k);

}  // namespace dmeval::reports
