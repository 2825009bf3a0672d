// The results store: what every dmeval figure is recorded with (shared schema in db/schema.cpp).
// Writers: the commands that produce figures (score, fid, sr; later run). Readers: `dmeval db` and
// reports/. Every write is one transaction; several processes may write the same file (WAL, busy
// timeout, IMMEDIATE transactions).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "db/sqlite.h"

namespace dmeval::db {

// The database a command uses: --db, else $DMEVAL_DB, else dmeval.db in the working directory.
std::string default_db_path();
// UTC now, ISO 8601 with milliseconds.
std::string utc_now();

struct RunInfo {
  std::string command_line;
  std::string tag;
  std::string git_revision;
  std::string code_version;
  std::string host;
  int64_t pid = 0;
  std::string device;
  std::string libtorch_version;
  std::string cuda_version;
};

struct RunConfig {
  std::optional<std::string> method, model, checkpoint_sha256, sampler;
  std::optional<int64_t> w_bits, a_bits, steps, seed, samples;
  std::optional<double> eta;
  std::optional<std::string> calibration_json, extra_json;
};

struct ReferenceSet {
  std::string name;
  std::string path;
  std::string kind;  // images, statistics, adm-batch
  std::string sha256;
  std::optional<int64_t> count;
};

struct MetricRow {
  std::string name;
  std::optional<double> value;  // nullopt: undefined (stored as NULL)
  std::optional<double> std;
  std::optional<double> noise;  // std under resampling of the samples (bootstrap); regression threshold
  std::optional<int64_t> n;
  std::optional<std::string> dataset, item, feature_network, weights_sha256, mode, compat, details_json;
  std::optional<int64_t> reference_set_id;
};

struct ModelSize {
  std::optional<int64_t> params;
  std::optional<double> size_mb, fp_size_mb, bops, flops;
  std::optional<std::string> bits_per_group_json, counting;
};

struct Latency {
  std::string scope;  // unet_step, image, batch
  std::optional<int64_t> batch, repeats;
  std::optional<std::string> device;
  std::optional<double> median_ms, p10_ms, p90_ms;
};

struct RunSummary {
  int64_t id = 0;
  std::string started_at, ended_at, status, tag, command_line, git_revision;
  int64_t metrics = 0;
};

class ResultsDb {
 public:
  // Opens (creating and migrating as needed) and marks runs of dead processes on this host as
  // interrupted.
  static ResultsDb open(const std::string& path, const OpenOptions& options = {});

  Connection& connection() { return conn_; }
  const std::string& path() const { return conn_.path(); }

  int64_t begin_run(const RunInfo& info);
  // status: finished, failed or interrupted.
  void end_run(int64_t run, const std::string& status, const std::string& error = "");
  void heartbeat(int64_t run);
  void set_config(int64_t run, const RunConfig& config);
  int64_t add_reference_set(const ReferenceSet& r);  // existing (path, sha256) rows are reused
  void add_metrics(int64_t run, const std::vector<MetricRow>& rows);
  void set_model_size(int64_t run, const ModelSize& size);
  void add_latency(int64_t run, const Latency& latency);

  // Runs still 'running' whose process (same host) no longer exists become 'interrupted'.
  int mark_interrupted_runs();

  std::vector<RunSummary> list_runs(const std::string& tag = "", int64_t limit = -1);
  // A run id from "42", "latest", "previous" or a tag (its latest run). Throws if none.
  int64_t resolve_run(const std::string& ref);

 private:
  explicit ResultsDb(Connection c) : conn_(std::move(c)) {}
  Connection conn_;
};

std::string this_host();

}  // namespace dmeval::db
