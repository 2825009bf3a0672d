// `dmeval run` through the binary: an interrupted run continued with the same command, and three
// shards into one folder, end with exactly the scores of one uninterrupted run; the row reaches the
// database with the feature network's provenance; bad input is named.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <thread>

#include "tests/support/run.h"
#include "tests/support/temp_dir.h"

namespace dmeval {
namespace {

using namespace dmeval::test;
using json = nlohmann::json;

class RunCli : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("DMEVAL_CALIBRATION_DIR", dir_.file("store").c_str(), 1);  // inherited by the binary
    // A briefly trained shapes-net (the scores only need to be deterministic here).
    RunResult r =
        run_dmeval("train-classifier --steps 5 --batch 16 --quiet --out " + dir_.file("net.safetensors"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  std::string args(const std::string& out, const std::string& method = "baseline",
                   const std::string& weights = "") const {
    return "run --model shapes --random-weights 1 --method " + method +
           " --bits 8/8 --calib traj_images=8 "
           "--calib traj_steps=4 --calib cali_n=8 --calib cali_st=4 --calib act_init_batch=16 --steps 4 "
           "--samples 30 --batch 5 --chunk 10 --ref shapes:64 --quiet --network-weights " +
           (weights.empty() ? dir_.file("net.safetensors") : weights) + " --out " + dir_.file(out);
  }
  json run_json(const std::string& a) {
    RunResult q = run_dmeval(a + " --json", false);
    EXPECT_EQ(q.exit_code, 0) << q.output;
    return q.output.find('{') == std::string::npos ? json()
                                                   : json::parse(q.output.substr(q.output.find('{')));
  }
  TempDir dir_;
};

json scores(const json& j) {
  return {j["fid[shapes-net]"], j["is[shapes-net]"], j["precision[shapes-net]"], j["recall[shapes-net]"]};
}

TEST_F(RunCli, ResumedAndShardedRunsEqualOneRun) {
  json whole = run_json(args("whole") + " --db " + dir_.file("r.db") + " --tag test");
  ASSERT_TRUE(whole.contains("fid[shapes-net]")) << whole.dump();
  EXPECT_EQ(whole["samples"], 30);
  EXPECT_GT(whole["db_run"].get<int64_t>(), 0);
  ASSERT_EQ(whole["latency_cpu"].size(), 2u);  // batch 1 and --batch
  EXPECT_EQ(whole["latency_cpu"][1]["batch"], 5);
  EXPECT_GT(whole["latency_cpu"][0]["unet_step_ms"].get<double>(), 0);
  // Stopped after one chunk (as a killed run leaves it), then the same command again.
  RunResult part = run_dmeval(args("resumed") + " --max-chunks 1");
  ASSERT_EQ(part.exit_code, 0) << part.output;
  EXPECT_NE(part.output.find("1 of 3 chunks done"), std::string::npos) << part.output;
  json resumed = run_json(args("resumed"));
  EXPECT_EQ(scores(resumed), scores(whole));
  // Three shards, any order; the last one to finish scores.
  json last;
  for (const char* k : {"2/3", "0/3", "1/3"}) last = run_json(args("sharded") + " --shard " + k);
  EXPECT_EQ(scores(last), scores(whole));
  // The database row carries the feature network.
  RunResult show = run_dmeval("db show latest --json --db " + dir_.file("r.db"), false);
  ASSERT_EQ(show.exit_code, 0) << show.output;
  EXPECT_NE(show.output.find("shapes-net"), std::string::npos) << show.output;
}

// SIGKILL once the first chunk is committed, then the same command: the scores equal an
// uninterrupted run's.
TEST_F(RunCli, KilledRunResumesToTheSameScores) {
  json whole = run_json(args("whole"));
  ASSERT_TRUE(whole.contains("fid[shapes-net]")) << whole.dump();
  const std::string out = dir_.file("killed");
  ASSERT_TRUE(run_dmeval_and_kill_at(args("killed"), out + "/.dmeval/chunks/000000.json"))
      << "the run ended before it could be killed";
  EXPECT_FALSE(std::filesystem::exists(out + "/.dmeval/chunks/000002.json")) << "killed after the last chunk";
  json resumed = run_json(args("killed"));
  EXPECT_EQ(scores(resumed), scores(whole));
}

// A sweep runs every cell once, records them under its tag, prints the table with the network in
// the column names, and skips finished cells when run again.
TEST_F(RunCli, SweepRunsEachCellOnceAndPrintsTheTable) {
  const std::string sweep =
      "sweep --model shapes --random-weights 1 --methods fp,baseline --bits-list 8/8 --calib traj_images=8 "
      "--calib traj_steps=4 --calib cali_n=8 --calib cali_st=4 --calib act_init_batch=16 --steps 4 --samples "
      "10 "
      "--batch 5 --chunk 10 --ref shapes:32 --quiet --latency-repeats 1 --network-weights " +
      dir_.file("net.safetensors") + " --out " + dir_.file("sweep") + " --db " + dir_.file("s.db") +
      " --tag t";
  RunResult first = run_dmeval(sweep);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_NE(first.output.find("2 cells run, 0 already finished"), std::string::npos) << first.output;
  EXPECT_NE(first.output.find("fid[shapes-net]"), std::string::npos) << first.output;
  EXPECT_NE(first.output.find("| baseline | 8/8 |"), std::string::npos) << first.output;
  RunResult again = run_dmeval(sweep);
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("0 cells run, 2 already finished"), std::string::npos) << again.output;
}

TEST_F(RunCli, BadInput) {
  RunResult r = run_dmeval(args("bad", "gptq"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("tinydm"), std::string::npos) << "lists the methods: " << r.output;
  r = run_dmeval(args("bad2") + " --bits 3/x");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--bits"), std::string::npos) << r.output;
  r = run_dmeval(args("bad3", "baseline", dir_.file("missing.safetensors")));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("missing.safetensors"), std::string::npos) << r.output;
  r = run_dmeval(args("bad4") + " --ref cifar10-train");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--ref"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace dmeval
