// `dmeval sr` and `dmeval resize` through the real binary on the Set5 files:
//   GoldenPairedE2e   every group of psnr_ssim/values.json "means" reproduced by `dmeval sr` on the
//                     folders its records name; LPIPS per image with the golden backbones; `resize`
//                     reproducing the committed LR_bicubic files (checks.json) pixel for pixel
//   SrCli             bad input: size mismatch, grey vs colour, 16-bit PNG, empty folder, unpaired
//                     files, missing LPIPS weights
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <set>

#include "core/image.h"
#include "tests/support/golden.h"
#include "tests/support/run.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_png.h"

namespace dmeval {
namespace {

using namespace dmeval::test;
using json = nlohmann::json;
namespace fs = std::filesystem;

json load_json(const std::string& relative) {
  return json::parse(python_json_text(read_text(golden_path(relative))));
}

std::string dir_of(const std::string& shared_relative) {
  return fs::path(shared_path(shared_relative)).parent_path().string();
}

json run_json(const std::string& args) {
  RunResult r = run_dmeval(args, /*stderr=*/false);
  EXPECT_EQ(r.exit_code, 0) << args << "\n" << run_dmeval(args).output;
  return r.exit_code == 0 ? json::parse(r.output) : json();
}

TEST(GoldenPairedE2e, SrCommandReproducesSet5Means) {
  DMEVAL_REQUIRE_GOLDEN();
  json v = load_json("paired/psnr_ssim/values.json");
  ASSERT_GT(v["means"].size(), 0u);
  for (const auto& [key, expect] : v["means"].items()) {
    SCOPED_TRACE(key);
    // The records of the group give the folders, the mod-crop, the crop border and the channel.
    const json* rec = nullptr;
    for (const json& r : v["records"]) {
      const std::string group = r["pair"].get<std::string>() +
                                (r["test_y_channel"].get<bool>() ? "_y" : "_rgb") + "_crop" +
                                std::to_string(r["crop_border"].get<int>());
      if (group == key) rec = &r;
    }
    ASSERT_NE(rec, nullptr);
    const int mc = (*rec)["mod_crop"].get<int>();
    std::string args = "sr --hr " + dir_of((*rec)["ref"]) + " --sr " + dir_of((*rec)["dist"]) +
                       " --crop-border " + std::to_string((*rec)["crop_border"].get<int>()) +
                       " --lpips none --json";
    if (mc > 1) args += " --scale " + std::to_string(mc);
    if ((*rec)["test_y_channel"].get<bool>()) args += " --y-channel";
    json out = run_json(args);
    ASSERT_TRUE(out.contains("mean"));
    EXPECT_EQ(out["mean"]["n"].get<int>(), expect["n"].get<int>());
    EXPECT_NEAR(out["mean"]["psnr"].get<double>(), expect["psnr"].get<double>(), 1e-5);
    EXPECT_NEAR(out["mean"]["ssim"].get<double>(), expect["ssim"].get<double>(), 1e-6);
    // Per image, against the matching record.
    for (const json& img : out["images"]) {
      for (const json& r : v["records"]) {
        if (r["image"] != img["name"] || r["pair"] != (*rec)["pair"] ||
            r["crop_border"] != (*rec)["crop_border"] || r["test_y_channel"] != (*rec)["test_y_channel"])
          continue;
        EXPECT_NEAR(img["psnr"].get<double>(), r["psnr"].get<double>(), 1e-5) << img["name"];
        EXPECT_NEAR(img["ssim"].get<double>(), r["ssim"].get<double>(), 1e-6) << img["name"];
      }
    }
  }
}

TEST(GoldenPairedE2e, SrCommandLpipsPerImage) {
  DMEVAL_REQUIRE_GOLDEN();
  json v = load_json("paired/lpips/values.json");
  // Groups of records (net, pair) whose distorted images share a folder and whose references are
  // the Set5 HR images mod-cropped: one `dmeval sr` run per group.
  std::map<std::pair<std::string, std::string>, std::vector<const json*>> groups;
  for (const json& r : v["records"])
    if (r["in1"].get<std::string>().find("(mod-crop") != std::string::npos)
      groups[{r["net"], r["pair"]}].push_back(&r);
  ASSERT_GT(groups.size(), 0u);
  for (const auto& [key, recs] : groups) {
    SCOPED_TRACE(key.first + " " + key.second);
    const std::string in1 = (*recs[0])["in1"];
    const std::string hr = in1.substr(0, in1.find(" (mod-crop"));
    const std::string crop =
        in1.substr(in1.find("(mod-crop ") + 10, in1.find(')') - in1.find("(mod-crop ") - 10);
    const std::string net = key.first;
    json out = run_json("sr --hr " + dir_of(hr) + " --sr " + dir_of((*recs[0])["in0"]) + " --scale " + crop +
                        " --lpips " + net + " --lpips-backbone " + shared_path(v["backbones"][net]) +
                        " --lpips-linear " + golden_path("paired/lpips/weights_v0.1/" + net + ".pth") +
                        " --allow-unknown-weights --device cpu --json");
    ASSERT_TRUE(out.contains("images"));
    EXPECT_FALSE(out["provenance"]["lpips_backbone"]["published"].get<bool>());
    EXPECT_TRUE(out["provenance"]["lpips_linear"]["published"].get<bool>());
    int matched = 0;
    for (const json* r : recs)
      for (const json& img : out["images"])
        if (img["name"] == (*r)["image"]) {
          const double want = (*r)["lpips"].get<double>();
          EXPECT_NEAR(img["lpips"].get<double>(), want, 1e-5 * want) << img["name"];
          ++matched;
        }
    EXPECT_EQ(matched, static_cast<int>(recs.size()));
  }
}

TEST(GoldenPairedE2e, ResizeReproducesBenchmarkLrFiles) {
  DMEVAL_REQUIRE_GOLDEN();
  json checks = load_json("paired/bicubic/checks.json")["benchmark_lr_check"];
  std::set<std::string> scales;
  for (const auto& [key, c] : checks.items()) scales.insert(key.substr(0, key.find('/')));
  ASSERT_FALSE(scales.empty());
  TempDir tmp;
  for (const std::string& xs : scales) {
    SCOPED_TRACE(xs);
    const std::string s = xs.substr(1);
    RunResult r = run_dmeval("resize --matlab-bicubic --scale 1/" + s + " --suffix x" + s + " " +
                             shared_path("data/Set5/HR") + " " + tmp.file(xs));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    for (const auto& [key, c] : checks.items()) {
      if (key.rfind(xs + "/", 0) != 0) continue;
      const std::string name = key.substr(key.find('/') + 1) + "x" + s + ".png";
      Image got = decode_image_file(tmp.file(xs + "/" + name));
      Image want = decode_image_file(shared_path("data/Set5/LR_bicubic/" + xs + "/" + name));
      EXPECT_EQ(got.width, want.width);
      EXPECT_EQ(got.height, want.height);
      int differing = 0;
      for (size_t i = 0; i < std::min(got.pixels.size(), want.pixels.size()); ++i)
        differing += got.pixels[i] != want.pixels[i];
      EXPECT_EQ(differing, c["pixels_differing_uint8_two_pass_vs_benchmark"].get<int>()) << name;
    }
  }
}

// ---------------------------------------------------------------- bad input

std::string rgb_png(int w, int h, int seed) {
  std::vector<int> s(static_cast<size_t>(w) * h * 3);
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<int>((i * 37 + seed * 11) % 256);
  return make_png(w, h, PNG_COLOR_TYPE_RGB, 8, s);
}

struct Folders {
  TempDir root;
  Folders() {
    fs::create_directory(root.file("hr"));
    fs::create_directory(root.file("sr"));
  }
  void put(const std::string& rel, const std::string& bytes) { root.write(rel, bytes); }
  std::string args(const std::string& extra = "") const {
    return "sr --hr " + root.file("hr") + " --sr " + root.file("sr") + " --lpips none " + extra;
  }
};

void expect_error(const std::string& args, const std::vector<std::string>& needles) {
  RunResult r = run_dmeval(args);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  for (const auto& n : needles)
    EXPECT_NE(r.output.find(n), std::string::npos) << "missing '" << n << "' in: " << r.output;
}

TEST(SrCli, SizeMismatchNamesFilesAndSizes) {
  Folders f;
  f.put("hr/a.png", rgb_png(24, 20, 1));
  f.put("sr/a.png", rgb_png(20, 20, 2));
  expect_error(f.args(), {"a.png", "20x20", "24x20"});
}

TEST(SrCli, GreyAgainstColourIsAnError) {
  Folders f;
  f.put("hr/a.png", rgb_png(16, 16, 1));
  f.put("sr/a.png", make_png(16, 16, PNG_COLOR_TYPE_GRAY, 8, std::vector<int>(256, 100)));
  expect_error(f.args(), {"greyscale", "colour", "a.png"});
  // Both grey is fine: three equal channels, as BasicSR's IMREAD_COLOR gives.
  Folders g;
  g.put("hr/a.png", make_png(16, 16, PNG_COLOR_TYPE_GRAY, 8, std::vector<int>(256, 100)));
  g.put("sr/a.png", make_png(16, 16, PNG_COLOR_TYPE_GRAY, 8, std::vector<int>(256, 90)));
  json out = run_json(g.args("--json"));
  ASSERT_TRUE(out.contains("mean"));
  EXPECT_NEAR(out["mean"]["psnr"].get<double>(), 10 * std::log10(255.0 * 255 / 100), 1e-9);
}

TEST(SrCli, SixteenBitPngIsAnError) {
  Folders f;
  f.put("hr/a.png", rgb_png(16, 16, 1));
  f.put("sr/a.png", make_png(16, 16, PNG_COLOR_TYPE_RGB, 16, std::vector<int>(768, 40000)));
  expect_error(f.args(), {"16-bit", "a.png"});
}

TEST(SrCli, EmptyFolderAndUnpairedFiles) {
  Folders f;
  f.put("hr/a.png", rgb_png(16, 16, 1));
  expect_error(f.args(), {"no images", "sr"});
  f.put("sr/a.png", rgb_png(16, 16, 2));
  f.put("hr/b.png", rgb_png(16, 16, 3));
  expect_error(f.args(), {"HR without SR", "b.png", "--allow-unpaired"});
  json out = run_json(f.args("--allow-unpaired --json"));
  ASSERT_TRUE(out.contains("mean"));
  EXPECT_EQ(out["mean"]["n"].get<int>(), 1);
  EXPECT_EQ(out["unpaired"]["hr"].size(), 1u);
}

TEST(SrCli, IdenticalImagesReportInfinityExplicitly) {
  Folders f;
  f.put("hr/a.png", rgb_png(16, 16, 1));
  f.put("sr/a.png", rgb_png(16, 16, 1));
  f.put("hr/b.png", rgb_png(16, 16, 2));
  f.put("sr/b_SR.png", rgb_png(16, 16, 3));
  json out = run_json(f.args("--json"));
  ASSERT_TRUE(out.contains("mean"));
  EXPECT_EQ(out["mean"]["psnr_identical_pairs_excluded"].get<int>(), 1);
  EXPECT_TRUE(out["images"][0]["identical"].get<bool>());
  EXPECT_TRUE(out["images"][0]["psnr"].is_null());
  EXPECT_TRUE(out["mean"]["psnr"].is_number());
  RunResult text = run_dmeval(f.args());
  EXPECT_NE(text.output.find("inf"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("left out of the PSNR mean"), std::string::npos) << text.output;
}

TEST(SrCli, MissingLpipsWeightsSayWhichFile) {
  Folders f;
  f.put("hr/a.png", rgb_png(16, 16, 1));
  f.put("sr/a.png", rgb_png(16, 16, 2));
  RunResult r = run_dmeval("sr --hr " + f.root.file("hr") + " --sr " + f.root.file("sr") + " --lpips vgg");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("vgg16-397923af.pth"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--lpips none"), std::string::npos) << r.output;
  TempDir env;
  r = run_dmeval("sr --hr " + f.root.file("hr") + " --sr " + f.root.file("sr") +
                 " --lpips squeeze --lpips-backbone " + f.root.file("hr/a.png"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("squeeze.pth"), std::string::npos) << r.output;
}

TEST(SrCli, PresetNeedsScaleAndExcludesManualConventions) {
  Folders f;
  f.put("hr/a.png", rgb_png(16, 16, 1));
  f.put("sr/a.png", rgb_png(16, 16, 2));
  expect_error("sr --hr " + f.root.file("hr") + " --sr " + f.root.file("sr") + " --preset bi-diffsr",
               {"--scale"});
  RunResult r = run_dmeval(f.args("--preset bi-diffsr --scale 4 --y-channel"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("excludes"), std::string::npos) << r.output;
}

TEST(SrCli, ResizeRejectsBadScale) {
  TempDir d;
  d.write("a.png", rgb_png(16, 16, 1));
  expect_error("resize --matlab-bicubic --scale 1/0 " + d.file("a.png") + " " + d.file("b.png"), {"--scale"});
  expect_error("resize --matlab-bicubic --scale -2 " + d.file("a.png") + " " + d.file("b.png"), {"--scale"});
  RunResult r = run_dmeval("resize --matlab-bicubic --scale 1/2 " + d.file("a.png") + " " + d.file("b.png"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(decode_image_file(d.file("b.png")).width, 8);
}

}  // namespace
}  // namespace dmeval
