#include "reports/regression.h"

#include "reports/result_set.h"

#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "reports/result_set.h"
#include "reports/table.h"

namespace dmeval::reports {

namespace {

int direction(const std::string& metric) {
  static const char* kHigher[] = {"is", "precision", "recall", "psnr", "ssim"};
  for (const char* h : kHigher)
    if (metric == h) return +1;
  return -1;  // fid, sfid, kid, lpips, size, latency: lower is better
}

struct Measured {
  std::optional<double> value, noise;
  std::string provenance;
};

// (metric key, dataset) -> measured value, for one run.
std::map<std::pair<std::string, std::string>, Measured> measure(db::Connection& c, int64_t run) {
  std::map<std::pair<std::string, std::string>, Measured> out;
  {
    db::Statement q(
        c,
        "SELECT m.name, coalesce(m.dataset, ''), m.value, m.noise, coalesce(m.feature_network, '') || '|' "
        "|| coalesce(m.weights_sha256, '') || '|' || coalesce(m.mode, '') || '|' || coalesce(m.compat, "
        "'') || '|' || coalesce(rs.sha256, '') FROM metrics m LEFT JOIN reference_sets rs ON rs.id = "
        "m.reference_set_id WHERE m.run_id = ? AND m.item IS NULL");
    q.bind(1, run);
    while (q.step()) {
      Measured m;
      if (!q.is_null(2)) m.value = q.real(2);
      if (!q.is_null(3)) m.noise = q.real(3);
      m.provenance = q.text(4);
      out[{q.text(0), q.text(1)}] = m;
    }
  }
  {
    db::Statement q(c, "SELECT size_mb FROM model_sizes WHERE run_id = ? AND size_mb IS NOT NULL");
    q.bind(1, run);
    if (q.step()) out[{"size_mb", ""}] = Measured{q.real(0), 0.0, "size"};
  }
  {
    db::Statement q(
        c,
        "SELECT scope, coalesce(batch, 0), coalesce(device, ''), median_ms, p10_ms, p90_ms FROM latencies "
        "WHERE run_id = ? AND median_ms IS NOT NULL");
    q.bind(1, run);
    while (q.step()) {
      Measured m;
      m.value = q.real(3);
      // The p10-p90 range of a normal distribution spans 2.563 standard deviations.
      if (!q.is_null(4) && !q.is_null(5)) m.noise = (q.real(5) - q.real(4)) / 2.563;
      m.provenance = "latency|" + q.text(2);
      out[{"latency " + q.text(0) + " b=" + std::to_string(q.int64(1)) + " (" + q.text(2) + ")", ""}] = m;
    }
  }
  return out;
}

std::string fmt(std::optional<double> v) {
  if (!v) return "–";
  char b[32];
  std::snprintf(b, sizeof b, "%.6g", *v);
  return b;
}

}  // namespace

const std::map<std::string, Threshold>& default_thresholds() {
  static const std::map<std::string, Threshold> kDefaults = {
      {"fid", {0, 0.02}},       {"sfid", {0, 0.02}},    {"is", {0, 0.02}},      {"kid", {0.001, 0}},
      {"precision", {0.01, 0}}, {"recall", {0.01, 0}},  {"psnr", {0.01, 0}},    {"ssim", {0.0005, 0}},
      {"lpips", {0.002, 0}},    {"size_mb", {0.01, 0}}, {"latency", {0, 0.05}},
  };
  return kDefaults;
}

std::pair<std::string, Threshold> parse_threshold(const std::string& text) {
  const auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size())
    fail("--threshold '{}': expected NAME=VALUE or NAME=PERCENT%, e.g. fid=0.5 or fid=2%", text);
  const std::string name = text.substr(0, eq);
  std::string v = text.substr(eq + 1);
  const bool rel = v.back() == '%';
  if (rel) v.pop_back();
  double x = 0;
  try {
    size_t used = 0;
    x = std::stod(v, &used);
    if (used != v.size() || x < 0) throw std::invalid_argument(v);
  } catch (const std::exception&) {
    fail("--threshold '{}': '{}' is not a non-negative number", text, v);
  }
  Threshold t;
  (rel ? t.rel : t.abs) = rel ? x / 100 : x;
  return {name, t};
}

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::kUnchanged: return "unchanged";
    case Verdict::kImproved: return "improved";
    case Verdict::kRegressed: return "REGRESSED";
    case Verdict::kIncomparable: return "INCOMPARABLE";
    case Verdict::kMissing: return "MISSING";
    case Verdict::kNew: return "new";
  }
  return "?";
}

