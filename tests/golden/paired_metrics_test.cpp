// Paired SR metrics against shared/golden/paired (BasicSR and the lpips package on Set5):
//   GoldenPairedPsnrSsim  every record of psnr_ssim/values.json, the unrounded variants, the Set5 means
//   GoldenPairedBicubic   weights_indices.json, the float path (lr_basicsr, up_basicsr PNG + npy),
//                         OpenCV-style upsampling (up_cv2), and checks.json's pixel counts against the
//                         committed benchmark LR files (uint8 two-pass: bit-exact)
//   GoldenPairedLpips     every record of lpips/values.json (float32, float64, swapped) and the
//                         per-layer dumps
// Tolerances are the spec's suggested acceptance (shared/spec/metrics-paired.md section 8).
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <iostream>
#include <regex>

#include "core/checkpoint.h"
#include "core/image.h"
#include "core/npy.h"
#include "core/torch_bridge.h"
#include "metrics/lpips.h"
#include "metrics/matlab_resize.h"
#include "metrics/psnr_ssim.h"
#include "tests/support/golden.h"

namespace dmeval {
namespace {

using namespace dmeval::test;
using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr double kPsnrTol = 1e-5;  // dB
constexpr double kSsimTol = 1e-6;
constexpr double kLpipsRel = 1e-5;      // relative
constexpr double kFloatTol = 1e-5;      // resize float outputs, [0,1] scale
constexpr double kRoundedShare = 5e-4;  // rounded float-path outputs: at most 0.05 % of values off by 1

json load_json(const std::string& relative) {
  return json::parse(python_json_text(read_text(golden_path(relative))));
}

// "data/Set5/HR/baby.png (mod-crop 2)" -> path and crop.
std::pair<std::string, int> parse_input(const std::string& field) {
  std::smatch m;
  static const std::regex kCrop("^(.*) \\(mod-crop (\\d+)\\)$");
  if (std::regex_match(field, m, kCrop)) return {m[1].str(), std::stoi(m[2].str())};
  return {field, 0};
}

Image load(const std::string& shared_relative, int crop = 0) {
  Image img = decode_image_file(shared_path(shared_relative));
  return crop > 1 ? mod_crop(img, crop) : img;
}

torch::Tensor npy_tensor(const std::string& shared_relative) {
  return to_torch(read_npy_file(shared_path(shared_relative)));
}

// HWC float32 [0,1] array -> (3,H,W)
torch::Tensor hwc_to_chw(const torch::Tensor& hwc) {
  return hwc.permute({2, 0, 1}).contiguous();
}

// ---------------------------------------------------------------- PSNR / SSIM

TEST(GoldenPairedPsnrSsim, EveryRecord) {
  DMEVAL_REQUIRE_GOLDEN();
  json v = load_json("paired/psnr_ssim/values.json");
  ASSERT_GT(v["records"].size(), 0u);
  int checked = 0, unrounded = 0;
  double max_dpsnr = 0, max_dssim = 0;
  for (const json& r : v["records"]) {
    SCOPED_TRACE(r.dump());
    const int mc = r["mod_crop"].get<int>();
    Planes ref = planes_from_image(load(r["ref"], mc));
    Planes dist = planes_from_image(load(r["dist"]));
    ASSERT_EQ(ref.height, r["shape_hw"][0].get<int>());
    ASSERT_EQ(ref.width, r["shape_hw"][1].get<int>());
    PairedConventions conv{r["crop_border"].get<int>(), r["test_y_channel"].get<bool>()};
    PsnrSsim s = psnr_ssim(ref, dist, conv);
    EXPECT_NEAR(s.psnr, r["psnr"].get<double>(), kPsnrTol);
    EXPECT_NEAR(s.ssim, r["ssim"].get<double>(), kSsimTol);
    max_dpsnr = std::max(max_dpsnr, std::abs(s.psnr - r["psnr"].get<double>()));
    max_dssim = std::max(max_dssim, std::abs(s.ssim - r["ssim"].get<double>()));
    // scikit-image with BasicSR's settings computes the same SSIM.
    EXPECT_NEAR(s.ssim, r["ssim_skimage"].get<double>(), kSsimTol);
    ++checked;
    // The unrounded network output, where its float file is present (up_basicsr/X4/NAME_float.npy).
    if (r.contains("psnr_unrounded")) {
      std::string dist_path = r["dist"];
      std::string npy = dist_path.substr(0, dist_path.size() - 4) + "_float.npy";
      if (fs::exists(shared_path(npy))) {
        torch::Tensor f = npy_tensor(npy).contiguous();
        Planes fp = planes_from_unit_hwc(f.data_ptr<float>(), f.size(0), f.size(1), /*clip=*/true);
        PsnrSsim u = psnr_ssim(ref, fp, conv);
        EXPECT_NEAR(u.psnr, r["psnr_unrounded"].get<double>(), kPsnrTol);
        EXPECT_NEAR(u.ssim, r["ssim_unrounded"].get<double>(), kSsimTol);
        ++unrounded;
      }
    }
  }
  EXPECT_EQ(checked, static_cast<int>(v["records"].size()));
  std::cout << checked << " records: max |dPSNR| " << max_dpsnr << " dB, max |dSSIM| " << max_dssim << "\n";
  EXPECT_GT(unrounded, 0) << "no *_float.npy next to any bicubic record";
}

TEST(GoldenPairedPsnrSsim, Set5MeansPerGroup) {
  DMEVAL_REQUIRE_GOLDEN();
  json v = load_json("paired/psnr_ssim/values.json");
  ASSERT_GT(v["means"].size(), 0u);
  static const std::regex kKey("^(.*)_(y|rgb)_crop(\\d+)$");
  for (const auto& [key, expect] : v["means"].items()) {
    SCOPED_TRACE(key);
    std::smatch m;
    ASSERT_TRUE(std::regex_match(key, m, kKey));
    const bool y = m[2].str() == "y";
    const int crop = std::stoi(m[3].str());
    std::vector<double> psnrs;
    double ssim_sum = 0;
    for (const json& r : v["records"]) {
      if (r["pair"] != m[1].str() || r["test_y_channel"].get<bool>() != y ||
          r["crop_border"].get<int>() != crop)
        continue;
      PsnrSsim s = psnr_ssim(planes_from_image(load(r["ref"], r["mod_crop"].get<int>())),
                             planes_from_image(load(r["dist"])), {crop, y});
      psnrs.push_back(s.psnr);
      ssim_sum += s.ssim;
    }
    ASSERT_EQ(static_cast<int>(psnrs.size()), expect["n"].get<int>());
    PsnrMean pm = mean_psnr(psnrs);
    EXPECT_EQ(pm.infinite, 0);
    EXPECT_NEAR(pm.mean_finite, expect["psnr"].get<double>(), kPsnrTol);
    EXPECT_NEAR(ssim_sum / psnrs.size(), expect["ssim"].get<double>(), kSsimTol);
  }
}

// ---------------------------------------------------------------- MATLAB bicubic

TEST(GoldenPairedBicubic, WeightsAndIndicesAreBasicSRs) {
  DMEVAL_REQUIRE_GOLDEN();
  json cases = load_json("paired/bicubic/weights_indices.json");
  ASSERT_GT(cases.size(), 0u);
  for (const json& c : cases) {
    SCOPED_TRACE(c["in_length"].dump() + " -> " + c["out_length"].dump());
    CubicTaps t = matlab_cubic_taps(c["in_length"], c["out_length"], c["scale"].get<double>(),
                                    c["antialiasing"].get<bool>());
    EXPECT_EQ(t.sym_len_start, c["sym_len_start"].get<int64_t>());
    EXPECT_EQ(t.sym_len_end, c["sym_len_end"].get<int64_t>());
    const auto& w = c["weights"];
    ASSERT_EQ(t.out_length, static_cast<int64_t>(w.size()));
    ASSERT_EQ(t.taps, static_cast<int64_t>(w[0].size()));
    auto tw = t.weights.accessor<float, 2>();
    auto ti = t.indices.accessor<int64_t, 2>();
    auto src = t.source_indices();
    int mismatches = 0;
    for (int64_t i = 0; i < t.out_length; ++i) {
      for (int64_t k = 0; k < t.taps; ++k) {
        mismatches += tw[i][k] != w[i][k].get<float>();  // exact: these are float32 values
        mismatches += ti[i][k] != c["indices_into_padded"][i][k].get<int64_t>();
        mismatches += src[i * t.taps + k] != c["source_indices"][i][k].get<int64_t>();
      }
    }
    EXPECT_EQ(mismatches, 0);
  }
}

struct RoundedDiff {
  int64_t differing = 0;
  int max_abs = 0;
  int64_t values = 0;
};

RoundedDiff compare_images(const Image& a, const Image& b) {
  RoundedDiff d;
  EXPECT_EQ(a.width, b.width);
  EXPECT_EQ(a.height, b.height);
  if (a.pixels.size() != b.pixels.size()) return {1, 255, 1};
  d.values = static_cast<int64_t>(a.pixels.size());
  for (size_t i = 0; i < a.pixels.size(); ++i) {
    int diff = std::abs(int(a.pixels[i]) - int(b.pixels[i]));
    d.differing += diff != 0;
    d.max_abs = std::max(d.max_abs, diff);
  }
  return d;
}

// Every PNG of lr_basicsr/ and up_basicsr/ and every *_float.npy next to them.
TEST(GoldenPairedBicubic, FloatPathReproducesBasicSR) {
  DMEVAL_REQUIRE_GOLDEN();
  int images = 0, floats = 0;
  int64_t differing = 0, values = 0;
  double max_float = 0;
  for (const std::string kind : {"lr_basicsr", "up_basicsr"}) {
    const std::string root = golden_path("paired/bicubic/" + kind);
    for (const auto& sdir : fs::directory_iterator(root)) {
      const std::string xs = sdir.path().filename().string();  // X2, X4
      const int s = std::stoi(xs.substr(1));
      for (const auto& f : fs::directory_iterator(sdir.path())) {
        const std::string name = f.path().stem().string();
        if (f.path().extension() != ".png") continue;
        SCOPED_TRACE(f.path().string());
        // Down: HR mod-cropped to s, scale 1/s. Up: the committed benchmark LR, scale s.
        Image in = kind == "lr_basicsr"
                       ? load("data/Set5/HR/" + name + ".png", s)
                       : load("data/Set5/LR_bicubic/" + xs + "/" + name + "x" + std::to_string(s) + ".png");
        const double scale = kind == "lr_basicsr" ? 1.0 / s : s;
        torch::Tensor out = matlab_imresize(image_to_unit_chw(in), scale);
        RoundedDiff d = compare_images(unit_chw_to_image(out), decode_image_file(f.path().string()));
        EXPECT_LE(d.max_abs, 1);
        EXPECT_LE(d.differing, static_cast<int64_t>(kRoundedShare * d.values))
            << d.differing << " values differ";
        ++images;
        differing += d.differing;
        values += d.values;
        const fs::path npy = sdir.path() / (name + "_float.npy");
        if (fs::exists(npy)) {
          torch::Tensor expect = hwc_to_chw(to_torch(read_npy_file(npy.string())));
          ASSERT_EQ(expect.sizes(), out.sizes());
          const double e = (expect - out).abs().max().item<double>();
          EXPECT_LE(e, kFloatTol);
          max_float = std::max(max_float, e);
          ++floats;
        }
      }
    }
  }
  std::cout << images << " PNGs: " << differing << " of " << values
            << " rounded values differ from BasicSR's; " << floats << " float files: max |diff| " << max_float
            << "\n";
  EXPECT_GT(images, 0);
  EXPECT_GT(floats, 0);
}

// up_cv2: OpenCV INTER_CUBIC on float input (BI-DiffSR's conditioning upsample).
TEST(GoldenPairedBicubic, OpenCvCubicUpsample) {
  DMEVAL_REQUIRE_GOLDEN();
  int checked = 0;
  for (const auto& sdir : fs::directory_iterator(golden_path("paired/bicubic/up_cv2"))) {
    const std::string xs = sdir.path().filename().string();
    const int s = std::stoi(xs.substr(1));
    for (const auto& f : fs::directory_iterator(sdir.path())) {
      SCOPED_TRACE(f.path().string());
      std::string name = f.path().stem().string();
      name = name.substr(0, name.rfind("_float"));
      Image lr = load("data/Set5/LR_bicubic/" + xs + "/" + name + "x" + std::to_string(s) + ".png");
      torch::Tensor up = opencv_cubic_upsample(image_to_unit_chw(lr), s);
      torch::Tensor expect = hwc_to_chw(to_torch(read_npy_file(f.path().string())));
      ASSERT_EQ(expect.sizes(), up.sizes());
      EXPECT_LE((expect - up).abs().max().item<double>(), kFloatTol);
      ++checked;
    }
  }
  EXPECT_GT(checked, 0);
}

// checks.json: pixel counts of both paths against the committed benchmark LR files.
TEST(GoldenPairedBicubic, BenchmarkLrFiles) {
  DMEVAL_REQUIRE_GOLDEN();
  json checks = load_json("paired/bicubic/checks.json")["benchmark_lr_check"];
  ASSERT_GT(checks.size(), 0u);
  for (const auto& [key, c] : checks.items()) {
    SCOPED_TRACE(key);
    const std::string xs = key.substr(0, key.find('/'));
    const std::string name = key.substr(key.find('/') + 1);
    const int s = std::stoi(xs.substr(1));
    Image hr = load("data/Set5/HR/" + name + ".png", s);
    Image bench = load("data/Set5/LR_bicubic/" + xs + "/" + name + "x" + std::to_string(s) + ".png");
    ASSERT_EQ(bench.height, c["shape_hw"][0].get<int>());
    ASSERT_EQ(bench.width, c["shape_hw"][1].get<int>());
    RoundedDiff two_pass = compare_images(matlab_imresize_uint8(hr, 1.0 / s), bench);
    EXPECT_EQ(two_pass.differing, c["pixels_differing_uint8_two_pass_vs_benchmark"].get<int64_t>());
    torch::Tensor f = matlab_imresize(image_to_unit_chw(hr), 1.0 / s);
    RoundedDiff fl = compare_images(unit_chw_to_image(f), bench);
    const int64_t expect = c["pixels_differing_basicsr_float_vs_benchmark"].get<int64_t>();
    // Our float path may round a few values differently from BasicSR's (see FloatPathReproducesBasicSR).
    EXPECT_LE(std::abs(fl.differing - expect), static_cast<int64_t>(kRoundedShare * fl.values) + 1);
    EXPECT_EQ(fl.max_abs, c["max_abs_diff_basicsr_float_vs_benchmark"].get<int>());
    EXPECT_EQ(((f < 0) | (f > 1)).sum().item<int64_t>(), c["float_values_outside_0_1"].get<int64_t>());
  }
}

// ---------------------------------------------------------------- LPIPS

Lpips load_lpips(const json& values, const std::string& net, const std::string& linear_file) {
  Checkpoint backbone = Checkpoint::open(shared_path(values["backbones"][net].get<std::string>()));
  Checkpoint linear = Checkpoint::open(golden_path("paired/lpips/weights_v0.1/" + linear_file));
  return Lpips::load(parse_lpips_net(net), backbone, linear);
}

torch::Tensor unit_batch(const Image& img) {
  return image_to_unit_chw(img).unsqueeze(0);
}

double g_max_rel = 0;
void expect_rel(double got, double want, double rel, const std::string& what) {
  g_max_rel = std::max(g_max_rel, std::abs(got - want) / std::abs(want));
  EXPECT_LE(std::abs(got - want), rel * std::abs(want)) << what << ": got " << got << ", want " << want;
}

TEST(GoldenPairedLpips, EveryRecordFloat32AndFloat64) {
  DMEVAL_REQUIRE_GOLDEN();
  json v = load_json("paired/lpips/values.json");
  std::map<std::string, Lpips> nets, nets64;
  for (const auto& [net, path] : v["backbones"].items()) {
    nets.emplace(net, load_lpips(v, net, net + ".pth"));
    Lpips m64 = load_lpips(v, net, net + "_zip.pt");  // the zip re-save holds the same tensors
    m64.to(torch::kCPU, torch::kFloat64);
    nets64.emplace(net, m64);
  }
  ASSERT_GT(v["records"].size(), 0u);
  for (const json& r : v["records"]) {
    SCOPED_TRACE(r["net"].get<std::string>() + " " + r["in0"].get<std::string>());
    auto [p0, c0] = parse_input(r["in0"]);
    auto [p1, c1] = parse_input(r["in1"]);
    torch::Tensor a = unit_batch(load(p0, c0)), b = unit_batch(load(p1, c1));
    ASSERT_EQ(a.size(2), r["shape_hw"][0].get<int64_t>());
    const Lpips& m = nets.at(r["net"]);
    expect_rel(m.distance(a, b).item<double>(), r["lpips"], kLpipsRel, "float32");
    expect_rel(m.distance(b, a).item<double>(), r["lpips_swapped_inputs"], kLpipsRel, "swapped");
    expect_rel(nets64.at(r["net"]).distance(a, b).item<double>(), r["lpips_float64"], kLpipsRel, "float64");
  }
  std::cout << v["records"].size() << " records x 3 variants: max relative error " << g_max_rel << "\n";
}

TEST(GoldenPairedLpips, BatchedEqualsOneByOne) {
  DMEVAL_REQUIRE_GOLDEN();
  json v = load_json("paired/lpips/values.json");
  const std::string net = v["backbones"].begin().key();
  Lpips m = load_lpips(v, net, net + ".pth");
  std::vector<torch::Tensor> a, b;
  std::vector<double> want;
  for (const json& r : v["records"]) {
    if (r["net"] != net || r["shape_hw"] != v["records"][0]["shape_hw"]) continue;
    auto [p0, c0] = parse_input(r["in0"]);
    auto [p1, c1] = parse_input(r["in1"]);
    a.push_back(unit_batch(load(p0, c0)));
    b.push_back(unit_batch(load(p1, c1)));
    want.push_back(r["lpips"]);
  }
  ASSERT_GE(want.size(), 2u);
  torch::Tensor d = m.distance(torch::cat(a), torch::cat(b));
  for (size_t i = 0; i < want.size(); ++i) expect_rel(d[i].item<double>(), want[i], kLpipsRel, "batched");
}

TEST(GoldenPairedLpips, PerLayerDumps) {
  DMEVAL_REQUIRE_GOLDEN();
  json v = load_json("paired/lpips/values.json");
  ASSERT_GT(v["layer_dumps"].size(), 0u);
  for (const auto& [file, dump] : v["layer_dumps"].items()) {
    SCOPED_TRACE(file);
    const std::string net = dump["net"];
    Lpips m = load_lpips(v, net, net + ".pth");
    // Find the record of this image/pair to know the inputs.
    const json* rec = nullptr;
    for (const json& r : v["records"])
      if (r["net"] == net && r["image"] == dump["image"] && r["pair"] == dump["pair"]) rec = &r;
    ASSERT_NE(rec, nullptr);
    auto [p0, c0] = parse_input((*rec)["in0"]);
    auto [p1, c1] = parse_input((*rec)["in1"]);
    LpipsLayers L = m.layers(unit_batch(load(p0, c0)), unit_batch(load(p1, c1)));
    auto expect = load_tensors(Checkpoint::open(shared_path(file)));
    ASSERT_EQ(static_cast<size_t>(L.feat0.size()), dump["layers"].size());
    auto close = [](const torch::Tensor& got, const torch::Tensor& want, const std::string& what) {
      ASSERT_EQ(got.sizes(), want.sizes()) << what;
      auto g = got.to(torch::kFloat64), w = want.to(torch::kFloat64);
      double err = ((g - w).abs() - kLpipsRel * w.abs()).max().item<double>();
      EXPECT_LE(err, 1e-7) << what;  // |got - want| <= 1e-5 |want| + 1e-7
    };
    for (const json& layer : dump["layers"]) {
      const int k = layer["layer"];
      const std::string p = "layer" + std::to_string(k) + ".";
      std::vector<int64_t> chw = layer["feature_shape_chw"];
      EXPECT_EQ(L.feat0[k].sizes().vec(), chw);
      close(L.feat0[k].mean({1, 2}), expect.at(p + "feat0_chmean"), p + "feat0_chmean");
      close(L.feat1[k].mean({1, 2}), expect.at(p + "feat1_chmean"), p + "feat1_chmean");
      close(L.normdiff[k].mean({1, 2}), expect.at(p + "normdiff_chmean"), p + "normdiff_chmean");
      close(L.lin_map[k], expect.at(p + "lin_map"), p + "lin_map");
      expect_rel(L.layer_mean[k], layer["res_spatial_mean_of_lin"], kLpipsRel, p + "mean");
      expect_rel(L.normdiff[k].sum(0).mean().item<double>(), layer["normdiff_sum_over_channels_spatial_mean"],
                 kLpipsRel, p + "normdiff sum");
    }
    expect_rel(L.total, dump["total"], kLpipsRel, "total");
    expect_rel(L.total, expect.at("total").item<double>(), kLpipsRel, "total tensor");
  }
}

}  // namespace
}  // namespace dmeval
