// The results database on real SQLite files: migrations from an older schema, a newer schema
// refused, several processes writing at once (no lost or duplicated rows), a process killed in the
// middle of a transaction (consistent file, run marked interrupted), corrupt / read-only / locked
// files giving errors that name the file, and run references (id, latest, previous, tag).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "core/error.h"
#include "db/results.h"
#include "db/schema.h"
#include "db/sqlite.h"
#include "tests/support/temp_dir.h"

namespace dmeval::db {
namespace {

using test::TempDir;

int64_t count(Connection& c, const std::string& sql) {
  Statement s(c, sql);
  EXPECT_TRUE(s.step());
  return s.int64(0);
}

RunInfo info(const std::string& tag) {
  RunInfo i;
  i.command_line = "dmeval test";
  i.tag = tag;
  i.host = this_host();
  i.pid = getpid();
  return i;
}

MetricRow metric(const std::string& name, double v) {
  MetricRow m;
  m.name = name;
  m.value = v;
  m.n = 1;
  return m;
}

TEST(DbSchema, MigratesAVersion1FileKeepingItsRows) {
  TempDir d;
  const std::string path = d.file("old.db");
  {
    Connection c = Connection::open(path);
    migrate(c, 1);
    ASSERT_EQ(c.user_version(), 1);
    c.exec(
        "INSERT INTO runs (started_at, status, command_line) VALUES ('2026-01-01T00:00:00Z', 'finished', "
        "'old')");
    c.exec(
        "INSERT INTO metrics (run_id, name, value, created_at) VALUES (1, 'fid', 12.5, "
        "'2026-01-01T00:00:00Z')");
  }
  ResultsDb r = ResultsDb::open(path);
  EXPECT_EQ(r.connection().user_version(), latest_schema_version());
  EXPECT_EQ(count(r.connection(),
                  "SELECT count(*) FROM metrics WHERE name = 'fid' AND value = 12.5 AND item IS NULL"),
            1);
  // The new columns are usable.
  int64_t run = r.begin_run(info("new"));
  MetricRow m = metric("psnr", 30.0);
  m.item = "baby";
  r.add_metrics(run, {m});
  EXPECT_EQ(count(r.connection(), "SELECT count(*) FROM metrics WHERE item = 'baby'"), 1);
  EXPECT_EQ(count(r.connection(), "PRAGMA foreign_keys"), 1);
  Statement jm(r.connection(), "PRAGMA journal_mode");
  ASSERT_TRUE(jm.step());
  EXPECT_EQ(jm.text(0), "wal");
}

TEST(DbSchema, RefusesANewerSchema) {
  TempDir d;
  const std::string path = d.file("new.db");
  { ResultsDb::open(path).connection().exec("PRAGMA user_version = 99"); }
  try {
    ResultsDb::open(path);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("99"), std::string::npos) << msg;
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
  }
}

TEST(DbConcurrency, SeveralProcessesWriteWithoutLosingRows) {
  TempDir d;
  const std::string path = d.file("shared.db");
  { ResultsDb::open(path); }
  constexpr int kProcs = 4, kRows = 40;
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int code = 0;
      try {
        ResultsDb r = ResultsDb::open(path);
        int64_t run = r.begin_run(info("proc" + std::to_string(p)));
        for (int i = 0; i < kRows; ++i) r.add_metrics(run, {metric("m", p * 1000 + i)});
        r.end_run(run, "finished");
      } catch (const std::exception& e) {
        std::fprintf(stderr, "child %d: %s\n", p, e.what());
        code = 1;
      }
      _exit(code);
    }
    kids.push_back(pid);
  }
  for (pid_t k : kids) {
    int status = 0;
    waitpid(k, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  ResultsDb r = ResultsDb::open(path);
  auto& c = r.connection();
  EXPECT_EQ(count(c, "SELECT count(*) FROM runs WHERE status = 'finished'"), kProcs);
  EXPECT_EQ(count(c, "SELECT count(*) FROM metrics"), kProcs * kRows);
  EXPECT_EQ(count(c, "SELECT count(DISTINCT value) FROM metrics"), kProcs * kRows);
  EXPECT_EQ(count(c, "SELECT count(*) FROM (SELECT run_id FROM metrics GROUP BY run_id HAVING count(*) = " +
                         std::to_string(kRows) + ")"),
            kProcs);
}

TEST(DbRecovery, KilledMidTransactionLeavesAConsistentFileAndAnInterruptedRun) {
  TempDir d;
  const std::string path = d.file("killed.db");
  { ResultsDb::open(path); }
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ResultsDb r = ResultsDb::open(path);
    int64_t run = r.begin_run(info("killed"));
    r.add_metrics(run, {metric("committed", 1.0)});
    Transaction t(r.connection());
    Statement s(r.connection(),
                "INSERT INTO metrics (run_id, name, value, created_at) VALUES (?, 'lost', 2.0, 'x')");
    for (int i = 0; i < 100; ++i) {
      s.reset();
      s.bind(1, run).run();
    }
    raise(SIGKILL);  // no commit, no cleanup
    _exit(3);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  ResultsDb r = ResultsDb::open(path);
  auto& c = r.connection();
  Statement ic(c, "PRAGMA integrity_check");
  ASSERT_TRUE(ic.step());
  EXPECT_EQ(ic.text(0), "ok");
  EXPECT_EQ(count(c, "SELECT count(*) FROM metrics WHERE name = 'committed'"), 1);
  EXPECT_EQ(count(c, "SELECT count(*) FROM metrics WHERE name = 'lost'"), 0);
  Statement st(c, "SELECT status, error FROM runs WHERE tag = 'killed'");
  ASSERT_TRUE(st.step());
  EXPECT_EQ(st.text(0), "interrupted");
  EXPECT_NE(st.text(1).find("killed"), std::string::npos);
}

TEST(DbErrors, CorruptFileIsNamed) {
  TempDir d;
  const std::string path = d.write("corrupt.db", std::string(4096, 'x'));
  try {
    ResultsDb::open(path);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("not an SQLite database"), std::string::npos) << msg;
  }
}

