// Plots (PLplot, PNG) and sample grids: files are real PNGs of the requested size with content,
// the Pareto front is right, and empty inputs write nothing.
#include <gtest/gtest.h>

#include <cmath>

#include <filesystem>

#include "core/error.h"
#include "core/image.h"
#include "reports/plots.h"
#include "tests/support/temp_dir.h"

namespace dmeval::reports {
namespace {

using test::TempDir;

RunResult run(const char* method, int64_t w, double size, double fid, double is) {
  RunResult r;
  r.method = method;
  r.w_bits = w;
  r.a_bits = 8;
  r.size_mb = size;
  r.metrics["fid"].value = fid;
  r.metrics["is"].value = is;
  return r;
}

// Non-white pixels: the plot has content.
int64_t ink(const Image& img) {
  int64_t n = 0;
  for (size_t i = 0; i < img.pixels.size(); i += 3)
    n += img.pixels[i] < 200 || img.pixels[i + 1] < 200 || img.pixels[i + 2] < 200;
  return n;
}

TEST(ReportPlots, ParetoFront) {
  auto f = pareto_front({1, 2, 3, 4}, {5, 6, 2, 3});
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0], 0u);
  EXPECT_EQ(f[1], 2u);
}

TEST(ReportPlots, WritesPngs) {
  if (!plots_available()) GTEST_SKIP() << "built without PLplot (DMEVAL_PLOTS=OFF)";
  TempDir d;
  std::vector<RunResult> rs = {run("fp", 32, 1045, 6.4, 2.45), run("tinydm", 4, 140, 7.1, 2.41),
                               run("tinydm", 8, 270, 6.4, 2.46), run("q-diffusion", 4, 140, 7.5, 2.39)};
  ASSERT_TRUE(plot_fid_vs_size(rs, d.file("pareto.png")));
  ASSERT_TRUE(plot_metric_vs_bits(rs, "is", d.file("is.png")));
  ASSERT_TRUE(plot_latency({{"fp", 120, 110, 130}, {"tinydm W4A8", 60, 55, 70}}, d.file("lat.png")));
  for (const char* f : {"pareto.png", "is.png", "lat.png"}) {
    Image img = decode_image_file(d.file(f));
    EXPECT_EQ(img.width, 900) << f;
    EXPECT_EQ(img.height, 600) << f;
    EXPECT_GT(ink(img), 2000) << f;
  }
  EXPECT_FALSE(plot_fid_vs_size({}, d.file("none.png")));
  EXPECT_FALSE(std::filesystem::exists(d.file("none.png")));
}

TEST(ReportPlots, TrainingCurves) {
  test::TempDir d;
  RunResult a, b, untrained;
  a.method = "binarydm", a.w_bits = 1, a.a_bits = 4;
  b.method = "binary-baseline", b.w_bits = 1, b.a_bits = 4;
  for (int64_t s = 50; s <= 1500; s += 50) {
    a.training_curve.emplace_back(s, 0.2 / std::sqrt(static_cast<double>(s)));
    b.training_curve.emplace_back(s, 0.3 / std::sqrt(static_cast<double>(s)));
  }
  ASSERT_TRUE(plot_training_curves({a, b, untrained}, d.file("curves.png")));
  Image img = decode_image_file(d.file("curves.png"));
  EXPECT_EQ(img.width, 900);
  EXPECT_GT(ink(img), 2000);
  EXPECT_FALSE(plot_training_curves({untrained}, d.file("none.png")));
  EXPECT_FALSE(std::filesystem::exists(d.file("none.png")));
}

