#include "metrics/matlab_resize.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace dmeval {

namespace {

// Keys cubic (a = -0.5) on a float32 tensor, with the same elementwise operations as BasicSR's cubic().
torch::Tensor cubic(const torch::Tensor& x) {
  auto absx = torch::abs(x);
  auto absx2 = absx.pow(2);
  auto absx3 = absx.pow(3);
  auto inner = (1.5 * absx3 - 2.5 * absx2 + 1) * (absx <= 1).to(absx.dtype());
  auto outer =
      (-0.5 * absx3 + 2.5 * absx2 - 4 * absx + 2) * ((absx > 1).logical_and(absx <= 2)).to(absx.dtype());
  return inner + outer;
}

// Mirror of a padded-axis position onto the source axis [0, length): -1 -> 0, -2 -> 1, L -> L-1, ...
int64_t mirror_index(int64_t q, int64_t length) {
  const int64_t period = 2 * length;
  q %= period;
  if (q < 0) q += period;
  return q < length ? q : period - 1 - q;
}

// One output sample: float32 products summed left to right from 0, without FMA contraction (this file
// is compiled with -ffp-contract=off). This is reference BLAS's and libtorch's plain gemv order; it
// reproduces BasicSR's float32 upscale output bit-exactly on Set5, and its downscale output to 3e-7
// (BasicSR's own result depends on the BLAS kernel the CPU selects).
inline float dot_taps(const float* a, int64_t stride, const float* w, int64_t n) {
  float acc = 0;
  for (int64_t k = 0; k < n; ++k) acc = acc + a[k * stride] * w[k];
  return acc;
}

double round_half_away(double v) {
  return v < 0 ? -std::floor(-v + 0.5) : std::floor(v + 0.5);
}

uint8_t to_uint8_half_away(double v) {
  double r = round_half_away(v);
  return static_cast<uint8_t>(std::min(255.0, std::max(0.0, r)));
}

void check_scale(double scale) {
  if (!(scale > 0) || !std::isfinite(scale)) fail("resize scale must be a positive number, got {}", scale);
}

}  // namespace

int64_t resized_length(int64_t in_length, double scale) {
  check_scale(scale);
  return static_cast<int64_t>(std::ceil(static_cast<double>(in_length) * scale));
}

std::vector<int64_t> CubicTaps::source_indices() const {
  std::vector<int64_t> out(static_cast<size_t>(out_length * taps));
  auto idx = indices.accessor<int64_t, 2>();
  for (int64_t i = 0; i < out_length; ++i)
    for (int64_t k = 0; k < taps; ++k) out[i * taps + k] = mirror_index(idx[i][k] - sym_len_start, in_length);
  return out;
}

CubicTaps matlab_cubic_taps(int64_t in_length, int64_t out_length, double scale, bool antialiasing) {
  check_scale(scale);
  if (in_length < 1 || out_length < 1) fail("resize: empty axis ({} -> {})", in_length, out_length);
  torch::NoGradGuard no_grad;
  double kernel_width = 4;
  const bool widen = scale < 1 && antialiasing;
  if (widen) kernel_width = kernel_width / scale;
  // Same float32 operations, in the same order, as BasicSR: output coordinates 1..out, their centres
  // in the input, the leftmost candidate tap and p = ceil(width) + 2 candidates per output.
  auto x = torch::linspace(1, static_cast<double>(out_length), out_length, torch::kFloat32);
  auto u = x / scale + 0.5 * (1 - 1 / scale);
  auto left = torch::floor(u - kernel_width / 2);
  const int64_t p = static_cast<int64_t>(std::ceil(kernel_width)) + 2;
  auto indices =
      left.view({out_length, 1}).expand({out_length, p}) +
      torch::linspace(0, static_cast<double>(p - 1), p, torch::kFloat32).view({1, p}).expand({out_length, p});
  auto distance = u.view({out_length, 1}).expand({out_length, p}) - indices;
  auto weights = widen ? scale * cubic(distance * scale) : cubic(distance);
  auto weights_sum = torch::sum(weights, 1).view({out_length, 1});
  weights = weights / weights_sum.expand({out_length, p});
  // Drop the first / last candidate column when it holds zero weights (it always does for this kernel).
  auto zeros = torch::sum(weights == 0, 0);
  int64_t first = 0, count = p;
  if (zeros[0].item<int64_t>() != 0) first = 1, count -= 1;
  if (zeros[p - 1].item<int64_t>() != 0) count -= 1;
  weights = weights.narrow(1, first, count).contiguous();
  indices = indices.narrow(1, first, count).contiguous();
  CubicTaps t;
  t.in_length = in_length;
  t.out_length = out_length;
  t.taps = count;
  t.sym_len_start = static_cast<int64_t>(-indices.min().item<float>() + 1);
  t.sym_len_end = static_cast<int64_t>(indices.max().item<float>() - static_cast<float>(in_length));
  t.weights = weights;
  t.indices = (indices + static_cast<float>(t.sym_len_start - 1)).to(torch::kInt64);
  return t;
}

