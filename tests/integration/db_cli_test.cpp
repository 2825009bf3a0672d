// Recording through the real binary: `dmeval sr --db --tag` writes a finished run with its metrics
// and provenance, a failing command leaves a failed run, and `dmeval db list|show|export|gc` read it
// back (the SQL export is re-imported into a fresh SQLite file).
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/image.h"
#include "db/results.h"
#include "tests/support/run.h"
#include "tests/support/temp_dir.h"

namespace dmeval {
namespace {

using namespace dmeval::test;
using json = nlohmann::json;
namespace fs = std::filesystem;

Image gradient(int w, int h, int shift) {
  Image img;
  img.width = w;
  img.height = h;
  img.pixels.resize(static_cast<size_t>(w) * h * 3);
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = static_cast<uint8_t>((i * 7 + shift) % 251);
  return img;
}

struct Fixture {
  TempDir d;
  std::string db = d.file("results.db");
  Fixture() {
    fs::create_directories(d.file("Set/HR"));
    fs::create_directories(d.file("Set/SR"));
    write_png(d.file("Set/HR/a.png"), gradient(24, 24, 0));
    write_png(d.file("Set/SR/a.png"), gradient(24, 24, 3));
    write_png(d.file("Set/HR/b.png"), gradient(24, 24, 5));
    write_png(d.file("Set/SR/b.png"), gradient(24, 24, 9));
  }
  std::string sr(const std::string& extra) const {
    return "sr --hr " + d.file("Set/HR") + " --sr " + d.file("Set/SR") + " --lpips none --db " + db + " " +
           extra;
  }
};

json run_json(const std::string& args) {
  RunResult r = run_dmeval(args, /*stderr=*/false);
  EXPECT_EQ(r.exit_code, 0) << args << "\n" << run_dmeval(args).output;
  return r.exit_code == 0 ? json::parse(r.output) : json();
}

TEST(DbCli, SrRecordsARunWithProvenance) {
  Fixture f;
  ASSERT_EQ(
      run_dmeval(f.sr("--tag nightly --method bicubic --bits 32/32 --y-channel --crop-border 2")).exit_code,
      0);
  json runs = run_json("db list --json --db " + f.db);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0]["status"], "finished");
  EXPECT_EQ(runs[0]["tag"], "nightly");
  EXPECT_NE(runs[0]["command_line"].get<std::string>().find("--y-channel"), std::string::npos);
  json show = run_json("db show nightly --json --db " + f.db);
  EXPECT_EQ(show["config"]["method"], "bicubic");
  EXPECT_EQ(show["config"]["w_bits"], 32);
  ASSERT_EQ(show["metrics"].size(), 2u);  // aggregate psnr and ssim
  EXPECT_EQ(show["metrics"][0]["name"], "psnr");
  EXPECT_EQ(show["metrics"][0]["n"], 2);
  EXPECT_EQ(show["metrics"][0]["dataset"], "Set");
  EXPECT_EQ(show["metrics"][0]["reference_sha256"].get<std::string>().size(), 64u);
  EXPECT_NE(show["metrics"][0]["mode"].get<std::string>().find("Y, crop 2"), std::string::npos);
  // The recorded mean equals what the command prints.
  json out = run_json(f.sr("--y-channel --crop-border 2 --json"));
  EXPECT_DOUBLE_EQ(show["metrics"][0]["value"].get<double>(), out["mean"]["psnr"].get<double>());
  json items = run_json("db show latest --items --json --db " + f.db);
  EXPECT_EQ(items["metrics"].size(), 6u);
}

TEST(DbCli, FailingCommandLeavesAFailedRun) {
  Fixture f;
  write_png(f.d.file("Set/SR/b.png"), gradient(20, 24, 9));  // size mismatch
  RunResult r = run_dmeval(f.sr("--tag broken"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  json runs = run_json("db list --json --db " + f.db);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0]["status"], "failed");
  EXPECT_EQ(runs[0]["metrics"], 0);
}