// Results that differ only in their last digits (the same cell computed on two CPUs) are plotted,
// not looped on: PLplot's tick loop never ended on a span below the values' resolution.
TEST(ReportPlots, NearlyEqualValuesPlot) {
  if (!plots_available()) GTEST_SKIP() << "built without PLplot (DMEVAL_PLOTS=OFF)";
  TempDir d;
  std::vector<RunResult> rs = {run("fp", 32, 4.46, 476.80000000000001, 3.0000000000000004),
                               run("baseline", 8, 1.14, 476.80000000000007, 3.0000000000000009)};
  ASSERT_TRUE(plot_metric_vs_bits(rs, "fid", d.file("fid.png")));
  ASSERT_TRUE(plot_metric_vs_bits(rs, "is", d.file("is.png")));
  ASSERT_TRUE(plot_fid_vs_size(rs, d.file("pareto.png")));
  for (const char* f : {"fid.png", "is.png", "pareto.png"})
    EXPECT_GT(ink(decode_image_file(d.file(f))), 2000) << f;
}

TEST(ReportPlots, SampleGridWithCaption) {
  if (!plots_available()) GTEST_SKIP() << "built without PLplot (DMEVAL_PLOTS=OFF): grids have no caption";
  std::vector<Image> imgs(5);
  for (size_t k = 0; k < imgs.size(); ++k) {
    imgs[k].width = imgs[k].height = 32;
    imgs[k].pixels.assign(32 * 32 * 3, static_cast<uint8_t>(40 * k));
  }
  Image g = sample_grid(imgs, 3, "TinyDM W4A8");
  EXPECT_EQ(g.width, 3 * 32 + 4 * 2);
  EXPECT_EQ(g.height, 28 + 2 * 32 + 3 * 2);
  // The caption strip has text in it; the first tile is where it should be.
  Image strip = g;
  strip.height = 28;
  strip.pixels.resize(static_cast<size_t>(g.width) * 28 * 3);
  EXPECT_GT(ink(strip), 20);
  EXPECT_EQ(g.pixels[(static_cast<size_t>(28 + 2) * g.width + 2) * 3], 0);
  // A smaller image is centred in its tile, not resampled.
  imgs[1].width = imgs[1].height = 16;
  imgs[1].pixels.assign(16 * 16 * 3, 7);
  Image g2 = sample_grid(imgs, 3, "x");
  EXPECT_EQ(g2.width, g.width);
  const size_t tile_x = 2 + 32 + 2, tile_y = 28 + 2;
  EXPECT_EQ(g2.pixels[((tile_y + 8) * g2.width + tile_x + 8) * 3], 7);
  EXPECT_EQ(g2.pixels[((tile_y + 1) * g2.width + tile_x + 1) * 3], 255);
  EXPECT_THROW(sample_grid({}, 3, "x"), Error);
}

// dmeval report grid's layout: nearest-neighbour zoom and folders' grids stacked on white.
TEST(ReportPlots, ZoomAndStackImages) {
  Image a;
  a.width = 2, a.height = 1;
  a.pixels = {1, 2, 3, 4, 5, 6};
  Image z = zoom_nearest(a, 3);
  ASSERT_EQ(z.width, 6);
  ASSERT_EQ(z.height, 3);
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 6; ++x)
      EXPECT_EQ(z.pixels[(static_cast<size_t>(y) * 6 + x) * 3], x < 3 ? 1 : 4) << x << "," << y;
  EXPECT_EQ(zoom_nearest(a, 1).pixels, a.pixels);

  Image s = stack_vertically({a, z}, 2);
  ASSERT_EQ(s.width, 6);
  ASSERT_EQ(s.height, 1 + 2 + 3);
  EXPECT_EQ(s.pixels[0], 1);
  EXPECT_EQ(s.pixels[1 * 3], 4);                // a's second pixel
  EXPECT_EQ(s.pixels[2 * 3], 255);              // right of the narrower image: white
  EXPECT_EQ(s.pixels[(1 * 6) * 3], 255);        // the gap
  EXPECT_EQ(s.pixels[(3 * 6 + 5) * 3 + 2], 6);  // z's first row, last pixel's blue
}

}  // namespace
}  // namespace dmeval::reports
