#include "db/results.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <ctime>

#include "core/error.h"
#include "db/schema.h"

namespace dmeval::db {

std::string default_db_path() {
  if (const char* env = std::getenv("DMEVAL_DB"); env && *env) return env;
  return "dmeval.db";
}

std::string utc_now() {
  using namespace std::chrono;
  auto now = system_clock::now();
  std::time_t t = system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  const auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms));
  return out;
}

std::string this_host() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

ResultsDb ResultsDb::open(const std::string& path, const OpenOptions& options) {
  ResultsDb r(Connection::open(path, options));
  if (options.read_only) {
    if (r.conn_.user_version() != latest_schema_version())
      fail("{}: schema version {} (this dmeval writes {}); open it once for writing to migrate it", path,
           r.conn_.user_version(), latest_schema_version());
    return r;
  }
  migrate(r.conn_);
  r.mark_interrupted_runs();
  return r;
}

int64_t ResultsDb::begin_run(const RunInfo& info) {
  Transaction t(conn_);
  Statement s(
      conn_,
      "INSERT INTO runs (started_at, status, command_line, tag, git_revision, code_version, host, pid, "
      "device, libtorch_version, cuda_version, heartbeat_at) VALUES (?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, "
      "?, ?)");
  const std::string now = utc_now();
  auto opt = [](const std::string& v) { return v.empty() ? std::nullopt : std::optional<std::string>(v); };
  s.bind(1, now).bind(2, info.command_line).bind(3, opt(info.tag)).bind(4, opt(info.git_revision));
  s.bind(5, opt(info.code_version)).bind(6, opt(info.host)).bind(7, info.pid).bind(8, opt(info.device));
  s.bind(9, opt(info.libtorch_version)).bind(10, opt(info.cuda_version)).bind(11, now);
  s.run();
  const int64_t id = conn_.last_insert_id();
  t.commit();
  return id;
}

void ResultsDb::end_run(int64_t run, const std::string& status, const std::string& error) {
  if (status != "finished" && status != "failed" && status != "interrupted")
    fail("end_run: status '{}' is not finished, failed or interrupted", status);
  Transaction t(conn_);
  Statement s(conn_, "UPDATE runs SET status = ?, ended_at = ?, error = ? WHERE id = ?");
  s.bind(1, status).bind(2, utc_now());
  if (error.empty())
    s.bind_null(3);
  else
    s.bind(3, error);
  s.bind(4, run).run();
  t.commit();
}

void ResultsDb::heartbeat(int64_t run) {
  Transaction t(conn_);
  Statement(conn_, "UPDATE runs SET heartbeat_at = ? WHERE id = ?").bind(1, utc_now()).bind(2, run).run();
  t.commit();
}

void ResultsDb::set_config(int64_t run, const RunConfig& c) {
  Transaction t(conn_);
  Statement s(
      conn_,
      "INSERT OR REPLACE INTO run_configs (run_id, method, w_bits, a_bits, model, checkpoint_sha256, "
      "sampler, steps, eta, seed, samples, calibration, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
      "?, ?)");
  s.bind(1, run).bind(2, c.method).bind(3, c.w_bits).bind(4, c.a_bits).bind(5, c.model);
  s.bind(6, c.checkpoint_sha256).bind(7, c.sampler).bind(8, c.steps).bind(9, c.eta).bind(10, c.seed);
  s.bind(11, c.samples).bind(12, c.calibration_json).bind(13, c.extra_json);
  s.run();
  t.commit();
}

int64_t ResultsDb::add_reference_set(const ReferenceSet& r) {
  Transaction t(conn_);
  Statement ins(
      conn_, "INSERT OR IGNORE INTO reference_sets (name, path, kind, sha256, count) VALUES (?, ?, ?, ?, ?)");
  ins.bind(1, r.name).bind(2, r.path).bind(3, r.kind).bind(4, r.sha256).bind(5, r.count).run();
  Statement q(conn_, "SELECT id FROM reference_sets WHERE path = ? AND sha256 = ?");
  q.bind(1, r.path).bind(2, r.sha256);
  if (!q.step()) fail("{}: reference set row missing after insert", conn_.path());
  const int64_t id = q.int64(0);
  t.commit();
  return id;
}

void ResultsDb::add_metrics(int64_t run, const std::vector<MetricRow>& rows) {
  Transaction t(conn_);
  Statement s(
      conn_,
      "INSERT INTO metrics (run_id, name, value, std, n, dataset, item, feature_network, weights_sha256, "
      "mode, compat, reference_set_id, details, created_at, noise) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
      "?, "
      "?, ?, ?)");
  const std::string now = utc_now();
  for (const MetricRow& m : rows) {
    s.reset();
    s.bind(1, run).bind(2, m.name).bind(3, m.value).bind(4, m.std).bind(5, m.n).bind(6, m.dataset);
    s.bind(7, m.item)
        .bind(8, m.feature_network)
        .bind(9, m.weights_sha256)
        .bind(10, m.mode)
        .bind(11, m.compat);
    s.bind(12, m.reference_set_id).bind(13, m.details_json).bind(14, now).bind(15, m.noise);
    s.run();
  }
  t.commit();
}

