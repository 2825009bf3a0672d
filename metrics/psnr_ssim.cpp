#include "metrics/psnr_ssim.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace dmeval {

namespace {

constexpr int kWindow = 11;
constexpr int kHalf = 5;

// cv2.getGaussianKernel(11, 1.5) in float64: exp(-(i-5)^2 / (2 sigma^2)), normalised to sum 1.
const std::vector<double>& gaussian_window() {
  static const std::vector<double> kKernel = [] {
    std::vector<double> g(kWindow);
    const double sigma = 1.5;
    double sum = 0;
    for (int i = 0; i < kWindow; ++i) {
      const double x = i - kHalf;
      g[i] = std::exp(-(x * x) / (2 * sigma * sigma));
      sum += g[i];
    }
    for (double& v : g) v /= sum;
    return g;
  }();
  return kKernel;
}

void require_same_shape(const Planes& a, const Planes& b, const std::string& what) {
  if (a.channels != b.channels || a.height != b.height || a.width != b.width)
    fail("{}: shapes differ: {}x{}x{} vs {}x{}x{} (height x width x channels)", what, a.height, a.width,
         a.channels, b.height, b.width, b.channels);
}

// SSIM statistics of one channel from the five window sums.
inline double ssim_value(double mu_x, double mu_y, double xx, double yy, double xy) {
  constexpr double c1 = (0.01 * 255) * (0.01 * 255);
  constexpr double c2 = (0.03 * 255) * (0.03 * 255);
  const double mu_x2 = mu_x * mu_x, mu_y2 = mu_y * mu_y, mu_xy = mu_x * mu_y;
  const double sx = xx - mu_x2, sy = yy - mu_y2, sxy = xy - mu_xy;
  return ((2 * mu_xy + c1) * (2 * sxy + c2)) / ((mu_x2 + mu_y2 + c1) * (sx + sy + c2));
}

// Separable fast path: horizontal pass over every row (valid columns), then vertical pass.
double ssim_channel(const double* x, const double* y, int h, int w) {
  const auto& g = gaussian_window();
  const int oh = h - 2 * kHalf, ow = w - 2 * kHalf;
  // Five horizontally filtered maps, h x ow each: x, y, x^2, y^2, x*y.
  std::vector<double> hx(static_cast<size_t>(h) * ow * 5);
  at::parallel_for(0, h, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const double* xr = x + r * w;
      const double* yr = y + r * w;
      double* o = hx.data() + static_cast<size_t>(r) * ow * 5;
      for (int c = 0; c < ow; ++c) {
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0;
        for (int k = 0; k < kWindow; ++k) {
          const double a = xr[c + k], b = yr[c + k], wk = g[k];
          s0 += wk * a;
          s1 += wk * b;
          s2 += wk * (a * a);
          s3 += wk * (b * b);
          s4 += wk * (a * b);
        }
        double* t = o + static_cast<size_t>(c) * 5;
        t[0] = s0, t[1] = s1, t[2] = s2, t[3] = s3, t[4] = s4;
      }
    }
  });
  std::vector<double> row_sums(oh);
  at::parallel_for(0, oh, 8, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      double acc = 0;
      for (int c = 0; c < ow; ++c) {
        double s[5] = {0, 0, 0, 0, 0};
        for (int k = 0; k < kWindow; ++k) {
          const double* t = hx.data() + (static_cast<size_t>(r + k) * ow + c) * 5;
          const double wk = g[k];
          for (int m = 0; m < 5; ++m) s[m] += wk * t[m];
        }
        acc += ssim_value(s[0], s[1], s[2], s[3], s[4]);
      }
      row_sums[r] = acc;
    }
  });
  double total = 0;
  for (double v : row_sums) total += v;
  return total / (static_cast<double>(oh) * ow);
}

double ssim_channel_reference(const double* x, const double* y, int h, int w) {
  const auto& g = gaussian_window();
  double total = 0;
  for (int r = kHalf; r < h - kHalf; ++r) {
    for (int c = kHalf; c < w - kHalf; ++c) {
      double s[5] = {0, 0, 0, 0, 0};
      for (int i = 0; i < kWindow; ++i) {
        for (int j = 0; j < kWindow; ++j) {
          const double wij = g[i] * g[j];
          const size_t at = static_cast<size_t>(r - kHalf + i) * w + (c - kHalf + j);
          const double a = x[at], b = y[at];
          s[0] += wij * a;
          s[1] += wij * b;
          s[2] += wij * a * a;
          s[3] += wij * b * b;
          s[4] += wij * a * b;
        }
      }
      total += ssim_value(s[0], s[1], s[2], s[3], s[4]);
    }
  }
  return total / (static_cast<double>(h - 2 * kHalf) * (w - 2 * kHalf));
}

template <typename ChannelFn>
double ssim_impl(const Planes& a, const Planes& b, ChannelFn fn) {
  require_same_shape(a, b, "ssim");
  if (a.height < kWindow || a.width < kWindow)
    fail("ssim: the (cropped) image is {}x{} pixels; SSIM's 11x11 window needs at least 11x11", a.height,
         a.width);
  if (a.channels < 1) fail("ssim: no channels");
  double sum = 0;
  for (int c = 0; c < a.channels; ++c) sum += fn(a.plane(c), b.plane(c), a.height, a.width);
  return sum / a.channels;
}

}  // namespace

