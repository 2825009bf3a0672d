// Paired SR metrics without golden data: the SSIM fast path against the plain 2-D reference, PSNR
// edge cases, Y of grey pixels, mod-crop, the resize paths on constant images, and folder pairing /
// loading errors (sizes, grey vs colour, 16-bit, empty folders).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <random>

#include "core/checkpoint.h"
#include "core/error.h"
#include "core/image.h"
#include "metrics/lpips.h"
#include "metrics/matlab_resize.h"
#include "metrics/paired_folders.h"
#include "metrics/psnr_ssim.h"
#include "tests/support/temp_dir.h"

namespace dmeval {
namespace {

using test::TempDir;

Image random_image(int h, int w, uint32_t seed) {
  std::mt19937 rng(seed);
  Image img;
  img.height = h;
  img.width = w;
  img.pixels.resize(static_cast<size_t>(h) * w * 3);
  for (auto& p : img.pixels) p = static_cast<uint8_t>(rng() & 255);
  return img;
}

Image noisy_copy(const Image& src, int amplitude, uint32_t seed) {
  std::mt19937 rng(seed);
  Image out = src;
  for (auto& p : out.pixels)
    p = static_cast<uint8_t>(std::clamp<int>(p + int(rng() % (2 * amplitude + 1)) - amplitude, 0, 255));
  return out;
}

TEST(PairedSsim, FastPathEqualsReference) {
  Image a = random_image(37, 53, 1);
  Image b = noisy_copy(a, 20, 2);
  for (bool y : {false, true}) {
    Planes pa = planes_from_image(a), pb = planes_from_image(b);
    if (y) pa = y_channel(pa), pb = y_channel(pb);
    EXPECT_NEAR(ssim(pa, pb), ssim_reference(pa, pb), 1e-12);
  }
}

TEST(PairedSsim, IdenticalIsOneAndTooSmallIsAnError) {
  Planes p = planes_from_image(random_image(20, 20, 3));
  EXPECT_NEAR(ssim(p, p), 1.0, 1e-12);
  Planes small = planes_from_image(random_image(10, 30, 4));
  EXPECT_THROW(ssim(small, small), Error);
  // A crop border that leaves less than 11x11 is reported with the pair's name.
  try {
    psnr_ssim(p, p, {5, false}, "baby.png");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("baby.png"), std::string::npos) << e.what();
  }
}

TEST(PairedPsnr, IdenticalIsInfinityAndMeansCountIt) {
  Planes p = planes_from_image(random_image(16, 16, 5));
  EXPECT_TRUE(std::isinf(psnr(p, p)));
  PsnrMean m = mean_psnr({30.0, std::numeric_limits<double>::infinity(), 32.0});
  EXPECT_EQ(m.infinite, 1);
  EXPECT_EQ(m.finite, 2);
  EXPECT_DOUBLE_EQ(m.mean_finite, 31.0);
  EXPECT_TRUE(std::isnan(mean_psnr({std::numeric_limits<double>::infinity()}).mean_finite));
}

TEST(PairedPsnr, KnownMse) {
  Image a = random_image(8, 8, 6);
  for (auto& v : a.pixels) v = 100;
  Image b = a;
  for (auto& v : b.pixels) v = 110;  // MSE = 100
  EXPECT_NEAR(psnr(planes_from_image(a), planes_from_image(b)), 10 * std::log10(255.0 * 255.0 / 100.0),
              1e-12);
  // Shapes must agree.
  EXPECT_THROW(psnr(planes_from_image(a), planes_from_image(random_image(8, 9, 7))), Error);
}

TEST(PairedY, GreyPixelsUseStudioSwing) {
  Image g = random_image(1, 3, 8);
  g.pixels = {0, 0, 0, 255, 255, 255, 128, 128, 128};
  Planes y = y_channel(planes_from_image(g));
  ASSERT_EQ(y.channels, 1);
  EXPECT_NEAR(y.values[0], 16.0, 1e-4);
  EXPECT_NEAR(y.values[1], 235.0, 1e-4);
  EXPECT_NEAR(y.values[2], 16.0 + 219.0 * 128 / 255, 1e-4);
}

TEST(PairedResize, ConstantImageStaysConstantAndSizesFollowCeil) {
  Image c = random_image(13, 10, 9);
  for (auto& v : c.pixels) v = 77;
  for (double s : {0.25, 0.5, 2.0, 1.0 / 3}) {
    Image f = matlab_imresize_float(c, s);
    Image u = matlab_imresize_uint8(c, s);
    EXPECT_EQ(f.height, static_cast<int>(std::ceil(13 * s)));
    EXPECT_EQ(f.width, static_cast<int>(std::ceil(10 * s)));
    EXPECT_EQ(u.height, f.height);
    for (uint8_t v : f.pixels) EXPECT_EQ(v, 77);
    for (uint8_t v : u.pixels) EXPECT_EQ(v, 77);
  }
  EXPECT_THROW(matlab_imresize_uint8(c, 0), Error);
}

TEST(PairedResize, ModCrop) {
  Image img = random_image(13, 10, 10);
  Image m = mod_crop(img, 4);
  EXPECT_EQ(m.height, 12);
  EXPECT_EQ(m.width, 8);
  EXPECT_EQ(m.pixels[(1 * 8 + 3) * 3 + 2], img.pixels[(1 * 10 + 3) * 3 + 2]);
  EXPECT_THROW(mod_crop(img, 20), Error);
}

// --- folder pairing and loading

void write_rgb(const std::string& path, const Image& img) {
  write_png(path, img);
}

TEST(PairedFolders, PairsByExactNameAndBySuffix) {
  TempDir hr, sr;
  Image img = random_image(16, 16, 11);
  write_rgb(hr.file("baby.png"), img);
  write_rgb(hr.file("bird.png"), img);
  write_rgb(hr.file("butterfly.png"), img);
  write_rgb(sr.file("baby.png"), img);
  write_rgb(sr.file("bird_BI-DiffSR.png"), img);
  write_rgb(sr.file("extra.png"), img);
  FolderPairing p = pair_folders(hr.path(), sr.path());
  ASSERT_EQ(p.pairs.size(), 2u);
  EXPECT_EQ(p.pairs[0].name, "baby");
  EXPECT_EQ(p.pairs[1].name, "bird");
  EXPECT_EQ(p.by_suffix, 1);
  ASSERT_EQ(p.unpaired_reference.size(), 1u);
  EXPECT_NE(p.unpaired_reference[0].find("butterfly"), std::string::npos);
  ASSERT_EQ(p.unpaired_distorted.size(), 1u);
  EXPECT_NE(p.unpaired_distorted[0].find("extra"), std::string::npos);
}

TEST(PairedFolders, AmbiguousAndEmptyFoldersAreErrors) {
  TempDir hr, sr, empty;
  Image img = random_image(16, 16, 12);
  write_rgb(hr.file("baby.png"), img);
  write_rgb(sr.file("baby_a.png"), img);
  write_rgb(sr.file("baby_b.png"), img);
  EXPECT_THROW(pair_folders(hr.path(), sr.path()), Error);
  try {
    pair_folders(hr.path(), empty.path());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no images"), std::string::npos) << e.what();
  }
  EXPECT_THROW(pair_folders(hr.path(), empty.file("missing")), Error);
}

TEST(PairedFolders, SizeMismatchNamesBothFilesAndModCropFixesIt) {
  TempDir d;
  write_rgb(d.file("hr.png"), random_image(18, 17, 13));
  write_rgb(d.file("sr.png"), random_image(16, 16, 14));
  ImagePair pair{"x", d.file("hr.png"), d.file("sr.png")};
  try {
    load_sr_pair(pair, 1);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("hr.png"), std::string::npos) << msg;
    EXPECT_NE(msg.find("sr.png"), std::string::npos) << msg;
    EXPECT_NE(msg.find("17x18"), std::string::npos) << msg;
  }
  LoadedPair p = load_sr_pair(pair, 4);  // 18x17 -> 16x16
  EXPECT_EQ(p.reference.height, 16);
  EXPECT_EQ(p.reference.width, 16);
}

