#include "reports/table.h"

#include <algorithm>
#include <cctype>
#include <functional>
#include <map>
#include <set>

#include "core/error.h"

namespace dmeval::reports {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Methods in the order the quantization papers print them, with their printed names.
struct MethodName {
  const char* key;
  const char* printed;
};
const MethodName kMethodOrder[] = {{"fp", "FP"},
                                   {"baseline", "Baseline (min-max)"},
                                   {"q-diffusion", "Q-Diffusion"},
                                   {"ptqd", "PTQD"},
                                   {"ptq4dm", "PTQ4DM"},
                                   {"tinydm", "TinyDM"},
                                   {"tinydm-b1", "TinyDM (64×1 calibration)"},
                                   // not a published method: labelled as dmeval's own construction
                                   {"tinydm-attn", "TinyDM+attn (dmeval construction)"},
                                   // the BinaryDM tables' rows, in their order
                                   {"lsq", "LSQ"},
                                   {"binary-baseline", "Baseline"},
                                   {"binarydm", "BinaryDM"}};

int method_rank(const std::string& m) {
  const std::string l = lower(m);
  for (size_t i = 0; i < std::size(kMethodOrder); ++i)
    if (l == kMethodOrder[i].key || (l == "qdiffusion" && std::string(kMethodOrder[i].key) == "q-diffusion"))
      return static_cast<int>(i);
  return static_cast<int>(std::size(kMethodOrder));
}

std::string method_printed(const std::string& m) {
  const int r = method_rank(m);
  return r < static_cast<int>(std::size(kMethodOrder)) ? kMethodOrder[r].printed : m;
}

std::string bits_text(const RunResult& r) {
  if (!r.w_bits || !r.a_bits) return "";
  return std::to_string(*r.w_bits) + "/" + std::to_string(*r.a_bits);
}

std::optional<double> raw_value(const RunResult& r, const std::string& metric) {
  if (metric == "size_mb") return r.size_mb;
  if (metric == "params_m") return r.params ? std::optional<double>(*r.params / 1e6) : std::nullopt;
  if (metric == "flops_g") return r.flops ? std::optional<double>(*r.flops / 1e9) : std::nullopt;
  if (metric == "ops_g")  // the binarization papers' OPs = BOPs/64 + FLOPs
    return r.flops ? std::optional<double>((r.bops.value_or(0) / 64.0 + *r.flops) / 1e9) : std::nullopt;
  auto it = r.metrics.find(metric);
  return it == r.metrics.end() ? std::nullopt : it->second.value;
}

const MetricValue* metric_of(const RunResult& r, const std::string& metric) {
  auto it = r.metrics.find(metric);
  return it == r.metrics.end() ? nullptr : &it->second;
}

struct Layout {
  const char* name;
  std::function<std::vector<Table>(const std::vector<RunResult>&)> build;
};

// Rows from runs; `keys` gives a run's key cells, `group_of` its group (keys that group rows).
Table make_table(const std::string& title, std::vector<std::string> key_headers, std::vector<Column> columns,
                 std::vector<const RunResult*> runs,
                 const std::function<std::vector<std::string>(const RunResult&)>& keys,
                 const std::function<std::string(const RunResult&)>& group_of) {
  Table t;
  t.title = title;
  t.key_headers = std::move(key_headers);
  t.columns = std::move(columns);
  std::map<std::string, int> groups;
  for (const RunResult* r : runs) {
    Row row;
    row.keys = keys(*r);
    row.run_id = r->id;
    row.dataset = r->dataset;
    const std::string g = group_of(*r);
    row.group = groups.emplace(g, static_cast<int>(groups.size())).first->second;
    for (const Column& c : t.columns) {
      Cell cell;
      if (auto v = raw_value(*r, c.metric)) cell.value = *v * c.scale;
      row.cells.push_back(cell);
    }
    t.rows.push_back(row);
  }
  return t;
}

// The TinyDM table's columns; `suffix` names a feature network other than Inception ("[shapes-net]"),
// whose figures get their own table under their own names.
std::vector<Column> tinydm_columns(const std::string& suffix) {
  return {{"Size (MB)", "size_mb", 0, 2, 1},
          {"FID" + suffix + " ↓", "fid" + suffix, -1, 2, 1},
          {"sFID" + suffix + " ↓", "sfid" + suffix, -1, 2, 1},
          {"IS" + suffix + " ↑", "is" + suffix, +1, 2, 1},
          {"Precision" + suffix + " ↑", "precision" + suffix, +1, 2, 100}};
}

// "[shapes-net]" of "fid[shapes-net]"; "" for the Inception names.
std::string network_suffix(const std::string& metric) {
  const size_t open = metric.find('[');
  return open == std::string::npos || metric.back() != ']' ? std::string() : metric.substr(open);
}

std::vector<Table> tinydm_layout_one(const std::vector<RunResult>& results, const std::string& dataset_title);

// TinyDM's tables are per dataset (its ImageNet and LSUN-Bedrooms LDM-4 tables): one set per dataset,
// titled with it when there are several, so figures of different datasets never share a column.
std::vector<Table> tinydm_layout(const std::vector<RunResult>& results) {
  std::vector<std::string> order;
  std::map<std::string, std::vector<RunResult>> by_dataset;
  for (const auto& r : results) {
    if (!by_dataset.count(r.dataset)) order.push_back(r.dataset);
    by_dataset[r.dataset].push_back(r);
  }
  if (order.size() <= 1) return tinydm_layout_one(results, "");
  std::vector<Table> out;
  for (const auto& d : order)
    for (Table& t : tinydm_layout_one(by_dataset[d], d.empty() ? "(dataset not recorded)" : d))
      out.push_back(std::move(t));
  return out;
}

std::vector<Table> tinydm_layout_one(const std::vector<RunResult>& results,
                                     const std::string& dataset_title) {
  static const char* kColumns[] = {"fid", "sfid", "is", "precision"};
  // One table per feature network found (Inception first), each holding the runs scored with it.
  std::vector<std::string> suffixes;
  for (const auto& r : results)
    for (const auto& [name, v] : r.metrics) {
      const std::string sfx = network_suffix(name);
      const std::string base = name.substr(0, name.size() - sfx.size());
      if (std::find(std::begin(kColumns), std::end(kColumns), base) == std::end(kColumns)) continue;
      if (std::find(suffixes.begin(), suffixes.end(), sfx) == suffixes.end()) suffixes.push_back(sfx);
    }
  std::sort(suffixes.begin(), suffixes.end());
  if (suffixes.empty()) suffixes.push_back("");
  auto steps = [](const RunResult& r) { return r.steps ? std::to_string(*r.steps) : std::string(); };
  std::vector<Table> tables;
  for (const auto& sfx : suffixes) {
    std::vector<const RunResult*> runs;
    for (const auto& r : results) {
      bool has = false;
      for (const char* c : kColumns) has |= r.metrics.count(c + sfx) > 0;
      if (has || (suffixes.size() == 1 && r.metrics.empty())) runs.push_back(&r);
    }
    std::stable_sort(runs.begin(), runs.end(), [](const RunResult* a, const RunResult* b) {
      auto s = [](const RunResult* r) { return r->steps.value_or(0); };
      if (s(a) != s(b)) return s(a) < s(b);
      auto w = [](const RunResult* r) {
        return std::make_pair(r->w_bits.value_or(0), r->a_bits.value_or(0));
      };
      if (w(a) != w(b)) return w(a) > w(b);  // FP (32/32) first, then fewer bits
      if (method_rank(a->method) != method_rank(b->method))
        return method_rank(a->method) < method_rank(b->method);
      return a->method < b->method;
    });
    std::string title = sfx.empty() || suffixes.size() == 1 ? std::string()
                                                            : "Scored with " + sfx.substr(1, sfx.size() - 2) +
                                                                  " (not comparable with Inception figures)";
    if (!dataset_title.empty()) title = title.empty() ? dataset_title : dataset_title + ": " + title;
    tables.push_back(make_table(
        title, {"Timesteps", "Bit-width (W/A)", "Method"}, tinydm_columns(sfx), runs,
        [&](const RunResult& r) {
          return std::vector<std::string>{steps(r), bits_text(r), method_printed(r.method)};
        },
        [&](const RunResult& r) { return steps(r) + "|" + bits_text(r); }));
  }
  return tables;
}

std::vector<Table> sr_layout(const std::vector<RunResult>& results) {
  std::map<std::string, std::vector<const RunResult*>> by_dataset;
  std::vector<std::string> order;
  for (const auto& r : results) {
    if (!by_dataset.count(r.dataset)) order.push_back(r.dataset);
    by_dataset[r.dataset].push_back(&r);
  }
  std::vector<Table> out;
  for (const auto& d : order) {
    std::vector<Column> cols = {{"Params (M)", "params_m", 0, 2, 1},
                                {"FLOPs (G)", "flops_g", 0, 2, 1},
                                {"PSNR", "psnr", +1, 2, 1},
                                {"SSIM", "ssim", +1, 4, 1},
                                {"LPIPS", "lpips", -1, 4, 1}};
    out.push_back(make_table(
        d.empty() ? "(no dataset recorded)" : d, {"Method"}, cols, by_dataset[d],
        [](const RunResult& r) { return std::vector<std::string>{method_printed(r.method)}; },
        [](const RunResult&) { return std::string("all"); }));
  }
  return out;
}

// The BinaryDM tables (Method, #Bits W/A, Size, OPs, FID, sFID, IS, Precision): one per dataset and
// feature network, FP first, then per activation width LSQ, Baseline, BinaryDM.
std::vector<Table> binarydm_layout(const std::vector<RunResult>& results) {
  std::vector<Table> out;
  for (Table& t : tinydm_layout(results)) {
    // tinydm_layout's table, re-keyed: drop the Timesteps key (kept in the title when several), add OPs.
    Table b;
    b.title = t.title;
    b.key_headers = {"Method", "#Bits W/A"};
    b.columns.push_back(t.columns.at(0));
    b.columns.push_back({"OPs (G)", "ops_g", 0, 2, 1});
    for (size_t c = 1; c < t.columns.size(); ++c) b.columns.push_back(t.columns[c]);
    std::set<std::string> steps;
    for (const Row& row : t.rows) steps.insert(row.keys.at(0));
    std::vector<Row> rows;
    for (const Row& row : t.rows) {
      Row r = row;
      const RunResult* run = nullptr;
      for (const auto& x : results)
        if (x.id == row.run_id && x.dataset == row.dataset) run = &x;
      r.keys = {row.keys.at(2) + (steps.size() > 1 ? " (" + row.keys.at(0) + " steps)" : ""), row.keys.at(1)};
      r.cells.insert(r.cells.begin() + 1, Cell{});
      if (run)
        if (auto v = raw_value(*run, "ops_g")) r.cells[1].value = *v;
      r.group = run && run->a_bits ? static_cast<int>(*run->a_bits) : 0;
      rows.push_back(r);
    }
    std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.group > b.group; });
    b.rows = rows;
    b.notes.push_back(
        "OPs (G): per network pass at batch 1, OPs = BOPs/64 + FLOPs — binary (1-bit weight) MACs counted as "
        "BOPs, float layers and attention matrix products as FLOPs (MACs); quantized LSQ weights as b BOPs "
        "per "
        "MAC (spec binarydm.md §9)");
    out.push_back(std::move(b));
  }
  return out;
}

