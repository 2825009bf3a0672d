// BinaryDM through the real binary on the committed shapes UNet: a training killed with SIGKILL after
// its first checkpoint and run again ends with the same bytes (student, EMA copy, loss log) as an
// uninterrupted one; the trained model is stored and reused (no second training); and clear errors for
// --bits a method cannot run (naming the methods that can), a budget of 0 steps and missing data.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support/run.h"
#include "tests/support/temp_dir.h"

namespace dmeval {
namespace {

using namespace dmeval::test;
namespace fs = std::filesystem;

std::string bytes_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The store's training folder (<store>/<key>.safetensors.fit), or "".
std::string fit_dir(const std::string& store) {
  if (!fs::exists(store)) return "";
  for (const auto& e : fs::directory_iterator(store))
    if (e.path().extension() == ".fit") return e.path().string();
  return "";
}

// The "log" entries of train.json (every step's loss): the training curve.
std::string loss_log(const std::string& dir) {
  const std::string t = bytes_of(dir + "/train.json");
  const size_t at = t.find("\"log\"");
  return at == std::string::npos ? "" : t.substr(at, t.find(']', at) - at);
}

const std::string kModel = std::string(" --model shapes --checkpoint ") + DMEVAL_SOURCE_DIR +
                           "/profiles/shapes/shapes-unet.safetensors";
const std::string kTrain =
    " --method binarydm --bits 1/4 --calib data=shapes:64:0 --calib steps=12 --calib batch=4"
    " --calib checkpoint_every=3 --calib log_every=1 --quiet";

TEST(BinaryDmCli, KilledTrainingResumesBitIdentical) {
  TempDir dir;
  const std::string a = dir.file("store-a"), b = dir.file("store-b");
  RunResult r = run_dmeval_env("DMEVAL_CALIBRATION_DIR=" + a, "quantize" + kModel + kTrain);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string fa = fit_dir(a);
  ASSERT_FALSE(fa.empty()) << "no training folder in " << a;
  // The same training, killed once its first checkpoint is committed.
  setenv("DMEVAL_CALIBRATION_DIR", b.c_str(), 1);
  const bool killed = run_dmeval_and_kill_when("quantize" + kModel + kTrain, [&] {
    const std::string f = fit_dir(b);
    return !f.empty() && fs::exists(f + "/train.json");
  });
  unsetenv("DMEVAL_CALIBRATION_DIR");
  ASSERT_TRUE(killed) << "the training ended before its first checkpoint: make it longer";
  const std::string fb = fit_dir(b);
  const std::string partial = loss_log(fb);
  EXPECT_NE(partial, loss_log(fa)) << "killed after the end";
  r = run_dmeval_env("DMEVAL_CALIBRATION_DIR=" + b, "quantize" + kModel + kTrain);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* f : {"/model.safetensors", "/ema.safetensors"})
    EXPECT_EQ(bytes_of(fa + f), bytes_of(fb + f)) << f << " differs after the resumed training";
  EXPECT_EQ(loss_log(fa), loss_log(fb));
  // Stored and reused: a second run trains nothing.
  r = run_dmeval_env("DMEVAL_CALIBRATION_DIR=" + b, "quantize" + kModel + kTrain);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("store: "), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("calibrated now"), std::string::npos) << r.output;
}

TEST(BinaryDmCli, BadInputIsRefusedClearly) {
  TempDir dir;
  const std::string env = "DMEVAL_CALIBRATION_DIR=" + dir.file("store");
  RunResult r = run_dmeval_env(env, "quantize" + kModel + " --method ptqd --bits 1/4");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("binarydm, binary-baseline"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--bits 1/4"), std::string::npos) << r.output;
  r = run_dmeval_env(
      env, "quantize" + kModel + " --method binarydm --bits 1/4 --calib data=shapes:8 --calib steps=0");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("training budget of 0 steps"), std::string::npos) << r.output;
  r = run_dmeval_env(env, "quantize" + kModel + " --method binarydm --bits 1/4");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--calib data="), std::string::npos) << r.output;
  r = run_dmeval_env(env, "quantize" + kModel + " --method lsq --bits 1/4");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("method lsq trains weights at 2..4 bits"), std::string::npos) << r.output;
  r = run_dmeval_env(env,
                     "quantize" + kModel + " --method binarydm --bits 1/4 --calib data=/nonexistent/x.npz");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("/nonexistent/x.npz"), std::string::npos) << r.output;
}

// The latent family: training images go through the committed model's VQ encoder (loaded from the same
// file on first use), class labels from the data, then guided sampling and scoring of the binarized UNet.
TEST(BinaryDmCli, LatentModelTrainsOnItsFirstStagesLatents) {
  TempDir dir;
  RunResult r =
      run_dmeval_env("DMEVAL_CALIBRATION_DIR=" + dir.file("store"),
                     "run --profile shapes-ldm --method binarydm --bits 1/32 --calib data=shapes:32:0 "
                     "--calib steps=6 --calib "
                     "batch=2 --samples 4 --steps 5 --ref shapes:64:0 --latency-repeats 0 --e2e-repeats 0 --no-db --out " +
                         dir.file("run"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("training binarydm W1A32 for 6 steps"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("| binarydm | 1/32 |"), std::string::npos) << r.output;
}

TEST(BinaryDmCli, ModelInfoShowsTheBinarizationAccounting) {
  RunResult r = run_dmeval("model-info" + kModel + " --json", false);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* k : {"\"binarydm\"", "\"size_mb\"", "\"ops_g\"", "\"ops_formula\"", "\"construction\""})
    EXPECT_NE(r.output.find(k), std::string::npos) << k << " missing in " << r.output.substr(0, 400);
}

}  // namespace
}  // namespace dmeval
