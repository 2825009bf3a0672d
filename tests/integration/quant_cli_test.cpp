// `dmeval quantize` and quantized `dmeval sample` through the real binary on the golden small UNet:
// calibration saved to and reused from the store (identical results), quantized sampling that is
// deterministic and differs from the float samples, q-diffusion's checkpoint layout exported and
// imported back to the same model, and clear errors for unsupported bits, a calibration of another
// model or other bits, a truncated calibration file and unknown settings.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support/golden.h"
#include "tests/support/run.h"
#include "tests/support/temp_dir.h"

namespace dmeval {
namespace {

using namespace dmeval::test;
using json = nlohmann::json;
namespace fs = std::filesystem;

class QuantCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (golden_dir().empty()) GTEST_SKIP() << "golden data not found";
    env_ = "DMEVAL_CALIBRATION_DIR=" + dir_.file("store") + " ";
    model_ = " --config " + golden_path("generators/unet_small/config.json") + " --checkpoint " +
             golden_path("generators/unet_small/weights.pt");
  }
  RunResult dmeval(const std::string& args, bool with_stderr = true) {
    return run_dmeval_env(env_, args, with_stderr);
  }
  static RunResult run_dmeval_env(const std::string& env, const std::string& args, bool with_stderr) {
    std::string cmd = env + std::string(DMEVAL_BIN) + " " + args + (with_stderr ? " 2>&1" : " 2>/dev/null");
    RunResult r;
    FILE* p = popen(cmd.c_str(), "r");
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
    int status = pclose(p);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
  }
  TempDir dir_;
  std::string env_, model_;
};

const std::string kBaseline =
    " --method baseline --calib traj_images=8 --calib traj_steps=10 --calib cali_n=8 --calib cali_st=5"
    " --calib act_init_batch=16 --quiet";
const std::string kQdiff =
    " --method qdiffusion --calib traj_images=8 --calib traj_steps=10 --calib cali_n=8 --calib cali_st=5"
    " --calib iters_w=10 --calib iters_a=5 --calib batch_size=8 --calib act_init_batch=16 --quiet";

