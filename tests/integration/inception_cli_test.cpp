// The whole chain through the real binary (decode -> preprocess -> network -> statistics ->
// metric) against e2e_report_golden.json: the golden images split into A and B as the report
// states, each mode's FID/sFID/KID within 1e-3 relative and P/R exact (MANIFEST's criteria).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <regex>

#include "core/image.h"
#include "core/image_folder.h"
#include "core/npy.h"
#include "tests/support/golden.h"
#include "tests/support/run.h"
#include "tests/support/temp_dir.h"

namespace dmeval {
namespace {

using namespace dmeval::test;
using json = nlohmann::json;

class GoldenInceptionE2e : public ::testing::Test {
 protected:
  void SetUp() override {
    if (golden_dir().empty()) GTEST_SKIP() << "golden data not found";
    report_ = json::parse(read_text(golden_path("inception/e2e_report_golden.json")));
    auto images = json::parse(read_text(golden_path("inception/images/images.json")));
    const int n_a = report_["n_A"].get<int>();
    std::filesystem::create_directory(dir_.file("A"));
    std::filesystem::create_directory(dir_.file("B"));
    std::filesystem::create_directory(dir_.file("all"));
    for (size_t i = 0; i < images.size(); ++i) {
      std::string f = images[i]["file"], name = f.substr(f.rfind('/') + 1);
      std::filesystem::copy_file(golden_path("inception/" + f),
                                 dir_.file((static_cast<int>(i) < n_a ? "A/" : "B/") + name));
      std::filesystem::copy_file(golden_path("inception/" + f), dir_.file("all/" + name));
    }
    weights_ =
        "--weights " + golden_path("inception/inception-random.pth") + " --allow-unknown-weights --json";
  }

  json score(const std::string& gen, const std::string& ref, const std::string& mode,
             const std::string& metrics) {
    RunResult r = run_dmeval("score " + dir_.file(gen) + " --ref " + dir_.file(ref) + " --mode " + mode +
                                 " --metrics " + metrics + " " + weights_,
                             /*stderr=*/false);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return json::parse(r.output)["metrics"];
  }

  static void near_rel(double got, double want, double rel, const std::string& what) {
    EXPECT_NEAR(got, want, rel * std::abs(want)) << what;
  }

