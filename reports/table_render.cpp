// Rendering of report tables: Markdown, LaTeX (booktabs), CSV, HTML and JSON.
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "reports/table.h"

namespace dmeval::reports {

namespace {

constexpr const char* kEmpty = "–";  // a visibly empty cell (never 0)

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string signed_fixed(double v, int decimals) {
  std::string s = fixed(v, decimals);
  return v >= 0 ? "+" + s : s;
}

// Value plus, with --with-paper, "(paper P, ±D)" or "(paper –)".
std::string cell_text(const Cell& c, const Column& col, const std::string& empty) {
  if (!c.value) return empty;
  std::string s = fixed(*c.value, col.decimals);
  if (c.paper)
    s += " (paper " + fixed(*c.paper, col.decimals) + ", " + signed_fixed(*c.value - *c.paper, col.decimals) +
         ")";
  return s;
}

std::string latex_escape(const std::string& s) {
  std::string o;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (s.compare(i, 3, "↓") == 0) {
      o += "$\\downarrow$";
      i += 2;
    } else if (s.compare(i, 3, "↑") == 0) {
      o += "$\\uparrow$";
      i += 2;
    } else if (s.compare(i, 3, "–") == 0) {
      o += "--";
      i += 2;
    } else if (c == '&' || c == '%' || c == '$' || c == '#' || c == '_' || c == '{' || c == '}') {
      o += std::string("\\") + c;
    } else {
      o += c;
    }
  }
  return o;
}

std::string latex_mark(int k) {
  static const char* kMarks[] = {"\\dag", "\\ddag", "\\S", "\\P", "\\|"};
  return k >= 1 && k <= 5 ? std::string("\\textsuperscript{") + kMarks[k - 1] + "}"
                          : "\\textsuperscript{" + std::to_string(k) + "}";
}

}  // namespace

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