namespace {

// Pads `axis` (1 = height, 2 = width) of a (C,H,W) tensor with the symmetric mirror the taps need.
torch::Tensor pad_symmetric(const torch::Tensor& img, int64_t axis, const CubicTaps& t) {
  const int64_t len = img.size(axis);
  const int64_t start = std::max<int64_t>(t.sym_len_start, 0);
  const int64_t end = std::max<int64_t>(t.sym_len_end, 0);
  std::vector<int64_t> src(static_cast<size_t>(start + len + end));
  for (int64_t i = 0; i < static_cast<int64_t>(src.size()); ++i) src[i] = mirror_index(i - start, len);
  return img.index_select(axis, torch::tensor(src, torch::kInt64)).contiguous();
}

}  // namespace

torch::Tensor matlab_imresize(const torch::Tensor& chw_in, double scale, bool antialiasing) {
  torch::NoGradGuard no_grad;
  if (chw_in.dim() != 3) fail("matlab_imresize: expected a (C,H,W) tensor, got {} dimensions", chw_in.dim());
  auto img = chw_in.to(torch::kFloat32).contiguous();
  const int64_t c = img.size(0), in_h = img.size(1), in_w = img.size(2);
  const int64_t out_h = resized_length(in_h, scale), out_w = resized_length(in_w, scale);
  const CubicTaps th = matlab_cubic_taps(in_h, out_h, scale, antialiasing);
  const CubicTaps tw = matlab_cubic_taps(in_w, out_w, scale, antialiasing);
  const int64_t shift_h = std::max<int64_t>(th.sym_len_start, 0) - th.sym_len_start;
  const int64_t shift_w = std::max<int64_t>(tw.sym_len_start, 0) - tw.sym_len_start;

  // Height pass, then width pass, each over the symmetrically padded axis.
  auto aug_h = pad_symmetric(img, 1, th);
  auto out1 = torch::empty({c, out_h, in_w}, torch::kFloat32);
  {
    auto ih = th.indices.accessor<int64_t, 2>();
    const float* a = aug_h.data_ptr<float>();
    float* o = out1.data_ptr<float>();
    const int64_t plane = aug_h.size(1) * in_w;
    at::parallel_for(0, out_h, 8, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t idx = ih[i][0] + shift_h;
        const float* w = th.weights.data_ptr<float>() + i * th.taps;
        for (int64_t j = 0; j < c; ++j)
          for (int64_t x = 0; x < in_w; ++x)
            o[(j * out_h + i) * in_w + x] = dot_taps(a + j * plane + idx * in_w + x, in_w, w, th.taps);
      }
    });
  }
  auto aug_w = pad_symmetric(out1, 2, tw);
  auto out2 = torch::empty({c, out_h, out_w}, torch::kFloat32);
  {
    auto iw = tw.indices.accessor<int64_t, 2>();
    const int64_t pw = aug_w.size(2);
    const float* a = aug_w.data_ptr<float>();
    float* o = out2.data_ptr<float>();
    at::parallel_for(0, c * out_h, 8, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t i = 0; i < out_w; ++i)
          o[r * out_w + i] = dot_taps(a + r * pw + iw[i][0] + shift_w, 1,
                                      tw.weights.data_ptr<float>() + i * tw.taps, tw.taps);
    });
  }
  return out2;
}

torch::Tensor image_to_unit_chw(const Image& image) {
  // numpy's float32 true division (torch's tensor / scalar multiplies by the reciprocal instead).
  const int64_t n = static_cast<int64_t>(image.height) * image.width;
  auto out = torch::empty({3, image.height, image.width}, torch::kFloat32);
  float* o = out.data_ptr<float>();
  for (int64_t i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c) o[c * n + i] = static_cast<float>(image.pixels[i * 3 + c]) / 255.0f;
  return out;
}