  TempDir dir_;
  json report_;
  std::string weights_;
};

TEST_F(GoldenInceptionE2e, FidPerModeAndSfid) {
  for (auto [mode, key] : {std::pair{"pytorch-fid", "fid_pytorch_fid_mode__exact"},
                           {"clean", "fid_clean_mode__exact"},
                           {"tf", "fid_torch_fidelity_mode__exact"}}) {
    json m = score("B", "A", mode, mode == std::string("tf") ? "fid,sfid" : "fid");
    near_rel(m["fid"]["value"].get<double>(), report_[key].get<double>(), 1e-3, key);
    if (mode == std::string("tf"))
      near_rel(m["sfid"]["value"].get<double>(), report_["sfid_torch_fidelity_mode__exact"].get<double>(),
               1e-3, "sfid");
  }
}

TEST_F(GoldenInceptionE2e, IsKidPrecisionRecall) {
  json is = score("all", "A", "tf", "is");
  near_rel(is["is"]["value"].get<double>(),
           report_["is_all_images__torch_fidelity_default"]["inception_score_mean"].get<double>(), 1e-3,
           "IS");
  json m = score("B", "A", "tf", "precision,recall,kid");
  near_rel(m["kid"]["value"].get<double>(),
           report_["kid_B_vs_A__torch_fidelity_1subset"]["kernel_inception_distance_mean"].get<double>(),
           1e-3, "KID");
  EXPECT_EQ(m["precision"]["value"].get<double>(),
            report_["prc_B_vs_A__adm_fp32"]["precision"].get<double>());
  EXPECT_EQ(m["recall"]["value"].get<double>(), report_["prc_B_vs_A__adm_fp32"]["recall"].get<double>());
}

// Features spilled to memory-mapped .npy files give the same scores as features held in memory,
// and the kept files hold N x 2048 float32 rows.
TEST_F(GoldenInceptionE2e, SpilledFeaturesGiveTheSameScores) {
  const std::string args = "score " + dir_.file("A") + " --ref " + dir_.file("B") +
                           " --mode tf --metrics precision,recall,kid,is " + weights_;
  RunResult mem = run_dmeval(args, false);
  RunResult spill = run_dmeval(args + " --feature-dir " + dir_.file("features"), false);
  ASSERT_EQ(mem.exit_code, 0) << mem.output;
  ASSERT_EQ(spill.exit_code, 0) << spill.output;
  EXPECT_EQ(json::parse(mem.output)["metrics"], json::parse(spill.output)["metrics"]);
  TensorData gen = read_npy_file(dir_.file("features/gen-pool3.npy"));
  EXPECT_EQ(gen.shape, (std::vector<int64_t>{report_["n_A"].get<int64_t>(), 2048}));
  EXPECT_EQ(gen.dtype, DType::kFloat32);
  EXPECT_TRUE(std::filesystem::exists(dir_.file("features/ref-pool3.npy")));
  EXPECT_TRUE(std::filesystem::exists(dir_.file("features/gen-logits-unbiased.npy")));
}

TEST_F(GoldenInceptionE2e, ShardsMergeToTheSinglePass) {
  // pytorch-fid --dims 64 keeps the run short; the merge itself is tap-independent.
  const std::string common = " --dims 64 " + weights_;
  ASSERT_EQ(run_dmeval("stats " + dir_.file("all") + " -o " + dir_.file("full.npz") + common).exit_code, 0);
  std::string merge_args;
  for (int k : {2, 0, 1}) {  // any order
    std::string m = dir_.file("m" + std::to_string(k) + ".npz");
    RunResult r = run_dmeval("stats " + dir_.file("all") + " --shard " + std::to_string(k) +
                             "/3 --moments -o " + m + common);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    merge_args += " " + m;
  }
  RunResult merged = run_dmeval("stats --merge" + merge_args + " -o " + dir_.file("merged.npz"));
  ASSERT_EQ(merged.exit_code, 0) << merged.output;
  NpzReader a = NpzReader::open(dir_.file("full.npz")), b = NpzReader::open(dir_.file("merged.npz"));
  EXPECT_EQ(a.read("mu").bytes, b.read("mu").bytes);
  EXPECT_EQ(a.read("sigma").bytes, b.read("sigma").bytes);
  // Shards computed with another preprocessing are refused.
  ASSERT_EQ(run_dmeval("stats " + dir_.file("all") + " --shard 0/3 --moments --mode tf -o " +
                       dir_.file("tf.npz") + common)
                .exit_code,
            0);
  RunResult mixed = run_dmeval("stats --merge " + dir_.file("m1.npz") + " " + dir_.file("tf.npz") + " -o " +
                               dir_.file("x.npz"));
  EXPECT_NE(mixed.exit_code, 0);
  EXPECT_NE(mixed.output.find("computed differently"), std::string::npos) << mixed.output;
}

TEST_F(GoldenInceptionE2e, AdmReferenceBatchWithStoredStatistics) {
  // An ADM reference .npz: arr_0 (uint8 N x H x W x 3) plus mu/sigma/mu_s/sigma_s. Built here from
  // the same-size golden images and dmeval's own statistics of them.
  std::filesystem::create_directory(dir_.file("same"));
  std::vector<Image> imgs;
  for (const auto& e : std::filesystem::directory_iterator(dir_.file("all"))) {
    Image img = decode_image_file(e.path().string());
    if (imgs.empty() || (img.height == imgs[0].height && img.width == imgs[0].width)) {
      imgs.push_back(img);
      std::filesystem::copy_file(e.path(), dir_.file("same/" + e.path().filename().string()));
    }
  }
  ASSERT_GE(imgs.size(), 4u);
  ASSERT_EQ(
      run_dmeval("stats " + dir_.file("same") + " --sfid -o " + dir_.file("same_stats.npz") + " " + weights_)
          .exit_code,
      0);
  NpzReader st = NpzReader::open(dir_.file("same_stats.npz"));
  // arr_0 in the folder's (sorted) order.
  std::vector<std::string> order = list_images(dir_.file("same"));
  TensorData arr{DType::kUInt8, {static_cast<int64_t>(order.size()), imgs[0].height, imgs[0].width, 3}, {}};
  for (const auto& f : order) {
    Image img = decode_image_file(f);
    arr.bytes.insert(arr.bytes.end(), img.pixels.begin(), img.pixels.end());
  }
  write_npz(dir_.file("ref_batch.npz"),
            {{"arr_0", arr},
             {"mu", st.read("mu")},
             {"sigma", st.read("sigma")},
             {"mu_s", st.read("mu_s")},
             {"sigma_s", st.read("sigma_s")}},
            false);
  json batch = score("B", "ref_batch.npz", "pytorch-fid", "fid,sfid,precision,recall");
  json folder = score("B", "same", "pytorch-fid", "precision,recall");
  RunResult stats_only = run_dmeval("score " + dir_.file("B") + " --ref " + dir_.file("same_stats.npz") +
                                        " --metrics fid,sfid --mode pytorch-fid " + weights_,
                                    false);
  ASSERT_EQ(stats_only.exit_code, 0) << stats_only.output;
  json so = json::parse(stats_only.output)["metrics"];
  EXPECT_EQ(batch["fid"]["value"].get<double>(), so["fid"]["value"].get<double>());  // stored statistics
  EXPECT_EQ(batch["sfid"]["value"].get<double>(), so["sfid"]["value"].get<double>());
  EXPECT_EQ(batch["precision"]["value"].get<double>(), folder["precision"]["value"].get<double>());  // arr_0
  EXPECT_EQ(batch["recall"]["value"].get<double>(), folder["recall"]["value"].get<double>());
}

TEST_F(GoldenInceptionE2e, BadInputsAreClearErrors) {
  // A corrupt PNG is named; --skip-bad reports it and continues.
  std::filesystem::copy(dir_.file("A"), dir_.file("bad"));
  dir_.write("bad/zz_corrupt.png", "\x89PNG\r\n\x1a\n garbage");
  RunResult r = run_dmeval("fid " + dir_.file("bad") + " " + dir_.file("B") + " " + weights_);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("zz_corrupt.png"), std::string::npos) << r.output;
  RunResult skip = run_dmeval("fid " + dir_.file("bad") + " " + dir_.file("B") + " --skip-bad " + weights_);
  EXPECT_EQ(skip.exit_code, 0) << skip.output;
  EXPECT_NE(skip.output.find("skipped"), std::string::npos);
  // Fewer than 2 images.
  std::filesystem::create_directory(dir_.file("one"));
  std::filesystem::copy_file(dir_.file("all/g00_astronaut_face_32.png"), dir_.file("one/a.png"));
  RunResult one = run_dmeval("fid " + dir_.file("one") + " " + dir_.file("B") + " " + weights_);
  EXPECT_NE(one.exit_code, 0);
  EXPECT_NE(one.output.find("at least 2 images"), std::string::npos) << one.output;
  // Statistics of different dimensions.
  RunResult dims = run_dmeval("fid " + golden_path("inception/stats2048_a.npz") + " " +
                              golden_path("inception/fid_cases_64d.npz") + " " + weights_);
  EXPECT_NE(dims.exit_code, 0);
  // Missing weights name the file to get and its SHA-256.
  RunResult missing =
      run_dmeval("fid " + dir_.file("A") + " " + dir_.file("B") + " --weights " + dir_.file("nope.pth"));
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.output.find("6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"),
            std::string::npos)
      << missing.output;
  // Unknown weights are refused without the explicit flag.
  RunResult unknown = run_dmeval("fid " + dir_.file("A") + " " + dir_.file("B") + " --weights " +
                                 golden_path("inception/inception-random.pth"));
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_NE(unknown.output.find("--allow-unknown-weights"), std::string::npos);
}

}  // namespace
}  // namespace dmeval