// --- LPIPS with random weights: the golden data checks alex and squeeze values; vgg's structure,
// symmetry and the load errors are checked here.

std::string save_dict(const TempDir& d, const std::string& name,
                      const std::map<std::string, torch::Tensor>& m) {
  c10::Dict<std::string, torch::Tensor> dict;
  for (const auto& [k, v] : m) dict.insert(k, v);
  std::vector<char> bytes = torch::pickle_save(c10::IValue(dict));
  return d.write(name, std::string(bytes.begin(), bytes.end()));
}

std::map<std::string, torch::Tensor> random_vgg(bool with_linear) {
  torch::manual_seed(0);
  std::map<std::string, torch::Tensor> m;
  const int convs[][3] = {{0, 64, 3},     {2, 64, 64},    {5, 128, 64},   {7, 128, 128},  {10, 256, 128},
                          {12, 256, 256}, {14, 256, 256}, {17, 512, 256}, {19, 512, 512}, {21, 512, 512},
                          {24, 512, 512}, {26, 512, 512}, {28, 512, 512}};
  if (!with_linear) {
    for (const auto& c : convs) {
      m["features." + std::to_string(c[0]) + ".weight"] = torch::randn({c[1], c[2], 3, 3}) * 0.05;
      m["features." + std::to_string(c[0]) + ".bias"] = torch::randn({c[1]}) * 0.01;
    }
    m["classifier.0.weight"] = torch::zeros({2, 2});  // the full classifier file has these too
  } else {
    const int ch[] = {64, 128, 256, 512, 512};
    for (int k = 0; k < 5; ++k)
      m["lin" + std::to_string(k) + ".model.1.weight"] = torch::rand({1, ch[k], 1, 1});
  }
  return m;
}

