#include "reports/plots.h"

#ifdef DMEVAL_HAVE_PLPLOT
#include <plplot/plstream.h>
#endif
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <numeric>

#include "core/error.h"

namespace dmeval::reports {

#ifdef DMEVAL_HAVE_PLPLOT
namespace {

// cmap0: 0 white background, 1 black axes/text, then distinguishable series colours.
void setup(plstream& pls, const std::string& path, int width, int height) {
  pls.sdev("pngcairo");
  pls.sfnam(path.c_str());
  pls.spage(0, 0, width, height, 0, 0);
  PLINT r[] = {255, 0, 31, 255, 44, 214, 148, 140, 227, 127};
  PLINT g[] = {255, 0, 119, 127, 160, 39, 103, 86, 119, 127};
  PLINT b[] = {255, 0, 180, 14, 44, 40, 189, 75, 194, 127};
  pls.scmap0(r, g, b, 10);
  pls.init();
}

PLINT series_colour(size_t i) {
  return static_cast<PLINT>(2 + i % 8);
}

void frame(plstream& pls, double x0, double x1, double y0, double y1, const std::string& xl,
           const std::string& yl, const std::string& title, bool log_x) {
  pls.col0(1);
  pls.env(x0, x1, y0, y1, 0, log_x ? 10 : 0);
  pls.lab(xl.c_str(), yl.c_str(), title.c_str());
}

// An axis range around [lo, hi]. A span far below the values' own size (two runs that differ in the
// last digits, as results of different CPUs do) makes PLplot's tick loop step below the values'
// resolution and never end: the span is at least 1e-3 of the larger magnitude (or of 1).
std::pair<double, double> padded(double lo, double hi) {
  const double min_span = 1e-3 * std::max({std::abs(lo), std::abs(hi), 1.0});
  if (hi - lo < min_span) {
    const double mid = lo / 2 + hi / 2;
    return {mid - min_span, mid + min_span};
  }
  const double pad = 0.15 * (hi - lo);
  return {lo - pad, hi + pad};
}

std::string label_of(const RunResult& r) {
  std::string s = r.method.empty() ? "run " + std::to_string(r.id) : r.method;
  if (r.w_bits && r.a_bits) s += " W" + std::to_string(*r.w_bits) + "A" + std::to_string(*r.a_bits);
  return s;
}

// PLplot renders a file only when the stream is destroyed; the scope below does that.
void check_written(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec) || std::filesystem::file_size(path, ec) == 0)
    fail("{}: PLplot did not write the plot (is the plplot-driver-cairo package installed?)", path);
}

}  // namespace

#endif

bool plots_available() {
#ifdef DMEVAL_HAVE_PLPLOT
  return true;
#else
  return false;
#endif
}

std::vector<size_t> pareto_front(const std::vector<double>& x, const std::vector<double>& y) {
  std::vector<size_t> idx(x.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(),
            [&](size_t a, size_t b) { return x[a] != x[b] ? x[a] < x[b] : y[a] < y[b]; });
  std::vector<size_t> front;
  double best = INFINITY;
  for (size_t i : idx)
    if (y[i] < best) {
      front.push_back(i);
      best = y[i];
    }
  return front;
}