std::vector<Table> generic_layout(const std::vector<RunResult>& results) {
  static const char* kKnown[] = {"fid", "sfid", "is", "precision", "recall", "kid", "psnr", "ssim", "lpips"};
  std::vector<std::string> names;
  for (const char* k : kKnown)
    for (const auto& r : results)
      if (r.metrics.count(k)) {
        names.push_back(k);
        break;
      }
  for (const auto& r : results)
    for (const auto& [k, v] : r.metrics)
      if (std::find(names.begin(), names.end(), k) == names.end()) names.push_back(k);
  std::vector<Column> cols;
  bool any_size = false;
  for (const auto& r : results) any_size |= r.size_mb.has_value();
  if (any_size) cols.push_back({"Size (MB)", "size_mb", 0, 2, 1});
  for (const auto& n : names) cols.push_back({n, n, 0, 4, 1});
  std::vector<const RunResult*> runs;
  for (const auto& r : results) runs.push_back(&r);
  auto opt = [](const std::optional<int64_t>& v) { return v ? std::to_string(*v) : std::string(); };
  return {make_table(
      "", {"Run", "Tag", "Method", "W/A", "Steps", "Dataset"}, cols, runs,
      [&](const RunResult& r) {
        return std::vector<std::string>{std::to_string(r.id), r.tag,        r.method,
                                        bits_text(r),         opt(r.steps), r.dataset};
      },
      [](const RunResult& r) { return std::to_string(r.id); })};
}

