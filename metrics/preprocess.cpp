// Each resize follows the reference library's arithmetic operation by operation (float32 vs
// double, order of the blend); compiled with -ffp-contract=off so no FMA changes the rounding.
#include "metrics/preprocess.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace dmeval {

namespace F = torch::nn::functional;

namespace {
struct ModeName {
  PreprocessMode mode;
  const char* name;
};
constexpr ModeName kModes[] = {
    {PreprocessMode::kPytorchFid, "pytorch-fid"},
    {PreprocessMode::kTf, "tf"},
    {PreprocessMode::kClean, "clean"},
    {PreprocessMode::kCleanLegacyPytorch, "clean-legacy-pytorch"},
};
}  // namespace

const char* preprocess_mode_name(PreprocessMode m) {
  for (const auto& x : kModes)
    if (x.mode == m) return x.name;
  return "?";
}

std::optional<PreprocessMode> preprocess_mode_from_name(const std::string& name) {
  for (const auto& x : kModes)
    if (name == x.name) return x.mode;
  return std::nullopt;
}

const std::vector<std::string>& preprocess_mode_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& x : kModes) v.emplace_back(x.name);
    return v;
  }();
  return names;
}

// TF 1.x ResizeBilinear, align_corners=False, half_pixel_centers=False: src = dst * (in/out).
std::vector<float> resize_tf_legacy_bilinear(const std::vector<float>& in, int ih, int iw, int oh, int ow) {
  const float sy = static_cast<float>(ih) / static_cast<float>(oh);
  const float sx = static_cast<float>(iw) / static_cast<float>(ow);
  std::vector<int> x0(ow), x1(ow);
  std::vector<float> fx(ow);
  for (int x = 0; x < ow; ++x) {
    float src = static_cast<float>(x) * sx;
    int lo = static_cast<int>(std::floor(src));
    x0[x] = lo;
    x1[x] = std::min(lo + 1, iw - 1);
    fx[x] = src - static_cast<float>(lo);
  }
  std::vector<float> out(static_cast<size_t>(oh) * ow);
  for (int y = 0; y < oh; ++y) {
    float src = static_cast<float>(y) * sy;
    int lo = static_cast<int>(std::floor(src));
    int hi = std::min(lo + 1, ih - 1);
    float fy = src - static_cast<float>(lo);
    const float* top_row = in.data() + static_cast<size_t>(lo) * iw;
    const float* bot_row = in.data() + static_cast<size_t>(hi) * iw;
    for (int x = 0; x < ow; ++x) {
      float tl = top_row[x0[x]], tr = top_row[x1[x]], bl = bot_row[x0[x]], br = bot_row[x1[x]];
      float top = tl + (tr - tl) * fx[x];
      float bottom = bl + (br - bl) * fx[x];
      out[static_cast<size_t>(y) * ow + x] = top + (bottom - top) * fy;
    }
  }
  return out;
}