TEST(DbErrors, ReadOnlyDatabaseIsNamed) {
  TempDir d;
  const std::string path = d.file("ro.db");
  { ResultsDb::open(path); }
  OpenOptions ro;
  ro.read_only = true;
  ResultsDb r = ResultsDb::open(path, ro);
  EXPECT_EQ(r.list_runs().size(), 0u);  // reading works
  try {
    r.begin_run(info("x"));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("read-only"), std::string::npos) << msg;
  }
  if (geteuid() != 0) {  // root ignores file permissions
    chmod(d.path().c_str(), 0555);
    chmod(path.c_str(), 0444);
    EXPECT_THROW(ResultsDb::open(path).begin_run(info("y")), Error);
    chmod(d.path().c_str(), 0755);
  }
}

TEST(DbErrors, LockedDatabaseSaysWhy) {
  TempDir d;
  const std::string path = d.file("locked.db");
  ResultsDb a = ResultsDb::open(path);
  Transaction hold(a.connection());  // another writer holds the lock
  OpenOptions quick;
  quick.busy_timeout_ms = 100;
  try {
    ResultsDb b = ResultsDb::open(path, quick);
    b.begin_run(info("late"));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("locked"), std::string::npos) << msg;
    EXPECT_NE(msg.find("busy timeout"), std::string::npos) << msg;
  }
}

TEST(DbRuns, ReferencesResolve) {
  TempDir d;
  ResultsDb r = ResultsDb::open(d.file("runs.db"));
  int64_t a = r.begin_run(info("nightly"));
  r.end_run(a, "finished");
  int64_t b = r.begin_run(info("nightly"));
  r.end_run(b, "finished");
  int64_t c = r.begin_run(info("other"));
  r.end_run(c, "failed", "boom");
  EXPECT_EQ(r.resolve_run("latest"), b);
  EXPECT_EQ(r.resolve_run("previous"), a);
  EXPECT_EQ(r.resolve_run("nightly"), b);
  EXPECT_EQ(r.resolve_run(std::to_string(c)), c);
  EXPECT_THROW(r.resolve_run("other"), Error);  // no finished run with that tag
  EXPECT_THROW(r.resolve_run("999"), Error);
  EXPECT_THROW(r.end_run(a, "running"), Error);
  ReferenceSet ref{"Set5", "/x/Set5/HR", "images", "abc", 5};
  EXPECT_EQ(r.add_reference_set(ref), r.add_reference_set(ref));
  EXPECT_EQ(r.list_runs("nightly").size(), 2u);
}

}  // namespace
}  // namespace dmeval::db