#ifdef DMEVAL_HAVE_PLPLOT
bool plot_fid_vs_size(const std::vector<RunResult>& results, const std::string& path,
                      const std::string& fid_metric) {
  std::vector<double> xs, ys;
  std::vector<std::string> labels;
  std::vector<std::string> methods;
  for (const auto& r : results) {
    auto it = r.metrics.find(fid_metric);
    if (!r.size_mb || it == r.metrics.end() || !it->second.value || *r.size_mb <= 0) continue;
    xs.push_back(std::log10(*r.size_mb));
    ys.push_back(*it->second.value);
    labels.push_back(label_of(r));
    methods.push_back(r.method);
  }
  if (xs.empty()) return false;
  {
    plstream pls;
    setup(pls, path, 900, 600);
    auto [x0, x1] = padded(*std::min_element(xs.begin(), xs.end()), *std::max_element(xs.begin(), xs.end()));
    auto [y0, y1] = padded(*std::min_element(ys.begin(), ys.end()), *std::max_element(ys.begin(), ys.end()));
    const std::string name = "FID" + fid_metric.substr(3);
    frame(pls, x0, x1, y0, y1, "Model size (MB, log scale)", name + " (lower is better)",
          name + " vs model size", true);
    std::map<std::string, size_t> colour;
    for (size_t i = 0; i < xs.size(); ++i) {
      const size_t c = colour.emplace(methods[i], colour.size()).first->second;
      pls.col0(series_colour(c));
      PLFLT px = xs[i], py = ys[i];
      pls.poin(1, &px, &py, 17);
      pls.schr(0, 0.7);
      pls.ptex(px, py + 0.025 * (y1 - y0), 1, 0, 0.5, labels[i].c_str());
      pls.schr(0, 1.0);
    }
    auto front = pareto_front(xs, ys);
    std::vector<PLFLT> fx, fy;
    for (size_t i : front) fx.push_back(xs[i]), fy.push_back(ys[i]);
    pls.col0(1);
    pls.lsty(2);
    if (fx.size() > 1) pls.line(static_cast<PLINT>(fx.size()), fx.data(), fy.data());
    pls.lsty(1);
    pls.mtex("t", 0.5, 0.0, 0.0, "dashed: Pareto front");
  }
  check_written(path);
  return true;
}

bool plot_metric_vs_bits(const std::vector<RunResult>& results, const std::string& metric,
                         const std::string& path) {
  std::map<std::string, std::vector<std::pair<double, double>>> by_method;
  for (const auto& r : results) {
    auto it = r.metrics.find(metric);
    if (!r.w_bits || it == r.metrics.end() || !it->second.value) continue;
    by_method[r.method.empty() ? "?" : r.method].emplace_back(static_cast<double>(*r.w_bits),
                                                              *it->second.value);
  }
  if (by_method.empty()) return false;
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (auto& [m, pts] : by_method) {
    std::sort(pts.begin(), pts.end());
    for (auto [x, y] : pts)
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
  }
  {
    plstream pls;
    setup(pls, path, 900, 600);
    auto [px0, px1] = padded(std::log2(x0), std::log2(x1));
    auto [py0, py1] = padded(y0, y1);
    frame(pls, px0, px1, py0, py1, "weight bits (log2)", metric.c_str(),
          (metric + " vs weight bit-width").c_str(), false);
    size_t c = 0;
    for (const auto& [m, pts] : by_method) {
      std::vector<PLFLT> xs, ys;
      for (auto [x, y] : pts) xs.push_back(std::log2(x)), ys.push_back(y);
      pls.col0(series_colour(c++));
      pls.line(static_cast<PLINT>(xs.size()), xs.data(), ys.data());
      pls.poin(static_cast<PLINT>(xs.size()), xs.data(), ys.data(), 17);
      pls.schr(0, 0.7);
      pls.ptex(xs.back(), ys.back() + 0.025 * (py1 - py0), 1, 0, 0.5, m.c_str());
      pls.schr(0, 1.0);
    }
  }
  check_written(path);
  return true;
}

bool plot_latency(const std::vector<LatencyBar>& bars, const std::string& path) {
  if (bars.empty()) return false;
  double hi = 0;
  for (const auto& b : bars) hi = std::max({hi, b.median_ms, b.p90_ms});
  {
    plstream pls;
    setup(pls, path, 900, 600);
    pls.col0(1);
    pls.env(0, static_cast<PLFLT>(bars.size()), 0, hi * 1.15, 0, -2);
    pls.box("bc", 0, 0, "bcnstv", 0, 0);
    pls.lab("", "latency (ms; bar = median, whisker = p10..p90)", "Latency per method");
    for (size_t i = 0; i < bars.size(); ++i) {
      const PLFLT l = i + 0.15, r = i + 0.85;
      PLFLT x[] = {l, l, r, r}, y[] = {0, bars[i].median_ms, bars[i].median_ms, 0};
      pls.col0(series_colour(i));
      pls.fill(4, x, y);
      pls.col0(1);
      PLFLT wx[] = {i + 0.5, i + 0.5}, wy[] = {bars[i].p10_ms, bars[i].p90_ms};
      pls.line(2, wx, wy);
      pls.schr(0, 0.7);
      pls.mtex("b", 1.5, (i + 0.5) / bars.size(), 0.5, bars[i].label.c_str());
      pls.schr(0, 1.0);
    }
  }
  check_written(path);
  return true;
}