bool RegressReport::failed() const {
  for (const auto& r : rows)
    if (r.verdict == Verdict::kRegressed || r.verdict == Verdict::kIncomparable ||
        r.verdict == Verdict::kMissing)
      return true;
  return false;
}

RegressReport compare_runs(db::Connection& c, int64_t baseline, int64_t candidate, const RegressOptions& o) {
  RegressReport rep;
  rep.baseline = baseline;
  rep.candidate = candidate;
  auto base = measure(c, baseline), cand = measure(c, candidate);
  std::vector<std::pair<std::string, std::string>> keys;
  for (const auto& [k, v] : base) keys.push_back(k);
  for (const auto& [k, v] : cand)
    if (!base.count(k)) keys.push_back(k);
  for (const auto& key : keys) {
    Comparison cmp;
    cmp.metric = key.first;
    cmp.dataset = key.second;
    // "fid[shapes-net]" has fid's direction and threshold.
    const std::string family =
        key.first.rfind("latency", 0) == 0 ? "latency" : key.first.substr(0, key.first.find('['));
    cmp.better = direction(family);
    auto b = base.find(key), n = cand.find(key);
    if (b != base.end()) cmp.baseline = b->second.value;
    if (n != cand.end()) cmp.candidate = n->second.value;
    Threshold th = default_thresholds().count(family) ? default_thresholds().at(family) : Threshold{0, 0.02};
    if (o.thresholds.count(family)) th = o.thresholds.at(family);
    if (b == base.end()) {
      cmp.verdict = Verdict::kNew;
      cmp.reason = "not in the baseline";
    } else if (n == cand.end() || !cmp.candidate) {
      cmp.verdict = Verdict::kMissing;
      cmp.reason = "the candidate has no value";
    } else if (b->second.provenance != n->second.provenance) {
      cmp.verdict = Verdict::kIncomparable;
      cmp.reason = "computed differently (feature network, weights, preprocessing, compat or reference set)";
    } else if (!cmp.baseline) {
      cmp.verdict = Verdict::kNew;
      cmp.reason = "the baseline has no value";
    } else {
      cmp.threshold = std::max(th.abs, th.rel * std::abs(*cmp.baseline));
      const double nb = b->second.noise.value_or(0), nc = n->second.noise.value_or(0);
      cmp.noise_known = b->second.noise.has_value() || n->second.noise.has_value();
      cmp.noise = o.noise_k * std::sqrt(nb * nb + nc * nc);
      const double worse = (*cmp.candidate - *cmp.baseline) * -cmp.better;  // > 0: worse
      const double limit = std::max(cmp.threshold, cmp.noise);
      if (worse > limit) {
        cmp.verdict = Verdict::kRegressed;
      } else if (-worse > limit) {
        cmp.verdict = Verdict::kImproved;
      }
      char why[160];
      std::snprintf(why, sizeof why, "change %+.4g; threshold %.4g, noise %s", *cmp.candidate - *cmp.baseline,
                    cmp.threshold, cmp.noise_known ? fmt(cmp.noise).c_str() : "not estimated");
      cmp.reason = why;
    }
    rep.rows.push_back(cmp);
  }
  return rep;
}

bool SweepRegressReport::failed() const {
  if (!missing_cells.empty()) return true;
  for (const auto& c : cells)
    if (c.report.failed()) return true;
  return false;
}

SweepRegressReport compare_tags(db::Connection& c, const std::string& baseline_tag,
                                const std::string& candidate_tag, const RegressOptions& o) {
  auto key = [](const RunResult& r) {
    std::string k = r.method;
    if (r.w_bits && r.a_bits) k += " W" + std::to_string(*r.w_bits) + "A" + std::to_string(*r.a_bits);
    if (r.steps) k += ", " + std::to_string(*r.steps) + " steps";
    if (r.samples) k += ", N=" + std::to_string(*r.samples);
    return k;
  };
  auto runs_of = [&](const std::string& tag) {
    ResultFilter f;
    f.tag = tag;
    std::map<std::string, int64_t> by_cell;  // the latest finished run per cell
    for (const auto& r : load_results(c, f)) {
      auto& id = by_cell[key(r)];
      id = std::max(id, r.id);
    }
    return by_cell;
  };
  const auto base = runs_of(baseline_tag), cand = runs_of(candidate_tag);
  if (base.empty()) fail("no finished runs under the baseline tag '{}'", baseline_tag);
  if (cand.empty()) fail("no finished runs under the candidate tag '{}'", candidate_tag);
  SweepRegressReport rep;
  rep.baseline_tag = baseline_tag;
  rep.candidate_tag = candidate_tag;
  for (const auto& [cell, id] : base) {
    auto it = cand.find(cell);
    if (it == cand.end()) {
      rep.missing_cells.push_back(cell);
      continue;
    }
    rep.cells.push_back({cell, compare_runs(c, id, it->second, o)});
  }
  for (const auto& [cell, id] : cand)
    if (!base.count(cell)) rep.new_cells.push_back(cell);
  return rep;
}

