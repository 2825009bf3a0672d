#include "reports/result_set.h"

#include <algorithm>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace dmeval::reports {

std::string MetricValue::provenance_key() const {
  return feature_network + "|" + weights_sha256 + "|" + mode + "|" + compat + "|" + reference_sha256;
}

namespace {
// "key=value, ..." from a run's calibration record's changed_settings ("" when absent or unreadable:
// records older than the field say nothing, which the table then states nothing about).
std::string calibration_changes(const std::string& calibration_json) {
  const nlohmann::ordered_json j = nlohmann::ordered_json::parse(calibration_json, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("changed_settings") ||
      !j["changed_settings"].is_object())
    return "";
  std::string out;
  for (const auto& [k, v] : j["changed_settings"].items())
    out += (out.empty() ? "" : ", ") + k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
  // The label of a method run where its reference has no code (TinyDM on LDM: dmeval's construction).
  if (j.contains("construction") && j["construction"].is_string())
    out += (out.empty() ? "" : "; ") + j["construction"].get<std::string>();
  return out;
}
// The training curve of a trained method's calibration record ("training_curve": [{step, loss}, ...]).
std::vector<std::pair<int64_t, double>> training_curve(const std::string& calibration_json) {
  std::vector<std::pair<int64_t, double>> out;
  const nlohmann::ordered_json j = nlohmann::ordered_json::parse(calibration_json, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("training_curve") || !j["training_curve"].is_array())
    return out;
  for (const auto& p : j["training_curve"])
    if (p.is_object() && p.contains("step") && p.contains("loss") && p["loss"].is_number())
      out.emplace_back(p["step"].get<int64_t>(), p["loss"].get<double>());
  return out;
}
}  // namespace

std::vector<RunResult> load_results(db::Connection& c, const ResultFilter& f) {
  std::optional<int64_t> w, a;
  if (!f.bits.empty()) {
    char slash = 0;
    int64_t wv = 0, av = 0;
    std::istringstream ss(f.bits);
    if (!(ss >> wv >> slash >> av) || slash != '/') fail("--bits '{}': expected W/A such as 4/8", f.bits);
    w = wv, a = av;
  }
  std::string sql =
      "SELECT r.id, coalesce(r.tag, ''), r.started_at, coalesce(r.git_revision, ''), coalesce(c.method, ''), "
      "coalesce(c.sampler, ''), coalesce(c.model, ''), c.w_bits, c.a_bits, c.steps, c.samples, s.params, "
      "s.size_mb, s.flops, m.name, m.value, m.std, m.noise, m.n, coalesce(m.dataset, ''), "
      "coalesce(m.feature_network, ''), coalesce(m.weights_sha256, ''), coalesce(m.mode, ''), "
      "coalesce(m.compat, ''), coalesce(rs.sha256, ''), coalesce(s.counting, ''), "
      "coalesce(c.calibration, ''), s.bops FROM runs r LEFT JOIN "
      "run_configs c ON c.run_id = "
      "r.id "
      "LEFT JOIN model_sizes s ON s.run_id = r.id LEFT JOIN metrics m ON m.run_id = r.id AND m.item IS NULL "
      "LEFT JOIN reference_sets rs ON rs.id = m.reference_set_id WHERE r.status = 'finished' ORDER BY r.id, "
      "m.id";
  db::Statement q(c, sql);
  auto opt_i = [&](int col) { return q.is_null(col) ? std::nullopt : std::optional<int64_t>(q.int64(col)); };
  auto opt_d = [&](int col) { return q.is_null(col) ? std::nullopt : std::optional<double>(q.real(col)); };
  std::map<std::pair<int64_t, std::string>, RunResult> by_run_dataset;
  std::vector<std::pair<int64_t, std::string>> order;
  while (q.step()) {
    const int64_t id = q.int64(0);
    const std::string dataset = q.is_null(14) ? "" : q.text(19);
    auto key = std::make_pair(id, dataset);
    auto it = by_run_dataset.find(key);
    if (it == by_run_dataset.end()) {
      RunResult r;
      r.id = id;
      r.tag = q.text(1);
      r.started_at = q.text(2);
      r.git_revision = q.text(3);
      r.method = q.text(4);
      r.sampler = q.text(5);
      r.model = q.text(6);
      r.w_bits = opt_i(7), r.a_bits = opt_i(8), r.steps = opt_i(9), r.samples = opt_i(10),
      r.params = opt_i(11);
      r.size_mb = opt_d(12), r.flops = opt_d(13), r.bops = opt_d(27);
      r.size_counting = q.text(25);
      r.calibration_changes = calibration_changes(q.text(26));
      r.training_curve = training_curve(q.text(26));
      r.dataset = dataset;
      it = by_run_dataset.emplace(key, r).first;
      order.push_back(key);
    }
    if (q.is_null(14)) continue;
    MetricValue m;
    m.value = opt_d(15), m.std = opt_d(16), m.noise = opt_d(17), m.n = opt_i(18);
    m.dataset = dataset;
    m.feature_network = q.text(20), m.weights_sha256 = q.text(21), m.mode = q.text(22), m.compat = q.text(23);
    m.reference_sha256 = q.text(24);
    it->second.metrics[q.text(14)] = m;
  }
  std::vector<RunResult> out;
  const std::set<int64_t> wanted(f.runs.begin(), f.runs.end());
  for (const auto& key : order) {
    const RunResult& r = by_run_dataset.at(key);
    if (!wanted.empty() && !wanted.count(r.id)) continue;
    if (!f.tag.empty() && r.tag != f.tag) continue;
    if (!f.method.empty() && r.method != f.method) continue;
    if (!f.dataset.empty() && r.dataset != f.dataset) continue;
    if (f.steps && r.steps != f.steps) continue;
    if (w && (r.w_bits != w || r.a_bits != a)) continue;
    out.push_back(r);
  }
  if (wanted.empty()) {
    // Latest run per setting: later runs (higher id) replace earlier ones.
    std::map<std::string, size_t> latest;
    auto setting = [](const RunResult& r) {
      auto s = [](const std::optional<int64_t>& v) { return v ? std::to_string(*v) : std::string("-"); };
      return r.method + "|" + s(r.w_bits) + "/" + s(r.a_bits) + "|" + s(r.steps) + "|" + r.dataset + "|" +
             r.tag;
    };
    for (size_t i = 0; i < out.size(); ++i) latest[setting(out[i])] = i;
    std::vector<RunResult> kept;
    for (size_t i = 0; i < out.size(); ++i)
      if (latest[setting(out[i])] == i) kept.push_back(out[i]);
    out = std::move(kept);
  }
  return out;
}

}  // namespace dmeval::reports
