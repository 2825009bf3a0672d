// Profiles are data files: one added in a folder (no rebuild) is listed by `dmeval run --list-profiles`
// and runs, with every effective value's source recorded; a bad file is refused naming the file and
// the key; `run` takes --sampler like every generating command; the layering is defaults -> profile ->
// command line.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "tests/support/run.h"
#include "tests/support/temp_dir.h"

namespace dmeval {
namespace {

using namespace dmeval::test;
using json = nlohmann::json;
namespace fs = std::filesystem;

class ProfileCli : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("DMEVAL_CALIBRATION_DIR", dir_.file("store").c_str(), 1);
    setenv("DMEVAL_DB", dir_.file("default.db").c_str(), 1);
    RunResult r =
        run_dmeval("train-classifier --steps 5 --batch 16 --quiet --out " + dir_.file("net.safetensors"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    fs::create_directories(dir_.file("profiles"));
    env_ = "DMEVAL_PROFILES_DIR=" + dir_.file("profiles") + " HOME=" + dir_.path();
  }
  // Writes profiles/<name>/profile.json and returns its path.
  std::string write_profile(const std::string& name, const json& j) {
    fs::create_directories(dir_.file("profiles/" + name));
    const std::string path = dir_.file("profiles/" + name + "/profile.json");
    std::ofstream(path) << j.dump(1);
    return path;
  }
  json tiny() const {
    return {{"name", "tiny"},
            {"summary", "a test profile: random shapes UNet, 5 steps, 10 samples"},
            {"options",
             {{"model", "shapes"},
              {"random_weights", 1},
              {"steps", 5},
              {"samples", 10},
              {"batch", 5},
              {"chunk", 10},
              {"network_weights", "net.safetensors"},
              {"ref", "shapes:32"},
              {"latency_repeats", 0},
              {"bootstrap", 0}}},
            {"why", {{"steps", "a test: seconds, not minutes"}}},
            {"files",
             {{"network_weights", {{"role", "feature network weights"}, {"how", "the test copies it"}}}}},
            {"calib", {{"baseline", {"traj_images=4"}}}}};
  }
  TempDir dir_;
  std::string env_;
};

TEST_F(ProfileCli, AddedProfileFileIsListedAndRuns) {
  const std::string file = write_profile("tiny", tiny());
  fs::copy_file(dir_.file("net.safetensors"), dir_.file("profiles/tiny/net.safetensors"));
  RunResult list = run_dmeval_env(env_, "run --list-profiles");
  ASSERT_EQ(list.exit_code, 0) << list.output;
  EXPECT_NE(list.output.find("tiny: a test profile"), std::string::npos) << list.output;
  EXPECT_NE(list.output.find(file), std::string::npos) << list.output;
  EXPECT_NE(list.output.find("why: a test: seconds, not minutes"), std::string::npos) << list.output;
  EXPECT_NE(list.output.find("shapes:"), std::string::npos) << list.output;  // the embedded ones stay listed

  // Runs: profile values fill what the command line leaves unset; the command line wins.
  const std::string out = dir_.file("runs/a");
  RunResult r =
      run_dmeval_env(env_, "run --profile tiny --method fp --no-db --quiet --json --samples 12 --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json res = json::parse(r.output.substr(r.output.find('{')));
  EXPECT_EQ(res["samples"], 12);
  EXPECT_EQ(res["steps"], 5);
  EXPECT_TRUE(res["fid[shapes-net]"].is_number()) << res.dump();
  // Every effective value is recorded with where it came from.
  const json saved = json::parse(std::ifstream(out + "/options.json"));
  EXPECT_EQ(saved["options"]["steps"], 5);
  EXPECT_EQ(saved["options"]["samples"], 12);
  EXPECT_EQ(saved["sources"]["samples"], "command line");
  EXPECT_NE(saved["sources"]["steps"].get<std::string>().find("profile tiny (" + file + ")"),
            std::string::npos)
      << saved.dump();
  EXPECT_EQ(saved["sources"]["micro_batch"], "default");
  EXPECT_EQ(saved["options"]["network_weights"], dir_.file("profiles/tiny/net.safetensors"));
  const json cell = json::parse(std::ifstream(out + "/cell.json"));
  EXPECT_EQ(cell["option_sources"]["samples"], "command line");

  // A profile given by path works the same, and an unset profile file names what it misses.
  fs::remove(dir_.file("profiles/tiny/net.safetensors"));
  r = run_dmeval_env(env_,
                     "run --profile " + file + " --method fp --no-db --quiet --out " + dir_.file("runs/b"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("profile 'tiny' needs 1 file"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("the test copies it"), std::string::npos) << r.output;
}

// The generation option group's conditioning options reach every generating command, and an
// unconditional model refuses them before any work.
TEST_F(ProfileCli, UnconditionalModelsRefuseConditioning) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--conditioning per-class=2", "--conditioning per-class=2: the model is not class-conditional"},
      {"--conditioning uniform", "--conditioning uniform: the model is not class-conditional"},
      {"--conditioning labels", "'labels' is not a conditioning source"},
      {"--guidance 3", "--guidance 3 needs a conditional model"},
  };
  for (const auto& [flags, message] : cases) {
    for (const std::string command : {"sample", "run"}) {
      const std::string out = dir_.file("cond-" + command);
      const std::string extra =
          command == "run" ? " --profile shapes --method fp --no-db --quiet" : " --quiet";
      RunResult r = run_dmeval(command + " --model shapes --random-weights 1 --samples 2 --steps 2 " + flags +
                               extra + " --out " + out);
      EXPECT_EQ(r.exit_code, 1) << command << " " << flags << ": " << r.output;
      EXPECT_NE(r.output.find(message), std::string::npos) << command << " " << flags << ": " << r.output;
      EXPECT_FALSE(fs::exists(out + "/.dmeval")) << command << " " << flags;
    }
  }
}

TEST_F(ProfileCli, BadProfileFilesAreRefusedNamingFileAndKey) {
  struct Case {
    std::string name;
    std::function<void(json&)> spoil;
    std::string key, what;
  };
  const std::vector<Case> cases = {
      {"unknown-option", [](json& j) { j["options"]["stepz"] = 5; }, "'stepz'", "unknown option"},
      {"wrong-type", [](json& j) { j["options"]["steps"] = "fifty"; }, "'steps'", "must be an integer"},
      {"wrong-type-bool", [](json& j) { j["options"]["no_ema"] = 1; }, "'no_ema'", "must be true or false"},
      {"bad-choice", [](json& j) { j["options"]["skip_type"] = "cubic"; }, "'skip_type'", "must be one of"},
      {"not-for-profiles", [](json& j) { j["options"]["method"] = "tinydm"; }, "'method'", "unknown option"},
      {"unknown-key", [](json& j) { j["colour"] = "red"; }, "'colour'", "unknown key"},
      {"summary-type", [](json& j) { j["summary"] = 3; }, "'summary'", "must be a string"},
      {"calib-setting", [](json& j) { j["calib"]["baseline"] = {"no_such_setting=1"}; }, "'calib.baseline'",
       "no_such_setting"},
      {"calib-method", [](json& j) { j["calib"]["magic"] = json::array(); }, "'calib.magic'",
       "no such method"},
      {"not-json", nullptr, "", "not valid JSON"},
  };
  for (const auto& c : cases) {
    json j = tiny();
    j["name"] = c.name;
    std::string file;
    if (c.spoil) {
      c.spoil(j);
      file = write_profile(c.name, j);
    } else {
      file = write_profile(c.name, j);
      std::ofstream(file) << "{\"name\": \"" << c.name << "\", ";  // cut short
    }
    RunResult r = run_dmeval_env(env_, "run --profile " + c.name + " --method fp --no-db --quiet --out " +
                                           dir_.file("runs/" + c.name));
    EXPECT_EQ(r.exit_code, 1) << c.name << ": " << r.output;
    EXPECT_NE(r.output.find(file), std::string::npos) << c.name << ": " << r.output;
    EXPECT_NE(r.output.find(c.key), std::string::npos) << c.name << ": " << r.output;
    EXPECT_NE(r.output.find(c.what), std::string::npos) << c.name << ": " << r.output;
    EXPECT_FALSE(fs::exists(dir_.file("runs/" + c.name))) << c.name;  // refused before any work
  }
  // Listing shows each refused file with its reason and still lists the good ones.
  RunResult list = run_dmeval_env(env_, "run --list-profiles");
  EXPECT_EQ(list.exit_code, 0) << list.output;
  EXPECT_NE(list.output.find("unknown-option: refused: " + dir_.file("profiles/unknown-option/profile.json")),
            std::string::npos)
      << list.output;
  EXPECT_NE(list.output.find("cifar10-ddim: "), std::string::npos) << list.output;
}

TEST_F(ProfileCli, RunTakesTheSamplerOption) {
  const std::string base =
      "run --model shapes --random-weights 1 --method fp --steps 3 --samples 6 --batch 3 "
      "--chunk 6 --ref shapes:32 --latency-repeats 0 --bootstrap 0 --no-db --quiet "
      "--network-weights " +
      dir_.file("net.safetensors");
  RunResult ddpm = run_dmeval(base + " --sampler ddpm --out " + dir_.file("ddpm"));
  ASSERT_EQ(ddpm.exit_code, 0) << ddpm.output;
  const json cell = json::parse(std::ifstream(dir_.file("ddpm/cell.json")));
  EXPECT_NE(cell["sampler"].get<std::string>().find("ddpm"), std::string::npos) << cell.dump();
  RunResult ddim = run_dmeval(base + " --out " + dir_.file("ddim"));
  ASSERT_EQ(ddim.exit_code, 0) << ddim.output;
  EXPECT_NE(ddim.output, ddpm.output);  // another sampler, other samples
  RunResult bad = run_dmeval(base + " --sampler euler --out " + dir_.file("x"));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("euler"), std::string::npos) << bad.output;
}

}  // namespace
}  // namespace dmeval