bool plot_training_curves(const std::vector<RunResult>& results, const std::string& path) {
  std::vector<const RunResult*> runs;
  for (const auto& r : results)
    if (r.training_curve.size() >= 2) runs.push_back(&r);
  if (runs.empty()) return false;
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const RunResult* r : runs)
    for (auto [s, l] : r->training_curve) {
      if (!(l > 0)) continue;
      x0 = std::min(x0, static_cast<double>(s)), x1 = std::max(x1, static_cast<double>(s));
      y0 = std::min(y0, std::log10(l)), y1 = std::max(y1, std::log10(l));
    }
  if (!(x1 > x0)) return false;
  {
    plstream pls;
    setup(pls, path, 900, 600);
    auto [py0, py1] = padded(y0, y1);
    pls.col0(1);
    pls.env(x0, x1, py0, py1, 0, 20);  // log y
    pls.lab("training step", "loss (log scale)", "Training loss per step (mean over each log interval)");
    for (size_t i = 0; i < runs.size(); ++i) {
      std::vector<PLFLT> xs, ys;
      for (auto [s, l] : runs[i]->training_curve)
        if (l > 0) xs.push_back(static_cast<double>(s)), ys.push_back(std::log10(l));
      pls.col0(series_colour(i));
      pls.line(static_cast<PLINT>(xs.size()), xs.data(), ys.data());
      pls.schr(0, 0.8);
      const std::string label = label_of(*runs[i]);
      pls.ptex(x0 + 0.62 * (x1 - x0), py1 - (0.06 + 0.06 * static_cast<double>(i)) * (py1 - py0), 1, 0, 0,
               label.c_str());
      PLFLT lx[] = {x0 + 0.55 * (x1 - x0), x0 + 0.6 * (x1 - x0)};
      PLFLT ly[] = {py1 - (0.05 + 0.06 * static_cast<double>(i)) * (py1 - py0),
                    py1 - (0.05 + 0.06 * static_cast<double>(i)) * (py1 - py0)};
      pls.line(2, lx, ly);
      pls.schr(0, 1.0);
    }
  }
  check_written(path);
  return true;
}

#else
namespace {
[[noreturn]] void no_plplot() {
  fail(
      "this dmeval was built without PLplot (DMEVAL_PLOTS=OFF): install libplplot-dev and "
      "plplot-driver-cairo "
      "(scripts/install-deps.sh) and rebuild to get plots");
}
}  // namespace
bool plot_fid_vs_size(const std::vector<RunResult>&, const std::string&, const std::string&) {
  no_plplot();
}
bool plot_metric_vs_bits(const std::vector<RunResult>&, const std::string&, const std::string&) {
  no_plplot();
}
bool plot_latency(const std::vector<LatencyBar>&, const std::string&) {
  no_plplot();
}
bool plot_training_curves(const std::vector<RunResult>&, const std::string&) {
  no_plplot();
}
#endif

Image zoom_nearest(const Image& im, int f) {
  if (f <= 1) return im;
  Image out;
  out.width = im.width * f;
  out.height = im.height * f;
  out.pixels.resize(static_cast<size_t>(out.width) * out.height * 3);
  for (int y = 0; y < out.height; ++y)
    for (int x = 0; x < out.width; ++x)
      for (int c = 0; c < 3; ++c)
        out.pixels[(static_cast<size_t>(y) * out.width + x) * 3 + c] =
            im.pixels[(static_cast<size_t>(y / f) * im.width + x / f) * 3 + c];
  return out;
}