Planes planes_from_image(const Image& image) {
  Planes p;
  p.channels = 3;
  p.height = image.height;
  p.width = image.width;
  const size_t n = static_cast<size_t>(image.height) * image.width;
  p.values.resize(n * 3);
  for (size_t i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c) p.values[c * n + i] = image.pixels[i * 3 + c];
  return p;
}

Planes planes_from_unit_hwc(const float* hwc, int height, int width, bool clip) {
  Planes p;
  p.channels = 3;
  p.height = height;
  p.width = width;
  const size_t n = static_cast<size_t>(height) * width;
  p.values.resize(n * 3);
  for (size_t i = 0; i < n; ++i) {
    for (int c = 0; c < 3; ++c) {
      double v = hwc[i * 3 + c];
      if (clip) v = std::min(1.0, std::max(0.0, v));
      p.values[c * n + i] = v * 255.0;
    }
  }
  return p;
}

Planes crop_planes(const Planes& p, int border) {
  if (border < 0) fail("crop border must be >= 0, got {}", border);
  if (border == 0) return p;
  if (2 * border >= p.height || 2 * border >= p.width)
    fail("a crop border of {} leaves nothing of a {}x{} image", border, p.height, p.width);
  Planes out;
  out.channels = p.channels;
  out.height = p.height - 2 * border;
  out.width = p.width - 2 * border;
  out.values.resize(static_cast<size_t>(out.channels) * out.height * out.width);
  for (int c = 0; c < p.channels; ++c)
    for (int r = 0; r < out.height; ++r)
      std::copy_n(p.plane(c) + static_cast<size_t>(r + border) * p.width + border, out.width,
                  out.plane(c) + static_cast<size_t>(r) * out.width);
  return out;
}

Planes y_channel(const Planes& rgb) {
  if (rgb.channels == 1) return rgb;
  if (rgb.channels != 3) fail("Y channel needs 1 or 3 channels, got {}", rgb.channels);
  Planes y;
  y.channels = 1;
  y.height = rgb.height;
  y.width = rgb.width;
  const size_t n = static_cast<size_t>(rgb.height) * rgb.width;
  y.values.resize(n);
  const double* r = rgb.plane(0);
  const double* g = rgb.plane(1);
  const double* b = rgb.plane(2);
  for (size_t i = 0; i < n; ++i) {
    // BasicSR: img.astype(float32) / 255 -> np.dot(BGR, [24.966, 128.553, 65.481]) in float64
    // -> + 16 -> / 255 -> float32 -> * 255 in float32. (This file is compiled without FMA contraction.)
    const double bf = static_cast<float>(b[i]) / 255.0f;
    const double gf = static_cast<float>(g[i]) / 255.0f;
    const double rf = static_cast<float>(r[i]) / 255.0f;
    const double dot = bf * 24.966 + gf * 128.553 + rf * 65.481;
    const float unit = static_cast<float>((dot + 16.0) / 255.0);
    y.values[i] = static_cast<float>(unit * 255.0f);
  }
  return y;
}

double psnr(const Planes& a, const Planes& b) {
  require_same_shape(a, b, "psnr");
  if (a.values.empty()) fail("psnr: empty images");
  double sum = 0;
  for (size_t i = 0; i < a.values.size(); ++i) {
    const double d = a.values[i] - b.values[i];
    sum += d * d;
  }
  const double mse = sum / static_cast<double>(a.values.size());
  if (mse == 0) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(255.0 * 255.0 / mse);
}

double ssim(const Planes& a, const Planes& b) {
  return ssim_impl(a, b, ssim_channel);
}

double ssim_reference(const Planes& a, const Planes& b) {
  return ssim_impl(a, b, ssim_channel_reference);
}

PsnrSsim psnr_ssim(const Planes& reference, const Planes& distorted, const PairedConventions& conv,
                   const std::string& what) {
  require_same_shape(reference, distorted, what);
  Planes a, b;
  try {
    a = crop_planes(reference, conv.crop_border);
    b = crop_planes(distorted, conv.crop_border);
    if (conv.y_channel) {
      a = y_channel(a);
      b = y_channel(b);
    }
    PsnrSsim out;
    out.psnr = psnr(a, b);
    out.ssim = ssim(a, b);
    return out;
  } catch (const Error& e) {
    fail("{}: {}", what, e.what());
  }
}

PsnrMean mean_psnr(const std::vector<double>& values) {
  PsnrMean m;
  double sum = 0;
  for (double v : values) {
    if (std::isinf(v) && v > 0) {
      ++m.infinite;
    } else {
      sum += v;
      ++m.finite;
    }
  }
  m.mean_finite = m.finite ? sum / m.finite : std::numeric_limits<double>::quiet_NaN();
  return m;
}

}  // namespace dmeval