const std::vector<Layout>& layouts() {
  static const std::vector<Layout> kLayouts = {{"tinydm", tinydm_layout},
                                               {"binarydm", binarydm_layout},
                                               {"sr", sr_layout},
                                               {"generic", generic_layout}};
  return kLayouts;
}

// What differs between two provenance records, in words.
std::string describe_difference(const MetricValue& cell, const MetricValue& column) {
  std::vector<std::string> parts;
  auto cmp = [&](const std::string& what, const std::string& a, const std::string& b, bool hash) {
    if (a == b) return;
    auto show = [&](const std::string& v) {
      if (v.empty()) return std::string("(not recorded)");
      return hash ? v.substr(0, 12) : v;
    };
    parts.push_back(what + " " + show(a) + " instead of " + show(b));
  };
  cmp("feature network", cell.feature_network, column.feature_network, false);
  cmp("weights", cell.weights_sha256, column.weights_sha256, true);
  cmp("preprocessing/conventions", cell.mode, column.mode, false);
  cmp("compat", cell.compat, column.compat, false);
  cmp("reference set", cell.reference_sha256, column.reference_sha256, true);
  std::string s;
  for (size_t i = 0; i < parts.size(); ++i) s += (i ? "; " : "") + parts[i];
  return s;
}

// Marks cells whose provenance is not their column's (the most common one) and adds footnotes.
void mark_incomparable(Table& t, const std::vector<const RunResult*>& runs) {
  for (size_t c = 0; c < t.columns.size(); ++c) {
    std::map<std::string, int> counts;
    std::map<std::string, const MetricValue*> example;
    for (const RunResult* r : runs)
      if (const MetricValue* m = metric_of(*r, t.columns[c].metric); m && m->value) {
        ++counts[m->provenance_key()];
        example.emplace(m->provenance_key(), m);
      }
    if (counts.size() < 2) continue;
    std::string majority;
    int best = -1;
    for (const auto& [k, n] : counts)
      if (n > best) best = n, majority = k;
    for (size_t i = 0; i < runs.size(); ++i) {
      const MetricValue* m = metric_of(*runs[i], t.columns[c].metric);
      if (!m || !m->value || m->provenance_key() == majority) continue;
      // One footnote per run and difference, shared by that run's cells in every column it affects.
      const std::string note = t.rows[i].keys.back() + " (run " + std::to_string(runs[i]->id) +
                               ") was computed differently from the rest of its column: " +
                               describe_difference(*m, *example[majority]);
      auto it = std::find(t.footnotes.begin(), t.footnotes.end(), note);
      if (it == t.footnotes.end()) it = t.footnotes.insert(t.footnotes.end(), note);
      t.rows[i].cells[c].mark = static_cast<int>(it - t.footnotes.begin()) + 1;
    }
  }
}