std::string bytes_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST_F(QuantCli, StoreReuseAndQuantizedSampling) {
  RunResult r =
      dmeval("quantize" + model_ + kBaseline + " --bits 8/8 --json -o " + dir_.file("b8.safetensors"), false);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  json first = json::parse(r.output);
  EXPECT_EQ(first["calibration_source"], "calibrated now");
  ASSERT_TRUE(first.contains("calibration_saved"));
  EXPECT_TRUE(fs::exists(first["calibration_saved"].get<std::string>()));
  EXPECT_LT(first["size_mb"].get<double>(), first["fp32_mb"].get<double>() / 3);
  EXPECT_GT(first["size_mb_with_scales"].get<double>(), first["size_mb"].get<double>());
  r = dmeval("quantize" + model_ + kBaseline + " --bits 8/8 --json", false);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  json again = json::parse(r.output);
  EXPECT_EQ(again["calibration_source"].get<std::string>().rfind("store: ", 0), 0u) << again.dump();
  EXPECT_EQ(again["eps_error"], first["eps_error"]);
  EXPECT_EQ(again["calibration_key"], first["calibration_key"]);

  // Quantized sampling from the written file, twice; float sampling differs.
  const std::string sample = "sample" + model_ + " --steps 5 --samples 4 --batch 4 --micro-batch 4 --quiet";
  r = dmeval(sample + " --method baseline --bits 8/8 --calibration " + dir_.file("b8.safetensors") +
             " --out " + dir_.file("q1"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // The same settings as the quantize run (the trajectory sampler defaults to the sampling one otherwise):
  // the calibration is found in the store.
  r = dmeval(sample + kBaseline + " --calib traj_skip=quad --bits 8/8 --out " + dir_.file("q2"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = dmeval(sample + " --out " + dir_.file("fp"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (int i = 0; i < 4; ++i) {
    const std::string f = "/00000" + std::to_string(i) + ".png";
    EXPECT_TRUE(bytes_of(dir_.file("q1") + f) == bytes_of(dir_.file("q2") + f)) << f;
    if (i == 0) EXPECT_TRUE(bytes_of(dir_.file("q1") + f) != bytes_of(dir_.file("fp") + f));
  }
  const std::string run = bytes_of(dir_.file("q1/.dmeval/run.json"));
  EXPECT_NE(run.find("\"method\": \"baseline\""), std::string::npos) << run;
  EXPECT_NE(run.find(first["calibration_key"].get<std::string>()), std::string::npos) << run;
}

// TinyDM end to end through the binary: `sample --method tinydm` calibrates for the sampling sampler
// (its step-indexed ranges), stores the frozen state and reuses it; another step count is refused;
// `quantize` reports the sizes; the attention variant is labelled as dmeval's construction.
TEST_F(QuantCli, TinyDMSampleStoreAndSamplerCheck) {
  const std::string calib = " --calib window_start=4 --calib rounds=2 --calib calib_batch=2 --quiet";
  const std::string sample = "sample" + model_ + " --steps 8 --samples 3 --batch 3 --micro-batch 3";
  RunResult r = dmeval(sample + " --method tinydm --bits 4/8" + calib + " --out " + dir_.file("t1"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = dmeval(sample + " --method tinydm --bits 4/8" + calib + " --out " + dir_.file("t2"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (int i = 0; i < 3; ++i) {
    const std::string f = "/00000" + std::to_string(i) + ".png";
    EXPECT_TRUE(bytes_of(dir_.file("t1") + f) == bytes_of(dir_.file("t2") + f)) << f;
  }
  const std::string run = bytes_of(dir_.file("t1/.dmeval/run.json"));
  EXPECT_NE(run.find("\"method\": \"tinydm\""), std::string::npos) << run;
  EXPECT_NE(run.find("weight_grid"), std::string::npos) << "the decisions are recorded: " << run;

  r = dmeval("quantize" + model_ +
                 " --method tinydm --bits 4/8 --calib traj_steps=8 --calib traj_skip=uniform" + calib +
                 " --json -o " + dir_.file("t.safetensors"),
             false);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  json q = json::parse(r.output);
  EXPECT_EQ(q["calibration_source"].get<std::string>().rfind("store: ", 0), 0u) << q.dump();
  EXPECT_GT(q["size_mb_with_scales"].get<double>(), q["size_mb"].get<double>());
  EXPECT_LT(q["size_mb"].get<double>(), q["fp32_mb"].get<double>());
  // The calibration holds ranges for 8 steps: a 10-step sampler is refused, naming the cause.
  r = dmeval("sample" + model_ +
             " --steps 10 --samples 3 --batch 3 --method tinydm --bits 4/8 --calibration " +
             dir_.file("t.safetensors") + " --quiet --out " + dir_.file("t3"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("TinyDM"), std::string::npos) << r.output;
  r = dmeval("quantize --method tinydm-attn --list-settings");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("dmeval's own construction"), std::string::npos) << r.output;
}

TEST_F(QuantCli, QDiffusionCheckpointExportAndImport) {
  RunResult r = dmeval(
      "quantize" + model_ + kQdiff + " --bits 4/8 --no-store --json --export-qdiff " + dir_.file("ckpt.pt"),
      false);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  json made = json::parse(r.output);
  ASSERT_TRUE(fs::exists(dir_.file("ckpt.pt")));
  r = dmeval("inspect " + dir_.file("ckpt.pt"), true);
  EXPECT_NE(r.output.find("model.up.0.block.0.nin_shortcut.weight_quantizer_0.alpha"), std::string::npos);
  r = dmeval("quantize" + model_ + kQdiff + " --bits 4/8 --json --import-qdiff " + dir_.file("ckpt.pt"),
             false);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  json imported = json::parse(r.output);
  EXPECT_EQ(imported["eps_error"]["mean_abs"], made["eps_error"]["mean_abs"]);
  EXPECT_EQ(imported["calibration_source"].get<std::string>().rfind("imported: ", 0), 0u);
  // A q-diffusion checkpoint of other weights is refused.
  r = dmeval("quantize --config " + golden_path("generators/unet_small/config.json") + " --random-weights 3" +
             kQdiff + " --bits 4/8 --import-qdiff " + dir_.file("ckpt.pt"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("UNet weights differ"), std::string::npos) << r.output;
}

TEST_F(QuantCli, BadInput) {
  RunResult r = dmeval("quantize" + model_ + " --method qdiffusion --bits 1/8");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("does not support") == std::string::npos ? r.output.find("not supported")
                                                                   : r.output.find("does not support"),
            std::string::npos)
      << r.output;
  r = dmeval("sample" + model_ + " --method fp --bits 4/8 --samples 2 --out " + dir_.file("x"));
  EXPECT_NE(r.output.find("method fp is float32"), std::string::npos) << r.output;
  r = dmeval("quantize" + model_ + " --method gptq --bits 4/8");
  EXPECT_NE(r.output.find("unknown method 'gptq'"), std::string::npos) << r.output;
  r = dmeval("quantize" + model_ + " --method qdiffusion --bits 4/8 --calib iters=3");
  EXPECT_NE(r.output.find("has no setting 'iters'"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("iters_w"), std::string::npos) << r.output;

  // A calibration for other bits, and one for another model (other weights: hash mismatch).
  r = dmeval("quantize" + model_ + kBaseline + " --bits 8/8 --no-store -o " + dir_.file("c.safetensors"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = dmeval("quantize" + model_ + kBaseline + " --bits 4/8 --calibration " + dir_.file("c.safetensors"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("does not match this run: bits 4/8 vs 8/8"), std::string::npos) << r.output;
  r = dmeval("quantize --config " + golden_path("generators/unet_small/config.json") + " --random-weights 1" +
             kBaseline + " --bits 8/8 --calibration " + dir_.file("c.safetensors"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("does not match this run: model"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("random:1"), std::string::npos) << r.output;
  // Truncated calibration file.
  std::string b = bytes_of(dir_.file("c.safetensors"));
  const std::string cut = dir_.write("cut.safetensors", b.substr(0, b.size() / 2));
  r = dmeval("quantize" + model_ + kBaseline + " --bits 8/8 --calibration " + cut);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("cut.safetensors"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace dmeval