TEST(PairedLpips, VggTapsSymmetryAndZeroDistance) {
  TempDir d;
  Checkpoint bb = Checkpoint::open(save_dict(d, "vgg16.pth", random_vgg(false)));
  Checkpoint lin = Checkpoint::open(save_dict(d, "vgg.pth", random_vgg(true)));
  Lpips m = Lpips::load(LpipsNet::kVgg, bb, lin);
  EXPECT_EQ(m.taps(), 5);
  torch::manual_seed(1);
  auto a = torch::rand({2, 3, 64, 64}), b = torch::rand({2, 3, 64, 64});
  LpipsLayers L = m.layers(a, b);
  const int64_t channels[] = {64, 128, 256, 512, 512}, sizes[] = {64, 32, 16, 8, 4};
  for (int k = 0; k < 5; ++k) {
    EXPECT_EQ(L.feat0[k].size(0), channels[k]);
    EXPECT_EQ(L.feat0[k].size(1), sizes[k]);
    EXPECT_GE(L.feat0[k].min().item<float>(), 0.0f);  // taps are ReLU outputs
  }
  auto d_ab = m.distance(a, b), d_ba = m.distance(b, a);
  EXPECT_EQ(d_ab.size(0), 2);
  EXPECT_NEAR(d_ab[0].item<double>(), L.total, 1e-6 * std::abs(L.total));
  EXPECT_NEAR(d_ab[1].item<double>(), d_ba[1].item<double>(), 1e-7);
  EXPECT_GT(d_ab[0].item<double>(), 0);
  EXPECT_EQ(m.distance(a, a)[0].item<double>(), 0.0);
}

TEST(PairedLpips, WrongFilesAreNamed) {
  TempDir d;
  auto bb_map = random_vgg(false);
  Checkpoint lin = Checkpoint::open(save_dict(d, "vgg.pth", random_vgg(true)));
  // A squeeze backbone requested from VGG tensors: missing key, file named.
  try {
    Lpips::load(LpipsNet::kSqueeze, Checkpoint::open(save_dict(d, "vgg16.pth", bb_map)), lin);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("vgg16.pth"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("squeezenet1_1-b8a52dc0.pth"), std::string::npos) << e.what();
  }
  // A wrong shape.
  bb_map["features.5.weight"] = torch::zeros({128, 64, 5, 5});
  try {
    Lpips::load(LpipsNet::kVgg, Checkpoint::open(save_dict(d, "bad.pth", bb_map)), lin);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("features.5.weight"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("(128,64,3,3)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_lpips_net("resnet"), Error);
}

}  // namespace
}  // namespace dmeval
