// `dmeval merge RUN [--from DIR]...`: combines the shards of one run made in separate folders (other
// machines, copied back) into RUN and scores it. Every folder must hold the same run (identical
// identity records); each chunk's features are copied before its record, so an interrupted merge
// can be repeated. The scores equal one process's: the features are per image and the moments exact.
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "harness/cli/commands.h"
#include "harness/cli/run_cell.h"
#include "harness/sampling/chunk_ledger.h"
#include "harness/sampling/chunk_plan.h"
#include "metrics/chunked_features.h"

namespace dmeval::cli {

namespace fs = std::filesystem;

namespace {
void copy_file_atomically(const std::string& from, const std::string& to) {
  const std::string tmp = to + ".tmp-merge";
  std::error_code ec;
  fs::copy_file(from, tmp, fs::copy_options::overwrite_existing, ec);
  if (!ec) fs::rename(tmp, to, ec);
  if (ec) {
    fs::remove(tmp);
    fail("cannot copy {} to {}: {}", from, to, ec.message());
  }
}
}  // namespace

void add_merge_command(CLI::App& app) {
  struct Opts {
    std::string run;
    std::vector<std::string> from;
    DbOptions db;
    bool json = false, quiet = false, no_db = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("merge", "combine the shards of a run from several folders and score it");
  cmd->add_option("run", o->run, "the run folder to complete and score")->required();
  cmd->add_option("--from", o->from, "other folders holding shards of the same run (repeatable)");
  add_db_options(cmd, o->db, /*step_and_bit_labels=*/false);
  cmd->add_flag("--no-db", o->no_db, "do not record the result");
  cmd->add_flag("--json", o->json, "print the result as JSON");
  cmd->add_flag("--quiet", o->quiet, "no progress output");
  cmd->callback([o] {
    const std::string ledger_dir = o->run + "/.dmeval";
    const auto identity = ChunkLedger::read_identity(ledger_dir);
    ChunkLedger into(ledger_dir, identity);
    int64_t imported = 0;
    for (const auto& dir : o->from) {
      const auto other = ChunkLedger::read_identity(dir + "/.dmeval");
      if (other != identity)
        fail("{} holds a different run from {} (their .dmeval/run.json differ); only shards of one run merge",
             dir, o->run);
      ChunkLedger from(dir + "/.dmeval", other);
      for (int64_t k : from.done_chunks()) {
        if (into.done(k)) continue;
        const std::string src = chunk_feature_file(dir + "/features", k);
        DMEVAL_CHECK(fs::exists(src), "{}: chunk {} is recorded but its features {} are missing", dir, k,
                     src);
        fs::create_directories(o->run + "/features");
        copy_file_atomically(src, chunk_feature_file(o->run + "/features", k));
        into.import_record(dir + "/.dmeval", k);
        ++imported;
      }
      for (const char* f : {"latency.json", "cell.json"})
        if (!fs::exists(o->run + "/" + f) && fs::exists(dir + "/" + f))
          copy_file_atomically(dir + "/" + f, o->run + "/" + f);
    }
    ChunkPlan plan;
    plan.total = identity.at("samples").get<int64_t>();
    plan.chunk_size = identity.at("chunk_size").get<int64_t>();
    std::string missing;
    int64_t n_missing = 0;
    for (int64_t k = 0; k < plan.num_chunks(); ++k)
      if (!into.done(k)) {
        if (++n_missing <= 20) missing += fmt::format(" {}", k);
      }
    if (n_missing)
      fail(
          "{}: {} of {} chunks still missing after merging {} folder(s) (chunks:{}{}); run the shards that "
          "hold them",
          o->run, n_missing, plan.num_chunks(), o->from.size(), missing, n_missing > 20 ? " ..." : "");
    if (!o->quiet)
      std::fprintf(stderr, "merge: %lld chunks imported; all %lld chunks present\n",
                   static_cast<long long>(imported), static_cast<long long>(plan.num_chunks()));
    RunCellOptions saved = read_run_options(o->run);
    DbOptions db = saved.db;
    if (!o->db.db.empty()) db.db = o->db.db;
    if (!o->db.tag.empty()) db.tag = o->db.tag;
    auto res =
        score_run_folder(o->run, o->no_db || (saved.no_db && !o->db.wanted()) ? nullptr : &db, o->quiet);
    if (o->json)
      std::printf("%s\n", res.dump(1).c_str());
    else
      std::printf("%s", format_cell_row(res).c_str());
  });
}

}  // namespace dmeval::cli
