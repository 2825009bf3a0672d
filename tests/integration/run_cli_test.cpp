// `dmeval run` through the binary: an interrupted run continued with the same command (or --resume),
// three shards into one folder, and three shards in separate folders combined by `dmeval merge`, all
// end with exactly the scores of one uninterrupted run; the row reaches the database with the
// feature network's provenance; profiles name what they miss; a locked database and a full disk
// lose nothing; the Inception path scores against CIFAR-10 batches; bad input is named.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support/cifar10_files.h"
#include "tests/support/golden.h"
#include "tests/support/run.h"
#include "tests/support/temp_dir.h"

namespace dmeval {
namespace {

using namespace dmeval::test;
using json = nlohmann::json;
namespace fs = std::filesystem;

class RunCli : public ::testing::Test {
 protected:
  void SetUp() override {
    // Inherited by the binary: calibrations and the default database stay in this test's folder.
    setenv("DMEVAL_CALIBRATION_DIR", dir_.file("store").c_str(), 1);
    setenv("DMEVAL_DB", dir_.file("default.db").c_str(), 1);
    // A briefly trained shapes-net (the scores only need to be deterministic here).
    RunResult r =
        run_dmeval("train-classifier --steps 5 --batch 16 --quiet --out " + dir_.file("net.safetensors"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  std::string args(const std::string& out, const std::string& method = "baseline",
                   const std::string& weights = "", std::string bits = "") const {
    if (bits.empty()) bits = method == "fp" ? "32/32" : "8/8";
    const std::string calib = method == "fp" ? ""
                                             : " --calib traj_images=8 --calib traj_steps=4 --calib cali_n=8 "
                                               "--calib cali_st=4 --calib act_init_batch=16";
    return "run --model shapes --random-weights 1 --method " + method + " --bits " + bits + calib +
           " --steps 4 --samples 30 --batch 5 --chunk 10 --ref shapes:64 --quiet --latency-repeats 1 "
           "--bootstrap 3 --network-weights " +
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

// The same fixture, a second ctest entry (profiles, bad input, a locked database, a full disk, the
// nightly script), so the two halves run in parallel.
class RunCliInputs : public RunCli {};

json scores(const json& j) {
  return {j["fid[shapes-net]"], j["sfid[shapes-net]"], j["is[shapes-net]"], j["precision[shapes-net]"],
          j["recall[shapes-net]"]};
}

TEST_F(RunCli, ResumedAndShardedRunsEqualOneRun) {
  json whole = run_json(args("whole") + " --db " + dir_.file("r.db") + " --tag test");
  ASSERT_TRUE(whole.contains("fid[shapes-net]")) << whole.dump();
  EXPECT_TRUE(whole["sfid[shapes-net]"].is_number()) << whole.dump();
  EXPECT_EQ(whole["samples"], 30);
  EXPECT_GT(whole["db_run"].get<int64_t>(), 0);
  // UNet step and whole-sampling latency at batch 1 and --batch.
  ASSERT_EQ(whole["latency"].size(), 4u) << whole["latency"].dump();
  EXPECT_EQ(whole["latency"][0]["scope"], "unet_step");
  EXPECT_EQ(whole["latency"][1]["scope"], "image");
  EXPECT_EQ(whole["latency"][2]["batch"], 5);
  EXPECT_GT(whole["latency"][1]["median_ms"].get<double>(), whole["latency"][0]["median_ms"].get<double>());
  EXPECT_TRUE(whole["metrics"]["fid[shapes-net]"]["noise"].is_number());
  // Stopped after one chunk (as a killed run leaves it), then the same command again.
  RunResult part = run_dmeval(args("resumed") + " --max-chunks 1");
  ASSERT_EQ(part.exit_code, 0) << part.output;
  EXPECT_NE(part.output.find("1 of 3 chunks done"), std::string::npos) << part.output;
  json resumed = run_json(args("resumed"));
  EXPECT_EQ(scores(resumed), scores(whole));
  // Or by folder alone: --resume continues with the saved options.
  ASSERT_EQ(run_dmeval(args("by-folder") + " --max-chunks 2").exit_code, 0);
  json by_folder = run_json("run --quiet --resume " + dir_.file("by-folder"));
  EXPECT_EQ(scores(by_folder), scores(whole));
  // Three shards, any order; the last one to finish scores.
  json last;
  for (const char* k : {"2/3", "0/3", "1/3"}) last = run_json(args("sharded") + " --shard " + k);
  EXPECT_EQ(scores(last), scores(whole));
  // The database row carries the feature network.
  RunResult show = run_dmeval("db show latest --json --db " + dir_.file("r.db"), false);
  ASSERT_EQ(show.exit_code, 0) << show.output;
  EXPECT_NE(show.output.find("shapes-net"), std::string::npos) << show.output;
  // Runs without --db went to $DMEVAL_DB.
  EXPECT_TRUE(fs::exists(dir_.file("default.db")));
}

// Shards made in separate folders (other machines) are combined by `dmeval merge`.
// The latent family through the same harness: the golden set's small class-conditional LDM (its
// config, checkpoint and first stage from $DMEVAL_GOLDEN_DIR/ldm), uniform random classes, guidance 3,
// PLMS; interrupted, resumed and sharded runs end with the scores of one run, and the identity records
// the family's sampler and uint8 conversion.
class GoldenLdmRunCli : public RunCli {
 protected:
  std::string ldm_args(const std::string& out,
                       const std::string& conditioning = "uniform --guidance 3") const {
    return "run --model " + golden_path("ldm/ldm_cond/config.json") + " --checkpoint " +
           golden_path("ldm/ldm_cond/model.ckpt") + " --first-stage " +
           golden_path("ldm/decoder/first_stage.ckpt") + " --conditioning " + conditioning +
           " --sampler plms --steps 4 --method fp --samples 24 --batch 4 "
           "--chunk 8 --ref shapes:64 --quiet --latency-repeats 1 --bootstrap 3 --network-weights " +
           dir_.file("net.safetensors") + " --out " + dir_.file(out);
  }
};

TEST_F(GoldenLdmRunCli, ResumedAndShardedRunsEqualOneRun) {
  DMEVAL_REQUIRE_GOLDEN();
  json whole = run_json(ldm_args("whole"));
  ASSERT_TRUE(whole.contains("fid[shapes-net]")) << whole.dump();
  EXPECT_EQ(whole["samples"], 24);
  const std::string identity = read_text(dir_.file("whole/cell.json"));
  EXPECT_NE(identity.find("LDM PLMS"), std::string::npos) << identity;
  EXPECT_NE(identity.find("uint8_conversion"), std::string::npos) << identity;
  EXPECT_NE(identity.find("uniform"), std::string::npos) << identity;
  ASSERT_EQ(run_dmeval(ldm_args("resumed") + " --max-chunks 1").exit_code, 0);
  json resumed = run_json(ldm_args("resumed"));
  EXPECT_EQ(scores(resumed), scores(whole));
  json last;
  for (const char* k : {"1/2", "0/2"}) last = run_json(ldm_args("sharded") + " --shard " + k);
  EXPECT_EQ(scores(last), scores(whole));
  // A class-conditional model without --conditioning, and guidance on an unconditional one.
  RunResult r = run_dmeval(ldm_args("nolabels", "none"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("needs conditioning"), std::string::npos) << r.output;
  r = run_dmeval("sample --model " + golden_path("ldm/ldm_uncond/config.json") + " --checkpoint " +
                 golden_path("ldm/ldm_uncond/model.ckpt") + " --first-stage " +
                 golden_path("ldm/decoder/first_stage.ckpt") + " --guidance 3 --samples 2 --out " +
                 dir_.file("g"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("unconditional"), std::string::npos) << r.output;
}

// Every method calibrates and samples on the latent family (tiny budgets): the class-conditional
// golden model with uniform classes and guidance 3, so that calibration trajectories carry labels and
// the unconditional rows, and PTQD's correction is fitted on the guided ε. A second run of the same
// cell takes the stored calibration; other conditioning calibrates anew.
TEST_F(GoldenLdmRunCli, EveryMethodCalibratesOnTheLatentModel) {
  DMEVAL_REQUIRE_GOLDEN();
  const std::string model = "sample --model " + golden_path("ldm/ldm_cond/config.json") + " --checkpoint " +
                            golden_path("ldm/ldm_cond/model.ckpt") + " --first-stage " +
                            golden_path("ldm/decoder/first_stage.ckpt") +
                            " --conditioning uniform --guidance 3 --steps 4 --samples 2 --bits 8/8";
  const std::string traj = " --calib traj_images=4 --calib traj_batch=4";
  const std::vector<std::pair<std::string, std::string>> methods = {
      {"baseline", traj + " --calib cali_n=4 --calib cali_st=2 --calib act_init_batch=8"},
      {"qdiffusion", traj + " --calib cali_n=4 --calib cali_st=2 --calib act_init_batch=8 --calib iters_w=2 "
                            "--calib iters_a=2 --calib batch_size=4 --calib split=false"},
      {"ptq4dm", traj + " --calib act_batch=4"},
      {"ptqd", traj +
                   " --calib cali_pairs=16 --calib weight_init_batch=8 --calib iters_w=2 --calib iters_a=2 "
                   "--calib act_init_batch=8"},
      {"tinydm", " --calib rounds=1 --calib calib_batch=2 --calib window_start=1"},
  };
  for (const auto& [method, calib] : methods) {
    SCOPED_TRACE(method);
    RunResult r =
        run_dmeval(model + " --quiet --method " + method + calib + " --out " + dir_.file("m-" + method));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(fs::exists(dir_.file("m-" + method + "/000001.png"))) << r.output;
  }
  RunResult again =
      run_dmeval(model + " --method baseline" + methods[0].second + " --out " + dir_.file("again"));
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("using the saved calibration"), std::string::npos) << again.output;
  // Other guidance: another calibration (the record names the conditioning).
  std::string other_model = model;
  other_model.replace(other_model.find("--guidance 3"), 12, "--guidance 2");
  RunResult other =
      run_dmeval(other_model + " --method baseline" + methods[0].second + " --out " + dir_.file("other"));
  ASSERT_EQ(other.exit_code, 0) << other.output;
  EXPECT_EQ(other.output.find("using the saved calibration"), std::string::npos) << other.output;
  // The calibration's own conditioning rule (PTQD's cin256 setting is per-class=4): another calibration.
  RunResult own = run_dmeval(model + " --calib-conditioning per-class=1 --method baseline" +
                             methods[0].second + " --out " + dir_.file("own"));
  ASSERT_EQ(own.exit_code, 0) << own.output;
  EXPECT_EQ(own.output.find("using the saved calibration"), std::string::npos) << own.output;
  RunResult again_own = run_dmeval(model + " --calib-conditioning per-class=1 --method baseline" +
                                   methods[0].second + " --out " + dir_.file("again-own"));
  ASSERT_EQ(again_own.exit_code, 0) << again_own.output;
  EXPECT_NE(again_own.output.find("using the saved calibration"), std::string::npos) << again_own.output;
  // Not for unconditional models.
  RunResult uncond = run_dmeval("sample --model " + golden_path("ldm/ldm_uncond/config.json") +
                                " --checkpoint " + golden_path("ldm/ldm_uncond/model.ckpt") +
                                " --first-stage " + golden_path("ldm/decoder/first_stage.ckpt") +
                                " --steps 4 --samples 2 --bits 8/8 --method baseline --calib-conditioning "
                                "per-class=1 --out " +
                                dir_.file("uncond"));
  EXPECT_NE(uncond.exit_code, 0);
  EXPECT_NE(uncond.output.find("--calib-conditioning per-class=1 needs a conditional model"),
            std::string::npos)
      << uncond.output;
}

// The embedded latent profile, offline: `dmeval run --profile shapes-ldm --method tinydm --bits 4/8`
// with its committed weights (profiles/shapes-ldm) and shapes-net (profiles/shapes), with a smaller N,
// reference and calibration budget than the profile's; interrupted, resumed and sharded runs end with
// the scores of one run, and the row names the profile's class-conditional guided sampler.
class ShapesLdmProfileCli : public RunCli {
 protected:
  std::string profile_args(const std::string& out) const {
    return "run --profile shapes-ldm --method tinydm --bits 4/8 --calib rounds=2 --calib calib_batch=2 "
           "--calib window_start=2 "
           "--steps 10 --samples 24 --batch 4 --micro-batch 4 --chunk 8 --ref shapes:64 --quiet "
           "--latency-repeats 0 "
           "--e2e-repeats 0 --bootstrap 3 --no-db --out " +
           dir_.file(out);
  }
};

TEST_F(ShapesLdmProfileCli, TinyDmRunsOfflineAndResumedAndShardedRunsEqualOneRun) {
  json whole = run_json(profile_args("whole"));
  ASSERT_TRUE(whole.contains("fid[shapes-net]")) << whole.dump();
  EXPECT_EQ(whole["samples"], 24);
  const std::string cell = read_text(dir_.file("whole/cell.json"));
  EXPECT_NE(cell.find("shapes-ldm"), std::string::npos) << cell;
  EXPECT_NE(cell.find("uniform"), std::string::npos) << cell;
  EXPECT_NE(cell.find("dmeval's construction"), std::string::npos) << cell;
  ASSERT_EQ(run_dmeval(profile_args("resumed") + " --max-chunks 1").exit_code, 0);
  json resumed = run_json(profile_args("resumed"));
  EXPECT_EQ(scores(resumed), scores(whole));
  json last;
  for (const char* k : {"2/3", "0/3", "1/3"}) last = run_json(profile_args("sharded") + " --shard " + k);
  EXPECT_EQ(scores(last), scores(whole));
  // PTQD on the profile's eta-1 sampler: its variance correction acts on the LDM DDIM's sigma.
  json ptqd = run_json(
      "run --profile shapes-ldm --method ptqd --bits 8/8 --calib traj_images=4 --calib traj_batch=4 --calib "
      "cali_pairs=16 --calib weight_init_batch=8 --calib iters_w=2 --calib iters_a=2 --calib "
      "act_init_batch=8 "
      "--steps 10 --samples 8 --batch 4 --micro-batch 4 --chunk 8 --ref shapes:64 --quiet --latency-repeats "
      "0 "
      "--e2e-repeats 0 --bootstrap 3 --no-db --out " +
      dir_.file("ptqd"));
  EXPECT_TRUE(ptqd.contains("fid[shapes-net]")) << ptqd.dump();
}

TEST_F(RunCli, MergeCombinesShardFoldersExactly) {
  json whole = run_json(args("whole") + " --no-db");
  for (int k = 0; k < 3; ++k) {
    RunResult r =
        run_dmeval(args("part" + std::to_string(k)) + " --no-db --shard " + std::to_string(k) + "/3");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  RunResult incomplete =
      run_dmeval("merge " + dir_.file("part0") + " --from " + dir_.file("part1") + " --no-db");
  EXPECT_NE(incomplete.exit_code, 0);
  EXPECT_NE(incomplete.output.find("chunks still missing"), std::string::npos) << incomplete.output;
  json merged = run_json("merge " + dir_.file("part0") + " --from " + dir_.file("part1") + " --from " +
                         dir_.file("part2") + " --quiet --db " + dir_.file("m.db"));
  EXPECT_EQ(scores(merged), scores(whole));
  EXPECT_GT(merged["db_run"].get<int64_t>(), 0);
  // Another run's folder is refused.
  ASSERT_EQ(run_dmeval(args("other", "fp") + " --no-db --shard 0/3").exit_code, 0);
  RunResult other = run_dmeval("merge " + dir_.file("part0") + " --from " + dir_.file("other") + " --no-db");
  EXPECT_NE(other.exit_code, 0);
  EXPECT_NE(other.output.find("different run"), std::string::npos) << other.output;
}

// SIGKILL once the first chunk is committed, then the same command: the scores equal an
// uninterrupted run's.
TEST_F(RunCli, KilledRunResumesToTheSameScores) {
  json whole = run_json(args("whole"));
  ASSERT_TRUE(whole.contains("fid[shapes-net]")) << whole.dump();
  const std::string out = dir_.file("killed");
  ASSERT_TRUE(run_dmeval_and_kill_at(args("killed"), out + "/.dmeval/chunks/000000.json"))
      << "the run ended before it could be killed";
  EXPECT_FALSE(fs::exists(out + "/.dmeval/chunks/000002.json")) << "killed after the last chunk";
  json resumed = run_json(args("killed"));
  EXPECT_EQ(scores(resumed), scores(whole));
}

// A sweep runs every cell once, records them under its tag, prints the TinyDM table with the
// network in the column names, and skips finished cells when run again.
TEST_F(RunCli, SweepRunsEachCellOnceAndPrintsTheTable) {
  const std::string sweep =
      "sweep --model shapes --random-weights 1 --methods fp,baseline --bits-list 8/8 --calib traj_images=8 "
      "--calib traj_steps=4 --calib cali_n=8 --calib cali_st=4 --calib act_init_batch=16 --steps 4 --samples "
      "10 "
      "--batch 5 --chunk 10 --ref shapes:32 --quiet --latency-repeats 1 --e2e-repeats 0 --network-weights " +
      dir_.file("net.safetensors") + " --out " + dir_.file("sweep") + " --db " + dir_.file("s.db") +
      " --tag t";
  RunResult first = run_dmeval(sweep);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_NE(first.output.find("2 cells run, 0 already finished"), std::string::npos) << first.output;
  EXPECT_NE(first.output.find("FID[shapes-net]"), std::string::npos) << first.output;
  EXPECT_NE(first.output.find("| 4 | 8/8 | Baseline (min-max) |"), std::string::npos) << first.output;
  EXPECT_NE(first.output.find("| 4 | 32/32 | FP |"), std::string::npos) << first.output;
  EXPECT_TRUE(fs::exists(dir_.file("sweep/baseline-W8A8-4steps-n10/cell.json")));
  // The reduced calibration is recorded with the run and stated under the table.
  const size_t note = first.output.find(
      "Baseline (min-max) (8/8) calibrated with settings changed from the method's "
      "defaults: ");
  ASSERT_NE(note, std::string::npos) << first.output;
  EXPECT_NE(first.output.substr(note, first.output.find('\n', note) - note).find("traj_images=8"),
            std::string::npos)
      << first.output;
  RunResult again = run_dmeval(sweep);
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("0 cells run, 2 already finished"), std::string::npos) << again.output;
}

// The profiles fill every option; what they need and do not find is named with hashes and URLs.
TEST_F(RunCliInputs, ProfilesNameTheFilesTheyMiss) {
  TempDir empty;
  const std::string env = "-u DMEVAL_WEIGHTS DMEVAL_PROFILES_DIR=" + empty.path() + " HOME=" + empty.path();
  // The embedded default: `dmeval run --method tinydm --bits 4/8` with nothing else.
  RunResult r = run_dmeval_env(env, "run --method tinydm --bits 4/8");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("profile 'shapes' needs 2 files"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(empty.path() + "/shapes/shapes-unet.safetensors"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("shapes-net.safetensors"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("scripts/train-shapes.sh"), std::string::npos) << r.output;
  // The papers' setting: checkpoint, Inception weights and the CIFAR-10 reference, with checksums and URLs.
  r = run_dmeval_env(env, "run --profile cifar10-ddim --method qdiffusion --bits 4/8");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  for (const char* want : {"needs 3 files", "model-790000.ckpt", "1fa350b952534ae442b1d5235cce5cd3",
                           "heibox.uni-heidelberg.de", "pt_inception-2015-12-05-6726825d.pth",
                           "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
                           "cifar-10-python.tar.gz", "dmeval stats"})
    EXPECT_NE(r.output.find(want), std::string::npos) << want << " in " << r.output;
  RunResult list = run_dmeval_env(env, "run --list-profiles");
  EXPECT_EQ(list.exit_code, 0) << list.output;
  EXPECT_NE(list.output.find("(missing)"), std::string::npos) << list.output;
  EXPECT_NE(list.output.find("cifar10-ddim"), std::string::npos) << list.output;
  r = run_dmeval("run --profile imagenet --method fp");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("shapes, cifar10-ddim"), std::string::npos) << r.output;
}

// The Inception path of the cifar10-ddim profile at toy scale: random Inception weights in the real
// layout, CIFAR-10 batches written in the python format, `dmeval stats --features` for the reference.
TEST_F(RunCliInputs, InceptionScoresAgainstCifar10Batches) {
  const std::string weights =
      std::string(DMEVAL_SOURCE_DIR) + "/../shared/golden/inception/inception-random.pth";
  if (!fs::exists(weights)) GTEST_SKIP() << "../shared/golden/inception/inception-random.pth is absent";
  const std::string cifar = dir_.file("cifar-10-batches-py");
  fs::create_directories(cifar);
  for (int k = 1; k <= 5; ++k) {
    std::ofstream(cifar + "/data_batch_" + std::to_string(k), std::ios::binary)
        << cifar10_python_batch(cifar10_test_planes(2, k), {k, k + 1});
  }
  const std::string ref = dir_.file("cifar10-train.npz");
  RunResult st =
      run_dmeval("stats " + cifar + " --sfid --features --allow-unknown-weights --batch 5 --weights " +
                 weights + " -o " + ref);
  ASSERT_EQ(st.exit_code, 0) << st.output;
  EXPECT_NE(st.output.find("of 10 images"), std::string::npos) << st.output;
  const std::string common =
      "run --model shapes --random-weights 2 --method fp --steps 2 --samples 6 --batch 3 "
      "--chunk 3 --network inception --network-weights " +
      weights + " --allow-unknown-weights --feature-batch 3 --latency-repeats 0 --bootstrap 0 --quiet";
  json r = run_json(common + " --ref " + ref + " --out " + dir_.file("inc") + " --db " + dir_.file("i.db"));
  for (const char* m : {"fid", "sfid", "is", "precision", "recall"})
    EXPECT_TRUE(r[m].is_number()) << m << ": " << r.dump();
  EXPECT_FALSE(r.contains("fid[shapes-net]"));
  EXPECT_NE(r["feature_network"].get<std::string>().find("FID Inception"), std::string::npos);
  // The same run against the batches themselves (reference computed and cached by the run) agrees.
  json direct = run_json(common + " --ref " + cifar + " --out " + dir_.file("inc2") + " --no-db");
  EXPECT_NEAR(direct["fid"].get<double>(), r["fid"].get<double>(), 1e-3 * (1 + r["fid"].get<double>()));
  // A reference made with another preprocessing is refused, naming both.
  RunResult other =
      run_dmeval("stats " + cifar + " --mode clean --allow-unknown-weights --batch 5 --weights " + weights +
                 " -o " + dir_.file("clean.npz"));
  ASSERT_EQ(other.exit_code, 0) << other.output;
  RunResult refused = run_dmeval(common + " --ref " + dir_.file("clean.npz") + " --out " + dir_.file("inc3"));
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.output.find("clean"), std::string::npos) << refused.output;
  EXPECT_NE(refused.output.find("pytorch-fid"), std::string::npos) << refused.output;
}

// Another process holds the database's write lock: the run waits (busy timeout), then says so and
// keeps its features; `dmeval merge` records the same scores once the lock is gone.
TEST_F(RunCliInputs, LockedDatabaseLosesNothing) {
  const std::string db = dir_.file("locked.db");
  json first = run_json(args("first", "fp") + " --db " + db);
  ASSERT_TRUE(first.contains("db_run")) << first.dump();
  sqlite3* holder = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &holder), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(holder, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK)
      << sqlite3_errmsg(holder);
  RunResult r = run_dmeval_env("DMEVAL_DB_BUSY_TIMEOUT_MS=300", args("locked") + " --db " + db);
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("locked"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("busy timeout"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("dmeval merge"), std::string::npos) << r.output;
  sqlite3_exec(holder, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(holder);
  json recorded = run_json("merge " + dir_.file("locked") + " --quiet");
  json whole = run_json(args("whole") + " --no-db");
  EXPECT_EQ(scores(recorded), scores(whole));
  EXPECT_GT(recorded["db_run"].get<int64_t>(), first["db_run"].get<int64_t>());
}

// The disk fills while saving samples: the error names the file and the cause, and the committed
// chunks are kept. A real full disk where the sandbox allows a private tmpfs, else a file-size limit.
TEST_F(RunCliInputs, FullDiskWhileSavingSamples) {
  const std::string out = dir_.file("full");
  const std::string cmd = std::string(DMEVAL_BIN) + " " + args("full", "fp") + " --no-db --save-samples ";
  RunResult r;
  RunResult probe =
      run_shell("unshare --user --map-root-user --mount sh -c 'mount -t tmpfs -o size=64k tmpfs " +
                dir_.path() + " && echo ok' 2>&1");
  std::string expect;
  if (probe.output.find("ok") != std::string::npos) {
    fs::create_directories(dir_.file("small"));
    r = run_shell("unshare --user --map-root-user --mount sh -c 'mount -t tmpfs -o size=48k tmpfs " +
                  dir_.file("small") + " && exec " + cmd + dir_.file("small") + "' 2>&1");
    expect = "No space left on device";
  } else {
    // Every file counts against the limit here, so the first to fail may be a feature chunk.
    r = run_shell("sh -c 'trap \"\" XFSZ; ulimit -f 64; exec " + cmd + dir_.file("samples") + "' 2>&1");
    expect = "File too large";
  }
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(": write failed: " + expect), std::string::npos) << r.output;
  if (expect == "No space left on device")
    EXPECT_NE(r.output.find(".png: write failed"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("chunks are committed and kept"), std::string::npos) << r.output;
}

// scripts/nightly: the first night is the baseline, an unchanged second night passes, a night that
// loses a cell fails; each writes its table and reports.
TEST_F(RunCliInputs, NightlyComparesWithThePreviousNight) {
  const std::string script = std::string(DMEVAL_SOURCE_DIR) + "/scripts/nightly";
  const std::string env = "DMEVAL_BIN=" + std::string(DMEVAL_BIN) + " NIGHTLY_DIR=" + dir_.file("nightly") +
                          " NIGHTLY_METHODS=fp,baseline ";
  const std::string opts =
      " --random-weights 1 --samples 10 --steps 4 --batch 5 --chunk 10 --ref shapes:32 --calib traj_images=8 "
      "--calib cali_n=8 --calib cali_st=4 --calib act_init_batch=16 --latency-repeats 0 --network-weights " +
      dir_.file("net.safetensors") + " 2>&1";
  RunResult first = run_shell(env + "NIGHTLY_BITS=8/8 NIGHTLY_TAG=nightly-1 " + script + opts);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_NE(first.output.find("nightly-1 is the baseline"), std::string::npos) << first.output;
  EXPECT_TRUE(fs::exists(dir_.file("nightly/nightly-1/report.html")));
  RunResult second = run_shell(env + "NIGHTLY_BITS=8/8 NIGHTLY_TAG=nightly-2 " + script + opts);
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_NE(second.output.find("comparing with nightly-1"), std::string::npos) << second.output;
  std::ifstream md(dir_.file("nightly/nightly-2/regress.md"));
  std::stringstream text;
  text << md.rdbuf();
  EXPECT_NE(text.str().find("nightly-2 vs nightly-1 — PASS"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("baseline W8A8, 4 steps, N=10"), std::string::npos) << text.str();
  EXPECT_TRUE(fs::exists(dir_.file("nightly/nightly-2/regress.html")));
  RunResult third = run_shell(env + "NIGHTLY_BITS=4/8 NIGHTLY_TAG=nightly-3 " + script + opts);
  EXPECT_EQ(third.exit_code, 1) << third.output;
  EXPECT_NE(third.output.find("REGRESSION against nightly-2"), std::string::npos) << third.output;
}

TEST_F(RunCliInputs, BadInput) {
  RunResult r = run_dmeval(args("bad", "gptq"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("tinydm"), std::string::npos) << "lists the methods: " << r.output;
  r = run_dmeval(args("bad2", "baseline", "", "3/x"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--bits"), std::string::npos) << r.output;
  r = run_dmeval(args("bad2b", "tinydm", "", "1/8"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("does not support --bits 1/8"), std::string::npos) << r.output;
  r = run_dmeval(args("bad3", "baseline", dir_.file("missing.safetensors")));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("missing.safetensors"), std::string::npos) << r.output;
  r = run_dmeval(args("bad4") + " --ref cifar10-train");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--ref"), std::string::npos) << r.output;
  r = run_dmeval("run --quiet --resume " + dir_.file("nothing"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("not a dmeval run folder"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace dmeval