TEST(DbCli, ExportsCsvJsonAndSqlThatReimports) {
  Fixture f;
  ASSERT_EQ(run_dmeval(f.sr("--tag a")).exit_code, 0);
  ASSERT_EQ(run_dmeval(f.sr("--tag b")).exit_code, 0);
  RunResult csv = run_dmeval("db export --format csv --db " + f.db, false);
  ASSERT_EQ(csv.exit_code, 0);
  EXPECT_EQ(csv.output.rfind("run_id,tag,status", 0), 0u) << csv.output;
  json rows = run_json("db export --format json --db " + f.db);
  EXPECT_EQ(rows.size(), 12u);  // 2 runs x (2 means + 2 images x 2 metrics)
  ASSERT_EQ(run_dmeval("db export --format sql -o " + f.d.file("dump.sql") + " --db " + f.db).exit_code, 0);
  sqlite3* fresh = nullptr;
  ASSERT_EQ(sqlite3_open(f.d.file("fresh.db").c_str(), &fresh), SQLITE_OK);
  std::ifstream in(f.d.file("dump.sql"));
  std::string sql((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(fresh, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(fresh);
  // The re-imported file is a valid results database with the same rows.
  json again = run_json("db export --format json --db " + f.d.file("fresh.db"));
  EXPECT_EQ(again, rows);
}

TEST(DbCli, GcRemovesOnlyFailedRunsArtifactsAndOnlyWhenAsked) {
  Fixture f;
  const std::string partial = f.d.write("chunk-0.npz", "partial"), kept = f.d.write("chunk-1.npz", "done");
  {
    db::ResultsDb r = db::ResultsDb::open(f.db);
    db::RunInfo i;
    i.command_line = "dmeval run";
    int64_t failed = r.begin_run(i), ok = r.begin_run(i);
    r.end_run(failed, "failed", "boom");
    r.end_run(ok, "finished");
    r.connection().exec(
        "INSERT INTO sample_chunks (run_id, shard, first_index, count, status, artifact_path, updated_at) "
        "VALUES (" +
        std::to_string(failed) + ", 0, 0, 10, 'running', '" + partial + "', 'x'), (" + std::to_string(ok) +
        ", 0, 0, 10, 'done', '" + kept + "', 'x')");
  }
  RunResult dry = run_dmeval("db gc --db " + f.db);
  EXPECT_EQ(dry.exit_code, 0) << dry.output;
  EXPECT_NE(dry.output.find("would remove"), std::string::npos) << dry.output;
  EXPECT_TRUE(fs::exists(partial));
  ASSERT_EQ(run_dmeval("db gc --yes --db " + f.db).exit_code, 0);
  EXPECT_FALSE(fs::exists(partial));
  EXPECT_TRUE(fs::exists(kept));
}

TEST(DbCli, ReportTableFromRecordedRuns) {
  Fixture f;
  ASSERT_EQ(run_dmeval(f.sr("--tag t --method bicubic --dataset \"Set5 x4\"")).exit_code, 0);
  json out = run_json(f.sr("--json"));
  RunResult md = run_dmeval("report table --layout sr --db " + f.db, false);
  ASSERT_EQ(md.exit_code, 0) << md.output;
  EXPECT_NE(md.output.find("### Set5 x4"), std::string::npos) << md.output;
  char psnr[32];
  std::snprintf(psnr, sizeof psnr, "%.2f", out["mean"]["psnr"].get<double>());
  EXPECT_NE(md.output.find(psnr), std::string::npos) << md.output;
  RunResult tex = run_dmeval("report table --layout sr --format latex --with-paper --db " + f.db, false);
  ASSERT_EQ(tex.exit_code, 0);
  EXPECT_NE(tex.output.find("\\toprule"), std::string::npos) << tex.output;
  RunResult none = run_dmeval("report table --tag nothing --db " + f.db);
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.output.find("no finished runs"), std::string::npos) << none.output;
}

TEST(DbCli, RegressExitsOneOnRegressionOnly) {
  TempDir d;
  const std::string path = d.file("r.db");
  {
    db::ResultsDb r = db::ResultsDb::open(path);
    for (auto [tag, fid] : {std::pair<const char*, double>{"base", 10.0}, {"cand", 11.0}}) {
      db::RunInfo i;
      i.command_line = "x";
      i.tag = tag;
      int64_t run = r.begin_run(i);
      db::MetricRow m;
      m.name = "fid", m.value = fid, m.noise = 0.1;
      r.add_metrics(run, {m});
      r.end_run(run, "finished");
    }
  }
  RunResult bad = run_dmeval("report regress --baseline base --candidate cand --db " + path, false);
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_NE(bad.output.find("REGRESSED"), std::string::npos) << bad.output;
  RunResult ok = run_dmeval(
      "report regress --baseline base --candidate cand --threshold fid=20% --format html --db " + path,
      false);
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_NE(ok.output.find("PASS"), std::string::npos) << ok.output;
  RunResult same = run_dmeval("report regress --baseline base --candidate base --db " + path);
  EXPECT_EQ(same.exit_code, 1);
  EXPECT_NE(same.output.find("same run"), std::string::npos) << same.output;
}

TEST(DbCli, MissingDatabaseIsAClearError) {
  TempDir d;
  RunResult r = run_dmeval("db list --db " + d.file("nope.db"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("nope.db"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace dmeval