// Sizes are comparable only when counted the same way (which weights at which bits, scales or not):
// the convention of the column is stated under the table, and cells counted otherwise are marked.
void note_size_counting(Table& t, const std::vector<const RunResult*>& runs) {
  for (size_t c = 0; c < t.columns.size(); ++c) {
    if (t.columns[c].metric != "size_mb") continue;
    std::map<std::string, int> counts;
    for (const RunResult* r : runs)
      if (r && r->size_mb) ++counts[r->size_counting];
    if (counts.empty() || (counts.size() == 1 && counts.begin()->first.empty())) continue;
    std::string majority;
    int best = -1;
    for (const auto& [k, n] : counts)
      if (n > best) best = n, majority = k;
    t.notes.push_back(t.columns[c].header + ": " + (majority.empty() ? "counting not recorded" : majority));
    for (size_t i = 0; i < runs.size(); ++i) {
      if (!runs[i] || !runs[i]->size_mb || runs[i]->size_counting == majority) continue;
      const std::string& own = runs[i]->size_counting;
      const std::string note = t.rows[i].keys.back() + " (run " + std::to_string(runs[i]->id) +
                               "): size counted as " + (own.empty() ? "(not recorded)" : own) +
                               " instead of " + (majority.empty() ? "(not recorded)" : majority);
      auto it = std::find(t.footnotes.begin(), t.footnotes.end(), note);
      if (it == t.footnotes.end()) it = t.footnotes.insert(t.footnotes.end(), note);
      t.rows[i].cells[c].mark = static_cast<int>(it - t.footnotes.begin()) + 1;
    }
  }
}

