#include "db/schema.h"

#include "core/error.h"

namespace dmeval::db {

const std::vector<Migration>& migrations() {
  static const std::vector<Migration> kMigrations = {
      {1, "runs, configuration, metrics, model size, latency, sample chunks, reference sets",
       R"sql(
CREATE TABLE runs (
  id               INTEGER PRIMARY KEY,
  started_at       TEXT NOT NULL,               -- UTC, ISO 8601
  ended_at         TEXT,
  status           TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed', 'interrupted')),
  command_line     TEXT NOT NULL,
  tag              TEXT,
  git_revision     TEXT,
  code_version     TEXT,
  host             TEXT,
  pid              INTEGER,
  device           TEXT,
  libtorch_version TEXT,
  cuda_version     TEXT,
  error            TEXT
);
CREATE INDEX runs_tag ON runs (tag);
CREATE TABLE run_configs (
  run_id            INTEGER PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
  method            TEXT,
  w_bits            INTEGER,
  a_bits            INTEGER,
  model             TEXT,
  checkpoint_sha256 TEXT,
  sampler           TEXT,
  steps             INTEGER,
  eta               REAL,
  seed              INTEGER,
  samples           INTEGER,
  calibration       TEXT,                       -- JSON
  extra             TEXT                        -- JSON
);
CREATE TABLE reference_sets (
  id     INTEGER PRIMARY KEY,
  name   TEXT,
  path   TEXT NOT NULL,
  kind   TEXT NOT NULL,                         -- images, statistics, adm-batch
  sha256 TEXT NOT NULL,                         -- of the file, or of a folder's (name, file sha256) list
  count  INTEGER,
  UNIQUE (path, sha256)
);
CREATE TABLE metrics (
  id               INTEGER PRIMARY KEY,
  run_id           INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  name             TEXT NOT NULL,               -- fid, sfid, is, precision, recall, kid, psnr, ssim, lpips
  value            REAL,                        -- NULL when undefined (e.g. PSNR of identical images)
  std              REAL,
  n                INTEGER,
  dataset          TEXT,
  feature_network  TEXT,
  weights_sha256   TEXT,
  mode             TEXT,                        -- preprocessing / conventions
  compat           TEXT,
  reference_set_id INTEGER REFERENCES reference_sets (id),
  details          TEXT,                        -- JSON
  created_at       TEXT NOT NULL
);
CREATE INDEX metrics_run ON metrics (run_id);
CREATE TABLE model_sizes (
  run_id         INTEGER PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
  params         INTEGER,
  size_mb        REAL,
  fp_size_mb     REAL,
  bops           REAL,
  bits_per_group TEXT,                          -- JSON
  counting       TEXT                           -- how size_mb was counted
);
CREATE TABLE latencies (
  id        INTEGER PRIMARY KEY,
  run_id    INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  scope     TEXT NOT NULL CHECK (scope IN ('unet_step', 'image', 'batch')),
  batch     INTEGER,
  device    TEXT,
  median_ms REAL,
  p10_ms    REAL,
  p90_ms    REAL,
  repeats   INTEGER
);
CREATE TABLE sample_chunks (
  id              INTEGER PRIMARY KEY,
  run_id          INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  shard           INTEGER NOT NULL,
  first_index     INTEGER NOT NULL,
  count           INTEGER NOT NULL,
  status          TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
  artifact_path   TEXT,
  artifact_sha256 TEXT,
  updated_at      TEXT NOT NULL,
  UNIQUE (run_id, shard, first_index)
);
)sql"},
      {2, "per-item metric values (e.g. per-image PSNR) and the heartbeat of running runs",
       R"sql(
ALTER TABLE metrics ADD COLUMN item TEXT;      -- NULL: the aggregate over the dataset
ALTER TABLE runs ADD COLUMN heartbeat_at TEXT;
CREATE INDEX metrics_name ON metrics (name, dataset);
)sql"},
      {3, "measurement noise per metric (bootstrap over samples) and model FLOPs",
       R"sql(
ALTER TABLE metrics ADD COLUMN noise REAL;     -- std of the metric under resampling (regression threshold)
ALTER TABLE model_sizes ADD COLUMN flops REAL; -- per forward pass (SR tables print FLOPs (G))
)sql"},
  };
  return kMigrations;
}

int64_t latest_schema_version() {
  return migrations().back().version;
}

void migrate(Connection& c, int64_t target) {
  if (target < 0) target = latest_schema_version();
  // Serialise migrations between processes: the first one to take the write lock migrates.
  Transaction probe(c);
  int64_t at = c.user_version();
  if (at > latest_schema_version())
    fail(
        "{}: the database has schema version {}, newer than this dmeval understands ({}); use a newer dmeval",
        c.path(), at, latest_schema_version());
  for (const Migration& m : migrations()) {
    if (m.version <= at || m.version > target) continue;
    try {
      c.exec(m.sql);
    } catch (const Error& e) {
      fail("{}: migrating the schema to version {} ({}) failed: {}", c.path(), m.version, m.description,
           e.what());
    }
    c.exec("PRAGMA user_version = " + std::to_string(m.version));
    at = m.version;
  }
  probe.commit();
}

}  // namespace dmeval::db
