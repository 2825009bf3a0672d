// Recording a command's figures in the results database: the --db/--tag options, and a RunRecorder
// that opens the run (status running) before the work, stores metrics with their provenance, and
// closes it as finished — or failed if the command throws.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "db/results.h"
#include "harness/cli/option_table.h"

namespace dmeval::cli {

struct DbOptions {
  std::string db;      // --db PATH (else $DMEVAL_DB, else ./dmeval.db)
  std::string tag;     // --tag NAME
  std::string method;  // labels for the tables when the images come from outside dmeval
  std::string bits;    // "4/8" = W4A8, "32/32" = full precision
  int64_t steps = 0;
  bool wanted() const { return !db.empty() || !tag.empty(); }
};

// --db and --tag.
const OptionTable<DbOptions>& db_record_option_table();
// --db, --tag; and the --method / --bits / --steps labels for commands that score images made elsewhere.
void add_db_options(CLI::App* cmd, DbOptions& o, bool step_and_bit_labels = true);

// An existing results database for the reading commands (db, report): `path`, else $DMEVAL_DB, else
// ./dmeval.db. Opened for writing even to read: opening migrates old files and marks runs of dead
// processes interrupted. A missing file is an error, not a new empty database.
db::ResultsDb open_existing_db(const std::string& path);

class RunRecorder {
 public:
  // nullptr when neither --db nor --tag was given.
  static std::unique_ptr<RunRecorder> start(const DbOptions& o);
  ~RunRecorder();  // marks the run failed unless finish() was called

  db::ResultsDb& db() { return db_; }
  int64_t run() const { return run_; }
  // A reference set row for a file (SHA-256 of the file) or a folder (SHA-256 of its sorted
  // "name<TAB>sha256" lines).
  int64_t reference_set(const std::string& path, const std::string& kind, std::optional<int64_t> count,
                        const std::vector<std::string>& files = {});
  void add_metrics(const std::vector<db::MetricRow>& rows) { db_.add_metrics(run_, rows); }
  void finish();

 private:
  RunRecorder(db::ResultsDb db, int64_t run) : db_(std::move(db)), run_(run) {}
  db::ResultsDb db_;
  int64_t run_;
  bool finished_ = false;
};

// The Inception commands' metrics object ({"fid": {"value":..., ...}, ...}) as rows sharing the
// provenance (network, weights hash, preprocessing, compat) and reference set.
std::vector<db::MetricRow> inception_metric_rows(const nlohmann::ordered_json& metrics,
                                                 const nlohmann::ordered_json& provenance,
                                                 const std::string& compat, std::optional<int64_t> n,
                                                 std::optional<int64_t> reference_set);

}  // namespace dmeval::cli