std::string render_sweep_regress(const SweepRegressReport& r, const std::string& format) {
  const std::string verdict = r.failed() ? "FAIL" : "PASS";
  auto cell_verdict = [](const RegressReport& rep) { return rep.failed() ? "FAIL" : "PASS"; };
  if (format == "md") {
    std::string out =
        "# Regression report: " + r.candidate_tag + " vs " + r.baseline_tag + " — " + verdict + "\n\n";
    out += "| cell | baseline run | candidate run | verdict |\n|---|---:|---:|---|\n";
    for (const auto& c : r.cells)
      out += "| " + c.cell + " | " + std::to_string(c.report.baseline) + " | " +
             std::to_string(c.report.candidate) + " | " + cell_verdict(c.report) + " |\n";
    for (const auto& m : r.missing_cells) out += "| " + m + " | | – | MISSING in the candidate |\n";
    for (const auto& m : r.new_cells) out += "| " + m + " | – | | new |\n";
    for (const auto& c : r.cells) out += "\n### " + c.cell + "\n\n" + render_regress(c.report, format);
    return out;
  }
  if (format == "html") {
    std::string out =
        "<section class=\"dmeval-regress-sweep\"><h2>Regression report: " + html_escape(r.candidate_tag) +
        " vs " + html_escape(r.baseline_tag) + " — <span class=\"verdict\">" + verdict +
        "</span></h2>\n<table><thead><tr><th>cell</th><th>baseline run</th><th>candidate run</th>"
        "<th>verdict</th></tr></thead><tbody>\n";
    for (const auto& c : r.cells)
      out += "<tr><td>" + html_escape(c.cell) + "</td><td>" + std::to_string(c.report.baseline) +
             "</td><td>" + std::to_string(c.report.candidate) + "</td><td>" + cell_verdict(c.report) +
             "</td></tr>\n";
    for (const auto& m : r.missing_cells)
      out +=
          "<tr class=\"MISSING\"><td>" + html_escape(m) + "</td><td></td><td>–</td><td>MISSING</td></tr>\n";
    for (const auto& m : r.new_cells)
      out += "<tr><td>" + html_escape(m) + "</td><td>–</td><td></td><td>new</td></tr>\n";
    out += "</tbody></table>\n";
    for (const auto& c : r.cells)
      out += "<h3>" + html_escape(c.cell) + "</h3>\n" + render_regress(c.report, format);
    return out + "</section>\n";
  }
  fail("unknown regression report format '{}' (md, html)", format);
}

std::string render_regress(const RegressReport& r, const std::string& format) {
  const std::string verdict = r.failed() ? "FAIL" : "PASS";
  if (format == "md") {
    std::string out = "## Regression report: run " + std::to_string(r.candidate) + " vs baseline run " +
                      std::to_string(r.baseline) + " — " + verdict + "\n\n";
    out += "| metric | dataset | baseline | candidate | verdict | why |\n|---|---|---:|---:|---|---|\n";
    for (const auto& c : r.rows)
      out += "| " + c.metric + " | " + (c.dataset.empty() ? "–" : c.dataset) + " | " + fmt(c.baseline) +
             " | " + fmt(c.candidate) + " | " + verdict_name(c.verdict) + " | " + c.reason + " |\n";
    return out;
  }
  if (format == "html") {
    std::string out = "<section class=\"dmeval-regress\"><h2>Regression report: run " +
                      std::to_string(r.candidate) + " vs baseline run " + std::to_string(r.baseline) +
                      " — <span class=\"verdict\">" + verdict +
                      "</span></h2>\n<table><thead><tr><th>metric</th><th>dataset</th><th>baseline</th>"
                      "<th>candidate</th><th>verdict</th><th>why</th></tr></thead><tbody>\n";
    for (const auto& c : r.rows)
      out += "<tr class=\"" + std::string(verdict_name(c.verdict)) + "\"><td>" + html_escape(c.metric) +
             "</td><td>" + html_escape(c.dataset) + "</td><td>" + fmt(c.baseline) + "</td><td>" +
             fmt(c.candidate) + "</td><td>" + verdict_name(c.verdict) + "</td><td>" + html_escape(c.reason) +
             "</td></tr>\n";
    return out + "</tbody></table></section>\n";
  }
  fail("unknown regression report format '{}' (md, html)", format);
}

}  // namespace dmeval::reports
