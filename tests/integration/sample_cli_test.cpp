// `dmeval sample` through the real binary on the golden small UNet (real torch.save checkpoint):
// the same 20 images, byte for byte, from batch sizes 1, 7 and 20, from 3 shards, and from a run
// killed with SIGKILL after its first chunk and restarted; exactly N images; the npz and raw
// outputs; the reference noise mode with --init-noise reproducing ddim's recorded trajectory end to
// end; bad input.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/image.h"
#include "core/npy.h"
#include "tests/support/golden.h"
#include "tests/support/run.h"
#include "tests/support/temp_dir.h"

extern char** environ;

namespace dmeval {
namespace {

using namespace dmeval::test;
namespace fs = std::filesystem;

std::string model_args() {
  return "--config " + golden_path("generators/unet_small/config.json") + " --checkpoint " +
         golden_path("generators/unet_small/weights.pt");
}

// DDIM with eta 1, so the per-step noise matters too; evaluation micro-batches of 4.
std::string sample_args(int steps = 10, int seed = 11) {
  return model_args() + " --sampler ddim --eta 1 --steps " + std::to_string(steps) + " --samples 20 --seed " +
         std::to_string(seed) + " --micro-batch 4 --quiet";
}

std::string bytes_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Image file name -> bytes, ignoring the run record.
std::map<std::string, std::string> pngs(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".png")
      out[e.path().filename().string()] = bytes_of(e.path());
  return out;
}

TEST(SampleCli, SameImagesForAnyBatchShardsAndAfterKill) {
  DMEVAL_REQUIRE_GOLDEN();
  TempDir dir;
  RunResult r = run_dmeval("sample " + sample_args() + " --batch 1 --chunk 8 --out " + dir.file("b1"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto ref = pngs(dir.file("b1"));
  ASSERT_EQ(ref.size(), 20u);  // exactly N
  EXPECT_TRUE(ref.count("000000.png") && ref.count("000019.png"));
  for (int b : {7, 20}) {
    const std::string out = dir.file("b" + std::to_string(b));
    r = run_dmeval("sample " + sample_args() + " --batch " + std::to_string(b) + " --out " + out);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(pngs(out), ref) << "batch " << b;
  }
  // Three shards into one folder, in an odd order; only the last completes the run.
  for (int k : {2, 0, 1}) {
    r = run_dmeval("sample " + sample_args() + " --batch 4 --chunk 4 --shard " + std::to_string(k) +
                   "/3 --out " + dir.file("shards"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  EXPECT_NE(r.output.find("complete: 20 images"), std::string::npos) << r.output;
  EXPECT_EQ(pngs(dir.file("shards")), ref);

  // Killed with SIGKILL once its first chunk is committed, then the same command again. More steps so
  // that a chunk takes long enough to be caught in the middle.
  const std::string out = dir.file("killed");
  const std::string args = sample_args(30) + " --batch 4 --chunk 4 --out " + out;
  r = run_dmeval("sample " + sample_args(30) + " --batch 5 --chunk 4 --out " + dir.file("plain40"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto ref40 = pngs(dir.file("plain40"));
  ASSERT_TRUE(run_dmeval_and_kill_at("sample " + args, out + "/.dmeval/chunks/000000.json", 120))
      << "the run ended before it could be killed";
  int committed = 0;
  for (int k = 0; k < 5; ++k)
    committed += fs::exists(out + "/.dmeval/chunks/00000" + std::to_string(k) + ".json");
  EXPECT_GE(committed, 1);
  EXPECT_LT(committed, 5) << "the kill came after the last chunk";
  r = run_dmeval("sample " + args);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(std::to_string(committed) + " already there"), std::string::npos) << r.output;
  EXPECT_EQ(pngs(out), ref40);
  // The images differ from the 10-step run (the test compares something real).
  EXPECT_NE(ref40.at("000003.png"), ref.at("000003.png"));
}

TEST(SampleCli, NpzAndRawOutputs) {
  DMEVAL_REQUIRE_GOLDEN();
  TempDir dir;
  RunResult r = run_dmeval("sample " + sample_args() + " --batch 3 --chunk 6 --format npz --raw-out " +
                           dir.file("raw.npy") + " --out " + dir.file("npz"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_dmeval("sample " + sample_args() + " --batch 20 --out " + dir.file("png"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  NpzReader z = NpzReader::open(dir.file("npz/samples_20x32x32x3.npz"));
  TensorData arr = z.read("arr_0");
  ASSERT_EQ(arr.dtype, DType::kUInt8);
  ASSERT_EQ(arr.shape, (std::vector<int64_t>{20, 32, 32, 3}));
  auto files = pngs(dir.file("png"));
  for (int i = 0; i < 20; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "%06d.png", i);
    Image im = decode_image_file(dir.file(std::string("png/") + name));
    ASSERT_EQ(0, std::memcmp(im.pixels.data(), arr.bytes.data() + i * 32 * 32 * 3, im.pixels.size())) << name;
  }
  TensorData raw = read_npy_file(dir.file("raw.npy"));
  EXPECT_EQ(raw.dtype, DType::kFloat32);
  EXPECT_EQ(raw.shape, (std::vector<int64_t>{20, 3, 32, 32}));
  EXPECT_FALSE(fs::exists(dir.file("npz/.dmeval/parts-npz")));  // parts removed after assembly
}

// ddim's own trajectory, end to end through the binary: x_T from the golden file, the reference noise
// stream after the recorded seed, the reference's batch as the evaluation micro-batch. The float
// samples and the PNG values equal the recorded ones.
TEST(SampleCli, ReferenceNoiseReproducesDdimRun) {
  DMEVAL_REQUIRE_GOLDEN();
  auto runs = nlohmann::json::parse(read_text(golden_path("generators/sampling/runs.json")));
  const std::string manifest = read_text(golden_path("generators/MANIFEST.md"));
  auto rel_s = regex_find(manifest, "relative ([0-9.e-]+) of max \\|x\\| for DDIM");
  auto frac_s = regex_find(manifest, "exact except ≤ ([0-9.]+) % of values");
  ASSERT_TRUE(rel_s && frac_s) << "MANIFEST sampler acceptance not found";
  const double rel = std::stod(*rel_s), frac = std::stod(*frac_s) / 100;
  TempDir dir;
  int checked = 0;
  for (const auto& run : runs["runs"]) {
    if (run["sample_type"] != "generalized" || !run["stochastic"].get<bool>()) continue;
    const std::string file = run["file"];
    const int64_t batch = runs["batch"];
    const std::string out = dir.file("run" + std::to_string(checked));
    // One thread, as the golden data was computed.
    RunResult r = run_dmeval(
        "--threads 1 sample " + model_args() + " --sampler ddim --skip-type " +
        run["skip_type"].get<std::string>() + " --steps " + std::to_string(run["timesteps_arg"].get<int>()) +
        " --eta " + std::to_string(run["eta"].get<double>()) + " --samples " + std::to_string(batch) +
        " --batch " + std::to_string(batch) + " --micro-batch " + std::to_string(batch) +
        " --noise reference --seed " + std::to_string(run["noise_seed"].get<int>()) + " --init-noise " +
        golden_path("generators/sampling/x_T.npy") + " --raw-out " + out +
        "/raw.npy --format npz --quiet --out " + out);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    NpzReader ref = NpzReader::open(golden_path("generators/sampling/" + file));
    TensorData fin = ref.read("final"), raw = read_npy_file(out + "/raw.npy");
    // The MANIFEST's sampler acceptance (bit-identical only with the reference's summation order):
    // DDIM finals within `rel` of max |x|, PNG values exact except a fraction off by one.
    ASSERT_EQ(raw.numel(), fin.numel()) << file;
    double max_ref = 0, max_d = 0;
    for (int64_t i = 0; i < fin.numel(); ++i) {
      max_ref = std::max(max_ref, std::abs(static_cast<double>(fin.data<float>()[i])));
      max_d = std::max(max_d, std::abs(static_cast<double>(raw.data<float>()[i]) - fin.data<float>()[i]));
    }
    EXPECT_LE(max_d, rel * max_ref) << file;
    NpzReader got = NpzReader::open(out + "/samples_" + std::to_string(batch) + "x32x32x3.npz");
    TensorData u8 = got.read("arr_0"), u8_ref = ref.read("final_uint8");
    ASSERT_EQ(u8.bytes.size(), u8_ref.bytes.size()) << file;
    int64_t off = 0;
    for (size_t i = 0; i < u8.bytes.size(); ++i) {
      const int d = std::abs(static_cast<int>(static_cast<uint8_t>(u8.bytes[i])) -
                             static_cast<int>(static_cast<uint8_t>(u8_ref.bytes[i])));
      EXPECT_LE(d, 1) << file << " value " << i;
      off += d != 0;
    }
    EXPECT_LE(static_cast<double>(off), frac * static_cast<double>(u8.bytes.size())) << file;
    std::printf("%s: max |d| %.3g (allowed %.3g), %lld PNG values off by one\n", file.c_str(), max_d,
                rel * max_ref, static_cast<long long>(off));
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

TEST(SampleCli, BadInput) {
  DMEVAL_REQUIRE_GOLDEN();
  TempDir dir;
  // Reusing a folder for another run.
  RunResult r = run_dmeval("sample " + sample_args() + " --out " + dir.file("o"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_dmeval("sample " + sample_args(10, 12) + " --out " + dir.file("o"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("holds a different run"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("seed: 12 now, 11 before"), std::string::npos) << r.output;
  // Reference noise cannot be sharded.
  r = run_dmeval("sample " + sample_args() + " --noise reference --shard 0/2 --out " + dir.file("ref"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("cannot be sharded"), std::string::npos) << r.output;
  // Wrong config for the checkpoint.
  r = run_dmeval("sample --model cifar10 --checkpoint " + golden_path("generators/unet_small/weights.pt") +
                 " --samples 2 --out " + dir.file("w"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("weights.pt"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("wrong shape"), std::string::npos) << r.output;
  // Truncated checkpoint.
  std::string w = bytes_of(golden_path("generators/unet_small/weights.pt"));
  const std::string trunc = dir.write("trunc.pt", w.substr(0, w.size() / 3));
  r = run_dmeval("sample " + std::string("--config ") + golden_path("generators/unet_small/config.json") +
                 " --checkpoint " + trunc + " --samples 2 --out " + dir.file("t"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("trunc.pt"), std::string::npos) << r.output;
  // No weights given; bad steps; bad shard; init noise of the wrong count.
  r = run_dmeval("sample --model cifar10 --samples 2 --out " + dir.file("x"));
  EXPECT_NE(r.output.find("--checkpoint"), std::string::npos) << r.output;
  r = run_dmeval("sample " + model_args() + " --steps 5000 --samples 2 --out " + dir.file("x"));
  EXPECT_NE(r.output.find("--steps 5000"), std::string::npos) << r.output;
  r = run_dmeval("sample " + sample_args() + " --shard 3/3 --out " + dir.file("x"));
  EXPECT_NE(r.output.find("--shard '3/3'"), std::string::npos) << r.output;
  r = run_dmeval("sample " + sample_args() + " --init-noise " + golden_path("generators/sampling/x_T.npy") +
                 " --out " + dir.file("x"));
  EXPECT_NE(r.output.find("initial noise for 2 images, --samples is 20"), std::string::npos) << r.output;
}

TEST(SampleCli, BenchLatencyAndModelInfo) {
  DMEVAL_REQUIRE_GOLDEN();
  TempDir dir;
  RunResult r = run_dmeval("bench latency " + model_args() +
                               " --batch 1,3 --steps 2 --warmup 1 --repeats 3 --e2e-repeats 2 --json --db " +
                               dir.file("r.db") + " --tag lat",
                           /*stderr=*/false);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  auto info = nlohmann::json::parse(read_text(golden_path("generators/unet_small/run_info.json")));
  EXPECT_EQ(j["params"].get<int64_t>(), info["num_params"].get<int64_t>());
  ASSERT_EQ(j["results"].size(), 2u);
  for (const auto& row : j["results"]) {
    const auto& s = row["unet_step_ms"];
    EXPECT_GT(s["median"].get<double>(), 0);
    EXPECT_LE(s["p10"].get<double>(), s["median"].get<double>());
    EXPECT_LE(s["median"].get<double>(), s["p90"].get<double>());
    EXPECT_EQ(s["repeats"].get<int>(), 3);
    EXPECT_GT(row["image_ms"].get<double>(), 0);
  }
  r = run_dmeval("db show latest --json --db " + dir.file("r.db"), false);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("unet_step"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(info["sha256_weights_pt"].get<std::string>()), std::string::npos);

  r = run_dmeval("model-info --config " + golden_path("generators/unet_small/config.json") + " --json",
                 false);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["params"].get<int64_t>(), info["num_params"].get<int64_t>());
  EXPECT_NEAR(j["size_mb"]["all_params_times_b"]["W32"].get<double>(), 4.0 * j["params"].get<double>() / 1e6,
              1e-9);
}

}  // namespace
}  // namespace dmeval