Image stack_vertically(const std::vector<Image>& parts, int gap) {
  Image out;
  for (const auto& p : parts) {
    out.width = std::max(out.width, p.width);
    out.height += p.height + (out.height ? gap : 0);
  }
  out.pixels.assign(static_cast<size_t>(out.width) * out.height * 3, 255);
  int y0 = 0;
  for (const auto& p : parts) {
    for (int y = 0; y < p.height; ++y)
      std::copy_n(p.pixels.begin() + static_cast<std::ptrdiff_t>(y) * p.width * 3, p.width * 3,
                  out.pixels.begin() + (static_cast<std::ptrdiff_t>(y0 + y) * out.width) * 3);
    y0 += p.height + gap;
  }
  return out;
}

Image sample_grid(const std::vector<Image>& images, int columns, const std::string& caption) {
  if (images.empty()) fail("sample grid: no images");
  if (columns < 1) fail("sample grid: columns must be >= 1");
  // Tiles as large as the largest image; smaller images are centred on white (never resampled).
  int h = 0, w = 0;
  const int gap = 2;
  for (const auto& im : images) h = std::max(h, im.height), w = std::max(w, im.width);
  if (h <= 0 || w <= 0) fail("sample grid: empty image");
  const int cols = std::min<int>(columns, static_cast<int>(images.size()));
  const int rows = (static_cast<int>(images.size()) + cols - 1) / cols;
  const int gw = cols * w + (cols + 1) * gap, gh = rows * h + (rows + 1) * gap;
  // Caption strip rendered by PLplot, as wide as the grid (none without PLplot).
  Image strip;
#ifdef DMEVAL_HAVE_PLPLOT
  {
    char tmpl[] = "/tmp/dmeval-caption-XXXXXX";
    const int fd = mkstemp(tmpl);
    if (fd < 0) fail("sample grid: cannot create a temporary file");
    close(fd);
    const std::string png = std::string(tmpl) + ".png";
    {
      plstream pls;
      // The caption grows with the grid so that it stays legible when a large grid is shown scaled down.
      const int strip_h = std::max(28, gw / 30);
      setup(pls, png, std::max(gw, 64), strip_h);
      pls.adv(0);
      pls.vpor(0, 1, 0, 1);
      pls.wind(0, 1, 0, 1);
      pls.col0(1);
      pls.schr(strip_h * 0.4 / 3.54, 1.0);  // character height in mm (the cairo driver draws 90 dpi)
      pls.ptex(0.5, 0.3, 1, 0, 0.5, caption.c_str());
    }
    strip = decode_image_file(png);
    std::remove(png.c_str());
    std::remove(tmpl);
  }
#endif
  Image out;
  out.width = std::max(gw, strip.width);
  out.height = gh + strip.height;
  out.pixels.assign(static_cast<size_t>(out.width) * out.height * 3, 255);
  for (int y = 0; y < strip.height; ++y)
    std::copy_n(strip.pixels.data() + static_cast<size_t>(y) * strip.width * 3,
                static_cast<size_t>(strip.width) * 3,
                out.pixels.data() + static_cast<size_t>(y) * out.width * 3);
  for (size_t k = 0; k < images.size(); ++k) {
    const int r = static_cast<int>(k) / cols, c = static_cast<int>(k) % cols;
    const Image& im = images[k];
    const int oy = strip.height + gap + r * (h + gap) + (h - im.height) / 2;
    const int ox = gap + c * (w + gap) + (w - im.width) / 2;
    for (int y = 0; y < im.height; ++y)
      std::copy_n(im.pixels.data() + static_cast<size_t>(y) * im.width * 3, static_cast<size_t>(im.width) * 3,
                  out.pixels.data() + (static_cast<size_t>(oy + y) * out.width + ox) * 3);
  }
  return out;
}

}  // namespace dmeval::reports