void ResultsDb::set_model_size(int64_t run, const ModelSize& m) {
  Transaction t(conn_);
  Statement s(
      conn_,
      "INSERT OR REPLACE INTO model_sizes (run_id, params, size_mb, fp_size_mb, bops, bits_per_group, "
      "counting, flops) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  s.bind(1, run).bind(2, m.params).bind(3, m.size_mb).bind(4, m.fp_size_mb).bind(5, m.bops);
  s.bind(6, m.bits_per_group_json).bind(7, m.counting).bind(8, m.flops).run();
  t.commit();
}

void ResultsDb::add_latency(int64_t run, const Latency& l) {
  if (l.scope != "unet_step" && l.scope != "image" && l.scope != "batch")
    fail("latency scope '{}' is not unet_step, image or batch", l.scope);
  Transaction t(conn_);
  Statement s(
      conn_,
      "INSERT INTO latencies (run_id, scope, batch, device, median_ms, p10_ms, p90_ms, repeats) VALUES (?, "
      "?, ?, ?, ?, ?, ?, ?)");
  s.bind(1, run).bind(2, l.scope).bind(3, l.batch).bind(4, l.device).bind(5, l.median_ms).bind(6, l.p10_ms);
  s.bind(7, l.p90_ms).bind(8, l.repeats).run();
  t.commit();
}

int ResultsDb::mark_interrupted_runs() {
  std::vector<std::pair<int64_t, int64_t>> candidates;
  {
    Statement q(conn_, "SELECT id, pid FROM runs WHERE status = 'running' AND host = ?");
    q.bind(1, this_host());
    while (q.step()) candidates.emplace_back(q.int64(0), q.int64(1));
  }
  int marked = 0;
  for (auto [id, pid] : candidates) {
    if (pid <= 0) continue;
    if (pid == getpid()) continue;
    const bool alive = kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
    if (alive) continue;
    Transaction t(conn_);
    Statement(
        conn_,
        "UPDATE runs SET status = 'interrupted', ended_at = coalesce(heartbeat_at, started_at), error = "
        "'the process ended without finishing the run (killed or crashed)' WHERE id = ? AND status = "
        "'running'")
        .bind(1, id)
        .run();
    t.commit();
    ++marked;
  }
  return marked;
}

std::vector<RunSummary> ResultsDb::list_runs(const std::string& tag, int64_t limit) {
  std::string sql =
      "SELECT r.id, r.started_at, coalesce(r.ended_at, ''), r.status, coalesce(r.tag, ''), r.command_line, "
      "coalesce(r.git_revision, ''), (SELECT count(*) FROM metrics m WHERE m.run_id = r.id) FROM runs r";
  if (!tag.empty()) sql += " WHERE r.tag = ?";
  sql += " ORDER BY r.id";
  if (limit > 0) sql += " LIMIT " + std::to_string(limit);
  Statement q(conn_, sql);
  if (!tag.empty()) q.bind(1, tag);
  std::vector<RunSummary> out;
  while (q.step())
    out.push_back({q.int64(0), q.text(1), q.text(2), q.text(3), q.text(4), q.text(5), q.text(6), q.int64(7)});
  return out;
}

int64_t ResultsDb::resolve_run(const std::string& ref) {
  auto one = [&](const std::string& sql, const std::string& arg) -> std::optional<int64_t> {
    Statement q(conn_, sql);
    if (!arg.empty()) q.bind(1, arg);
    if (q.step()) return q.int64(0);
    return std::nullopt;
  };
  std::optional<int64_t> id;
  if (!ref.empty() && ref.find_first_not_of("0123456789") == std::string::npos)
    id = one("SELECT id FROM runs WHERE id = " + ref, "");
  else if (ref == "latest")
    id = one("SELECT max(id) FROM runs WHERE status = 'finished'", "");
  else if (ref == "previous")
    id = one("SELECT id FROM runs WHERE status = 'finished' ORDER BY id DESC LIMIT 1 OFFSET 1", "");
  else
    id = one("SELECT max(id) FROM runs WHERE tag = ? AND status = 'finished'", ref);
  if (!id || *id == 0)
    fail("{}: no run '{}' (use a run id, latest, previous, or a tag with a finished run)", conn_.path(), ref);
  return *id;
}

}  // namespace dmeval::db