namespace {
// Pillow's bicubic kernel (a = -0.5), as in libImaging/Resample.c.
double bicubic(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

struct Coeffs {
  int ksize = 0;
  std::vector<int> bounds;  // per output: xmin, count
  std::vector<double> k;    // ksize per output
};

// Pillow's precompute_coeffs for the bicubic filter (support 2), box = whole image.
Coeffs precompute(int in_size, int out_size) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = 2.0 * filterscale;
  Coeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.bounds.resize(2 * out_size);
  c.k.assign(static_cast<size_t>(out_size) * c.ksize, 0.0);
  for (int xx = 0; xx < out_size; ++xx) {
    double center = (xx + 0.5) * scale;
    double ww = 0.0;
    double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double* k = &c.k[static_cast<size_t>(xx) * c.ksize];
    for (int x = 0; x < xmax; ++x) {
      double w = bicubic((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (int x = 0; x < xmax; ++x)
      if (ww != 0.0) k[x] /= ww;
    c.bounds[2 * xx] = xmin;
    c.bounds[2 * xx + 1] = xmax;
  }
  return c;
}
}  // namespace

// Pillow Image.resize(BICUBIC) on a mode "F" image: horizontal pass then vertical, each
// accumulating in double and storing float32; an unchanged axis is skipped (copied).
std::vector<float> resize_pillow_bicubic(const std::vector<float>& in, int ih, int iw, int oh, int ow) {
  std::vector<float> cur = in;
  int w = iw;
  if (ow != iw) {
    Coeffs c = precompute(iw, ow);
    std::vector<float> tmp(static_cast<size_t>(ih) * ow);
    for (int y = 0; y < ih; ++y) {
      const float* row = cur.data() + static_cast<size_t>(y) * w;
      for (int xx = 0; xx < ow; ++xx) {
        const double* k = &c.k[static_cast<size_t>(xx) * c.ksize];
        int xmin = c.bounds[2 * xx], n = c.bounds[2 * xx + 1];
        double ss = 0.0;
        for (int x = 0; x < n; ++x) ss += row[x + xmin] * k[x];
        tmp[static_cast<size_t>(y) * ow + xx] = static_cast<float>(ss);
      }
    }
    cur.swap(tmp);
    w = ow;
  }
  if (oh != ih) {
    Coeffs c = precompute(ih, oh);
    std::vector<float> tmp(static_cast<size_t>(oh) * w);
    for (int yy = 0; yy < oh; ++yy) {
      const double* k = &c.k[static_cast<size_t>(yy) * c.ksize];
      int ymin = c.bounds[2 * yy], n = c.bounds[2 * yy + 1];
      for (int x = 0; x < w; ++x) {
        double ss = 0.0;
        for (int y = 0; y < n; ++y) ss += cur[static_cast<size_t>(y + ymin) * w + x] * k[y];
        tmp[static_cast<size_t>(yy) * w + x] = static_cast<float>(ss);
      }
    }
    cur.swap(tmp);
  }
  return cur;
}

namespace {
// Channel c of the image as float32 0..255.
std::vector<float> plane(const Image& img, int c) {
  std::vector<float> p(static_cast<size_t>(img.height) * img.width);
  for (size_t i = 0; i < p.size(); ++i) p[i] = img.pixels[3 * i + c];
  return p;
}

torch::Tensor chw_u8(const Image& img) {
  return torch::from_blob(const_cast<uint8_t*>(img.pixels.data()), {img.height, img.width, 3}, torch::kUInt8)
      .permute({2, 0, 1})
      .contiguous();
}

torch::Tensor interpolate_bilinear(const torch::Tensor& chw, int size) {
  return F::interpolate(chw.unsqueeze(0), F::InterpolateFuncOptions()
                                              .size(std::vector<int64_t>{size, size})
                                              .mode(torch::kBilinear)
                                              .align_corners(false))
      .squeeze(0);
}
}  // namespace

torch::Tensor preprocess(const Image& image, PreprocessMode mode, int size) {
  if (image.width <= 0 || image.height <= 0) fail("preprocess: empty image");
  torch::NoGradGuard no_grad;
  switch (mode) {
    case PreprocessMode::kPytorchFid: {
      // ToTensor (u8 / 255 in float32), F.interpolate inside the model, then 2x - 1.
      torch::Tensor x = chw_u8(image).to(torch::kFloat32).div(255);
      x = interpolate_bilinear(x, size);
      return 2 * x - 1;
    }
    case PreprocessMode::kCleanLegacyPytorch: {
      torch::Tensor x = chw_u8(image).to(torch::kFloat32);
      x = interpolate_bilinear(x, size).clamp(0, 255);
      x = x / 255;
      return 2 * x - 1;
    }
    case PreprocessMode::kTf:
    case PreprocessMode::kClean: {
      torch::Tensor out = torch::empty({3, size, size}, torch::kFloat32);
      float* o = out.data_ptr<float>();
      for (int c = 0; c < 3; ++c) {
        std::vector<float> p = plane(image, c);
        std::vector<float> r;
        if (mode == PreprocessMode::kTf) {
          r = resize_tf_legacy_bilinear(p, image.height, image.width, size, size);
        } else {
          r = resize_pillow_bicubic(p, image.height, image.width, size, size);
          for (float& v : r) v = std::min(std::max(v, 0.0f), 255.0f);
        }
        float* dst = o + static_cast<size_t>(c) * size * size;
        for (size_t i = 0; i < r.size(); ++i) {
          float x1 = r[i] - 128.0f;
          dst[i] = x1 / 128.0f;
        }
      }
      return out;
    }
  }
  fail("unknown preprocessing mode");
}

}  // namespace dmeval