namespace {

// "FID ↓" -> "FID" for CSV headers (plain ASCII for spreadsheets and scripts).
std::string plain_header(const std::string& h) {
  std::string o = h;
  for (const char* arrow : {" ↓", " ↑"}) {
    auto p = o.find(arrow);
    if (p != std::string::npos) o.erase(p, std::string(arrow).size());
  }
  return o;
}

std::string render_md(const std::vector<Table>& tables) {
  std::string out;
  for (const Table& t : tables) {
    if (!t.title.empty()) out += "### " + t.title + "\n\n";
    std::string head = "|", rule = "|";
    for (const auto& k : t.key_headers) head += " " + k + " |", rule += "---|";
    for (const auto& c : t.columns) head += " " + c.header + " |", rule += "---:|";
    out += head + "\n" + rule + "\n";
    for (const Row& r : t.rows) {
      std::string line = "|";
      for (const auto& k : r.keys) line += " " + (k.empty() ? std::string(kEmpty) : k) + " |";
      for (size_t c = 0; c < r.cells.size(); ++c) {
        const Cell& cell = r.cells[c];
        std::string s = cell_text(cell, t.columns[c], kEmpty);
        if (cell.best) s = "**" + s + "**";
        if (cell.mark) s += mark_symbol(cell.mark);
        line += " " + s + " |";
      }
      out += line + "\n";
    }
    if (!t.footnotes.empty()) {
      out += "\n";
      for (size_t i = 0; i < t.footnotes.size(); ++i)
        out += mark_symbol(static_cast<int>(i + 1)) + " " + t.footnotes[i] + "\n";
    }
    if (!t.notes.empty()) {
      out += "\n";
      for (const auto& n : t.notes) out += n + "\n";
    }
    out += "\n";
  }
  return out;
}

std::string render_latex(const std::vector<Table>& tables) {
  std::string out = "% needs \\usepackage{booktabs}\n";
  for (const Table& t : tables) {
    if (!t.title.empty()) out += "% " + latex_escape(t.title) + "\n";
    std::string spec(t.key_headers.size(), 'l');
    spec += std::string(t.columns.size(), 'r');
    out += "\\begin{tabular}{" + spec + "}\n\\toprule\n";
    std::string head;
    for (const auto& k : t.key_headers) head += (head.empty() ? "" : " & ") + latex_escape(k);
    for (const auto& c : t.columns) head += " & " + latex_escape(c.header);
    out += head + " \\\\\n\\midrule\n";
    for (size_t i = 0; i < t.rows.size(); ++i) {
      const Row& r = t.rows[i];
      if (i > 0 && r.group != t.rows[i - 1].group) out += "\\midrule\n";
      std::string line;
      for (size_t k = 0; k < r.keys.size(); ++k)
        line += (k ? " & " : "") + latex_escape(r.keys[k].empty() ? kEmpty : r.keys[k]);
      for (size_t c = 0; c < r.cells.size(); ++c) {
        const Cell& cell = r.cells[c];
        std::string s = latex_escape(cell_text(cell, t.columns[c], kEmpty));
        if (cell.best) s = "\\textbf{" + s + "}";
        if (cell.mark) s += latex_mark(cell.mark);
        line += " & " + s;
      }
      out += line + " \\\\\n";
    }
    out += "\\bottomrule\n\\end{tabular}\n";
    for (size_t i = 0; i < t.footnotes.size(); ++i)
      out += "{\\footnotesize " + latex_mark(static_cast<int>(i + 1)) + " " + latex_escape(t.footnotes[i]) +
             "\\par}\n";
    for (const auto& n : t.notes) out += "{\\footnotesize " + latex_escape(n) + "\\par}\n";
    out += "\n";
  }
  return out;
}

std::string render_csv(const std::vector<Table>& tables) {
  if (tables.empty()) return "";
  // One header for all tables (a layout's tables share their columns). A "(paper)" column follows
  // every column for which any cell of any table looked a published value up, so rows stay aligned.
  const Table& first = tables.front();
  std::vector<bool> paper_col(first.columns.size(), false);
  for (const Table& t : tables)
    for (const Row& r : t.rows)
      for (size_t c = 0; c < r.cells.size() && c < paper_col.size(); ++c)
        paper_col[c] = paper_col[c] || r.cells[c].paper_looked_up;
  std::string out = "table";
  for (const auto& k : first.key_headers) out += "," + csv_field(k);
  for (size_t c = 0; c < first.columns.size(); ++c) {
    out += "," + csv_field(plain_header(first.columns[c].header));
    if (paper_col[c]) out += "," + csv_field(plain_header(first.columns[c].header) + " (paper)");
  }
  out += ",notes\n";
  for (const Table& t : tables) {
    for (const Row& r : t.rows) {
      std::string line = csv_field(t.title);
      for (const auto& k : r.keys) line += "," + csv_field(k);
      std::string notes;
      for (size_t c = 0; c < r.cells.size(); ++c) {
        const Cell& cell = r.cells[c];
        line += "," + (cell.value ? fixed(*cell.value, t.columns[c].decimals) : std::string());
        if (c < paper_col.size() && paper_col[c])
          line += "," + (cell.paper ? fixed(*cell.paper, t.columns[c].decimals) : std::string());
        if (cell.mark && notes.find(t.footnotes[cell.mark - 1]) == std::string::npos)
          notes += (notes.empty() ? "" : "; ") + t.footnotes[cell.mark - 1];
      }
      for (const auto& n : t.notes) notes += (notes.empty() ? "" : "; ") + n;  // CSV rows stand alone
      out += line + "," + csv_field(notes) + "\n";
    }
  }
  return out;
}

std::string render_html(const std::vector<Table>& tables) {
  std::string out;
  for (const Table& t : tables) {
    out += "<table class=\"dmeval-table\">\n";
    if (!t.title.empty()) out += "<caption>" + html_escape(t.title) + "</caption>\n";
    out += "<thead><tr>";
    for (const auto& k : t.key_headers) out += "<th>" + html_escape(k) + "</th>";
    for (const auto& c : t.columns) out += "<th>" + html_escape(c.header) + "</th>";
    out += "</tr></thead>\n<tbody>\n";
    for (size_t i = 0; i < t.rows.size(); ++i) {
      const Row& r = t.rows[i];
      const bool new_group = i > 0 && r.group != t.rows[i - 1].group;
      out += new_group ? "<tr class=\"group-start\">" : "<tr>";
      for (const auto& k : r.keys) out += "<td>" + html_escape(k.empty() ? kEmpty : k) + "</td>";
      for (size_t c = 0; c < r.cells.size(); ++c) {
        const Cell& cell = r.cells[c];
        std::string s = html_escape(cell_text(cell, t.columns[c], kEmpty));
        if (cell.best) s = "<b>" + s + "</b>";
        if (cell.mark) s += "<sup>" + mark_symbol(cell.mark) + "</sup>";
        out += std::string(cell.value ? "<td class=\"num\">" : "<td class=\"empty\">") + s + "</td>";
      }
      out += "</tr>\n";
    }
    out += "</tbody>\n</table>\n";
    if (!t.footnotes.empty()) {
      out += "<ul class=\"footnotes\">\n";
      for (size_t i = 0; i < t.footnotes.size(); ++i)
        out += "<li>" + mark_symbol(static_cast<int>(i + 1)) + " " + html_escape(t.footnotes[i]) + "</li>\n";
      out += "</ul>\n";
    }
    for (const auto& n : t.notes) out += "<p class=\"footnotes\">" + html_escape(n) + "</p>\n";
  }
  return out;
}

std::string render_json(const std::vector<Table>& tables) {
  nlohmann::ordered_json a = nlohmann::ordered_json::array();
  for (const Table& t : tables) {
    nlohmann::ordered_json jt;
    jt["title"] = t.title;
    jt["key_headers"] = t.key_headers;
    nlohmann::ordered_json cols = nlohmann::ordered_json::array();
    for (const auto& c : t.columns)
      cols.push_back({{"header", c.header}, {"metric", c.metric}, {"better", c.better}, {"scale", c.scale}});
    jt["columns"] = cols;
    nlohmann::ordered_json rows = nlohmann::ordered_json::array();
    for (const Row& r : t.rows) {
      nlohmann::ordered_json jr = {{"run", r.run_id}, {"keys", r.keys}, {"group", r.group}};
      nlohmann::ordered_json cells = nlohmann::ordered_json::array();
      for (const Cell& c : r.cells) {
        nlohmann::ordered_json jc = {{"value", c.value ? nlohmann::ordered_json(*c.value) : nullptr}};
        if (c.best) jc["best"] = true;
        if (c.mark) jc["footnote"] = c.mark;
        if (c.paper_looked_up) jc["paper"] = c.paper ? nlohmann::ordered_json(*c.paper) : nullptr;
        cells.push_back(jc);
      }
      jr["cells"] = cells;
      rows.push_back(jr);
    }
    jt["rows"] = rows;
    jt["footnotes"] = t.footnotes;
    if (!t.notes.empty()) jt["notes"] = t.notes;
    a.push_back(jt);
  }
  return a.dump(2) + "\n";
}

}  // namespace

std::string html_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

std::vector<std::string> table_format_names() {
  return {"md", "latex", "csv", "html", "json"};
}

std::string render_tables(const std::vector<Table>& tables, const std::string& format) {
  if (format == "md") return render_md(tables);
  if (format == "latex") return render_latex(tables);
  if (format == "csv") return render_csv(tables);
  if (format == "html") return render_html(tables);
  if (format == "json") return render_json(tables);
  fail("unknown table format '{}' (md, latex, csv, html, json)", format);
}

}  // namespace dmeval::reports