Image unit_chw_to_image(const torch::Tensor& chw) {
  torch::NoGradGuard no_grad;
  auto q = torch::round(chw.clamp(0, 1) * 255.0).to(torch::kUInt8).permute({1, 2, 0}).contiguous();
  Image out;
  out.height = static_cast<int>(q.size(0));
  out.width = static_cast<int>(q.size(1));
  out.pixels.assign(q.data_ptr<uint8_t>(), q.data_ptr<uint8_t>() + q.numel());
  return out;
}

Image matlab_imresize_float(const Image& image, double scale, bool antialiasing) {
  return unit_chw_to_image(matlab_imresize(image_to_unit_chw(image), scale, antialiasing));
}

Image matlab_imresize_uint8(const Image& image, double scale, bool antialiasing) {
  const int64_t in_h = image.height, in_w = image.width;
  const int64_t out_h = resized_length(in_h, scale), out_w = resized_length(in_w, scale);
  const CubicTaps th = matlab_cubic_taps(in_h, out_h, scale, antialiasing);
  const CubicTaps tw = matlab_cubic_taps(in_w, out_w, scale, antialiasing);
  const std::vector<int64_t> sh = th.source_indices(), sw = tw.source_indices();
  auto wh = th.weights.accessor<float, 2>();
  auto ww = tw.weights.accessor<float, 2>();
  // Height pass into a uint8 intermediate (out_h x in_w x 3).
  std::vector<uint8_t> mid(static_cast<size_t>(out_h) * in_w * 3);
  for (int64_t i = 0; i < out_h; ++i) {
    for (int64_t x = 0; x < in_w; ++x) {
      for (int ch = 0; ch < 3; ++ch) {
        double acc = 0;
        for (int64_t k = 0; k < th.taps; ++k)
          acc += static_cast<double>(wh[i][k]) * image.pixels[(sh[i * th.taps + k] * in_w + x) * 3 + ch];
        mid[(i * in_w + x) * 3 + ch] = to_uint8_half_away(acc);
      }
    }
  }
  Image out;
  out.height = static_cast<int>(out_h);
  out.width = static_cast<int>(out_w);
  out.pixels.resize(static_cast<size_t>(out_h) * out_w * 3);
  for (int64_t y = 0; y < out_h; ++y) {
    for (int64_t j = 0; j < out_w; ++j) {
      for (int ch = 0; ch < 3; ++ch) {
        double acc = 0;
        for (int64_t k = 0; k < tw.taps; ++k)
          acc += static_cast<double>(ww[j][k]) * mid[(y * in_w + sw[j * tw.taps + k]) * 3 + ch];
        out.pixels[(y * out_w + j) * 3 + ch] = to_uint8_half_away(acc);
      }
    }
  }
  return out;
}

torch::Tensor opencv_cubic_upsample(const torch::Tensor& chw, int factor) {
  torch::NoGradGuard no_grad;
  if (factor < 1) fail("upsampling factor must be >= 1, got {}", factor);
  namespace F = torch::nn::functional;
  auto opts = F::InterpolateFuncOptions()
                  .scale_factor(std::vector<double>{double(factor), double(factor)})
                  .mode(torch::kBicubic)
                  .align_corners(false);
  return F::interpolate(chw.to(torch::kFloat32).unsqueeze(0), opts).squeeze(0);
}

Image mod_crop(const Image& image, int scale) {
  if (scale < 1) fail("mod-crop scale must be >= 1, got {}", scale);
  const int h = image.height - image.height % scale, w = image.width - image.width % scale;
  if (h == 0 || w == 0)
    fail("mod-crop to a multiple of {} leaves nothing of a {}x{} image", scale, image.width, image.height);
  if (h == image.height && w == image.width) return image;
  Image out;
  out.height = h;
  out.width = w;
  out.source_gray = image.source_gray;
  out.source_bit_depth = image.source_bit_depth;
  out.pixels.resize(static_cast<size_t>(h) * w * 3);
  for (int y = 0; y < h; ++y)
    std::copy_n(image.pixels.data() + static_cast<size_t>(y) * image.width * 3, static_cast<size_t>(w) * 3,
                out.pixels.data() + static_cast<size_t>(y) * w * 3);
  return out;
}

}  // namespace dmeval