// A method's calibration settings change what its row measures (reduced budgets, trajectories on the
// evaluation sampler, a reference quirk turned off): each method's departures from its defaults are
// stated under the table, with the bit widths they apply to.
void note_calibration_changes(Table& t, const std::vector<const RunResult*>& runs) {
  struct Note {
    std::string method, changes;
    std::vector<std::string> bits;
  };
  std::vector<Note> notes;  // first-seen order
  for (const RunResult* r : runs) {
    if (!r || r->calibration_changes.empty()) continue;
    const std::string method = method_printed(r->method);
    auto it = std::find_if(notes.begin(), notes.end(), [&](const Note& n) {
      return n.method == method && n.changes == r->calibration_changes;
    });
    if (it == notes.end()) it = notes.insert(notes.end(), {method, r->calibration_changes, {}});
    const std::string bits = r->w_bits && r->a_bits ? bits_text(*r) : std::string("bits not recorded");
    if (std::find(it->bits.begin(), it->bits.end(), bits) == it->bits.end()) it->bits.push_back(bits);
  }
  for (const Note& n : notes) {
    std::string bits;
    for (const auto& b : n.bits) bits += (bits.empty() ? "" : ", ") + b;
    t.notes.push_back(n.method + " (" + bits +
                      ") calibrated with settings changed from the method's defaults: " + n.changes);
  }
}

void mark_best(Table& t) {
  for (size_t c = 0; c < t.columns.size(); ++c) {
    if (t.columns[c].better == 0) continue;
    std::map<int, std::vector<size_t>> groups;
    for (size_t i = 0; i < t.rows.size(); ++i)
      if (t.rows[i].cells[c].value && t.rows[i].cells[c].mark == 0) groups[t.rows[i].group].push_back(i);
    for (auto& [g, idx] : groups) {
      if (idx.size() < 2) continue;
      double best = t.rows[idx[0]].cells[c].value.value();
      for (size_t i : idx) {
        double v = *t.rows[i].cells[c].value;
        if (t.columns[c].better < 0 ? v < best : v > best) best = v;
      }
      for (size_t i : idx)
        if (*t.rows[i].cells[c].value == best) t.rows[i].cells[c].best = true;
    }
  }
}

}  // namespace

std::vector<std::string> table_layout_names() {
  std::vector<std::string> n;
  for (const auto& l : layouts()) n.push_back(l.name);
  return n;
}

std::vector<Table> build_tables(const std::vector<RunResult>& results, const TableOptions& o) {
  const Layout* layout = nullptr;
  for (const auto& l : layouts())
    if (o.layout == l.name) layout = &l;
  if (!layout) fail("unknown table layout '{}'", o.layout);
  std::vector<Table> tables = layout->build(results);
  // The BinaryDM tables' "Baseline" is the binarized baseline: their published rows come from that paper.
  const bool bdm = o.layout == "binarydm";
  std::vector<PublishedValue> published;
  for (const auto& p : o.published)
    if (!bdm || p.paper.find("BinaryDM") != std::string::npos) published.push_back(p);
  for (Table& t : tables) {
    // The run behind each row.
    std::vector<const RunResult*> runs;
    for (const Row& row : t.rows) {
      const RunResult* found = nullptr;
      for (const auto& r : results)
        if (r.id == row.run_id && r.dataset == row.dataset) found = &r;
      runs.push_back(found);
    }
    mark_incomparable(t, runs);
    note_size_counting(t, runs);
    note_calibration_changes(t, runs);
    mark_best(t);
    if (o.with_paper) {
      for (size_t i = 0; i < t.rows.size(); ++i) {
        const RunResult* r = runs[i];
        if (!r) continue;
        const std::string dataset = r->dataset.empty() ? o.paper_dataset : r->dataset;
        for (size_t c = 0; c < t.columns.size(); ++c) {
          auto pn = published_name(t.columns[c].metric);
          if (!pn || !t.rows[i].cells[c].value) continue;
          t.rows[i].cells[c].paper_looked_up = true;
          if (const PublishedValue* p =
                  find_published(published, bdm && r->method == "binary-baseline" ? "baseline" : r->method,
                                 r->w_bits, r->a_bits, r->steps, dataset, pn->metric))
            t.rows[i].cells[c].paper = p->value;
        }
      }
    }
  }
  return tables;
}

std::string mark_symbol(int k) {
  static const char* kMarks[] = {"†", "‡", "§", "¶", "‖"};
  if (k >= 1 && k <= 5) return kMarks[k - 1];
  return "[" + std::to_string(k) + "]";
}

}  // namespace dmeval::reports
