#include "harness/cli/db_cli.h"

#include <unistd.h>

#include <cstdio>
#include <exception>
#include <filesystem>
#include <sstream>

#include "core/build_info.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/runtime.h"
#include "harness/cli/invocation.h"

namespace dmeval::cli {

namespace {
std::string& invocation_storage() {
  static std::string s;
  return s;
}
}  // namespace

void set_invocation(int argc, char** argv) {
  std::string out;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a.empty() || a.find_first_of(" \t\n'\"\\$`*?") != std::string::npos) {
      std::string q = "'";
      for (char c : a) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
      a = q + "'";
    }
    out += (i ? " " : "") + a;
  }
  invocation_storage() = out;
}

const std::string& invocation() {
  return invocation_storage();
}

const OptionTable<DbOptions>& db_record_option_table() {
  static const OptionTable<DbOptions> table = [] {
    OptionTable<DbOptions> t;
    t.add("--db", &DbOptions::db,
          "record the results in this SQLite file (default with --tag: $DMEVAL_DB or ./dmeval.db)",
          kSaved | kPath, {}, false);
    t.add("--tag", &DbOptions::tag, "record the results under this tag (for reports and regressions)", kSaved,
          {}, false);
    return t;
  }();
  return table;
}

void add_db_options(CLI::App* cmd, DbOptions& o, bool step_and_bit_labels) {
  db_record_option_table().bind(cmd, o);
  if (!step_and_bit_labels) return;  // the command knows them itself
  cmd->add_option("--method", o.method,
                  "method label recorded with the results (e.g. tinydm, q-diffusion, fp)");
  cmd->add_option("--bits", o.bits,
                  "bit-widths recorded with the results, W/A (e.g. 4/8; 32/32 = full precision)");
  cmd->add_option("--steps", o.steps, "sampling steps recorded with the results")->check(CLI::PositiveNumber);
}

db::ResultsDb open_existing_db(const std::string& path_option) {
  const std::string path = path_option.empty() ? db::default_db_path() : path_option;
  if (!std::filesystem::exists(path))
    fail("{}: no results database here (pass --db PATH or set DMEVAL_DB)", path);
  return db::ResultsDb::open(path);
}

std::unique_ptr<RunRecorder> RunRecorder::start(const DbOptions& o) {
  if (!o.wanted()) return nullptr;
  db::ResultsDb rdb = db::ResultsDb::open(o.db.empty() ? db::default_db_path() : o.db);
  RuntimeInfo rt = runtime_info();
  db::RunInfo info;
  info.command_line = invocation();
  info.tag = o.tag;
  info.git_revision = build_git_revision();
  info.code_version = build_version();
  info.host = db::this_host();
  info.pid = getpid();
  info.device = rt.cuda_available ? "cuda: " + rt.cuda_device_name : "cpu";
  info.libtorch_version = rt.torch_version;
  const int64_t run = rdb.begin_run(info);
  db::RunConfig c;
  if (!o.method.empty()) c.method = o.method;
  if (!o.bits.empty()) {
    int w = 0, a = 0;
    char slash = 0;
    std::istringstream ss(o.bits);
    if (!(ss >> w >> slash >> a) || slash != '/' || w <= 0 || a <= 0 || !ss.eof())
      fail("--bits '{}': expected W/A such as 4/8", o.bits);
    c.w_bits = w;
    c.a_bits = a;
  }
  if (o.steps > 0) c.steps = o.steps;
  if (c.method || c.w_bits || c.steps) rdb.set_config(run, c);
  return std::unique_ptr<RunRecorder>(new RunRecorder(std::move(rdb), run));
}

RunRecorder::~RunRecorder() {
  if (finished_) return;
  try {
    db_.end_run(run_, "failed",
                std::uncaught_exceptions() ? "the command failed (see its error message)" : "not finished");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dmeval: could not mark run %lld failed: %s\n", static_cast<long long>(run_),
                 e.what());
  }
}

void RunRecorder::finish() {
  db_.end_run(run_, "finished");
  finished_ = true;
  std::fprintf(stderr, "dmeval: recorded as run %lld in %s\n", static_cast<long long>(run_),
               db_.path().c_str());
}

int64_t RunRecorder::reference_set(const std::string& path, const std::string& kind,
                                   std::optional<int64_t> count, const std::vector<std::string>& files) {
  const std::string digest = files.empty() ? sha256_file(path) : sha256_of_files(files);
  db::ReferenceSet r{std::filesystem::path(path).filename().string(),
                     std::filesystem::absolute(path).string(), kind, digest, count};
  return db_.add_reference_set(r);
}

std::vector<db::MetricRow> inception_metric_rows(const nlohmann::ordered_json& metrics,
                                                 const nlohmann::ordered_json& provenance,
                                                 const std::string& compat, std::optional<int64_t> n,
                                                 std::optional<int64_t> reference_set) {
  std::vector<db::MetricRow> rows;
  for (auto it = metrics.begin(); it != metrics.end(); ++it) {
    db::MetricRow r;
    r.name = it.key();
    const auto& v = it.value();
    if (v.contains("value") && v["value"].is_number()) r.value = v["value"].get<double>();
    if (v.contains("std") && v["std"].is_number()) r.std = v["std"].get<double>();
    if (v.contains("noise") && v["noise"].is_number()) r.noise = v["noise"].get<double>();
    r.n = n;
    r.feature_network = provenance.value("feature_network", std::string());
    r.weights_sha256 = provenance.value("weights_sha256", std::string());
    r.mode = provenance.value("preprocessing", std::string());
    r.compat = compat;
    r.reference_set_id = reference_set;
    nlohmann::ordered_json details = v;
    details["provenance"] = provenance;
    r.details_json = details.dump();
    rows.push_back(r);
  }
  return rows;
}

}  // namespace dmeval::cli
