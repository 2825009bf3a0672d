#include "generators/sample_images.h"

#include <torch/torch.h>

#include <cstring>

#include "core/error.h"

namespace dmeval {

void check_finite_samples(const torch::Tensor& x, int64_t first_index) {
  torch::Tensor finite = torch::isfinite(x).flatten(1).all(1).cpu();
  if (!finite.all().item<bool>()) {
    const auto bad = torch::nonzero(finite.logical_not()).flatten();
    fail("sample {} holds NaN or Inf values ({} of {} images in this batch): the model or sampler diverged",
         first_index + bad[0].item<int64_t>(), bad.numel(), x.size(0));
  }
}

torch::Tensor samples_to_uint8(const torch::Tensor& x, int64_t first_index) {
  DMEVAL_CHECK(x.dim() == 4, "samples must be (N, C, H, W), got {} dimensions", x.dim());
  torch::Tensor xf = x.to(torch::kFloat32);
  check_finite_samples(xf, first_index);
  torch::Tensor v = torch::clamp((xf + 1.0) / 2.0, 0.0, 1.0);
  v = v.mul(255).add_(0.5).clamp_(0, 255).permute({0, 2, 3, 1}).to(torch::kCPU, torch::kUInt8);
  return v.contiguous();
}

std::vector<Image> samples_to_images(const torch::Tensor& x, int64_t first_index) {
  return uint8_to_images(samples_to_uint8(x, first_index));
}

std::vector<Image> uint8_to_images(const torch::Tensor& in) {
  DMEVAL_CHECK(in.dim() == 4 && in.scalar_type() == torch::kUInt8, "images must be (N, H, W, C) uint8");
  const torch::Tensor u = in.to(torch::kCPU).contiguous();
  const int64_t n = u.size(0), h = u.size(1), w = u.size(2), c = u.size(3);
  DMEVAL_CHECK(c == 3 || c == 1, "samples have {} channels; images need 3 (RGB) or 1 (grey)", c);
  std::vector<Image> out(static_cast<size_t>(n));
  const uint8_t* src = u.data_ptr<uint8_t>();
  for (int64_t i = 0; i < n; ++i) {
    Image& im = out[i];
    im.height = static_cast<int>(h);
    im.width = static_cast<int>(w);
    im.pixels.resize(static_cast<size_t>(h * w * 3));
    const uint8_t* s = src + i * h * w * c;
    if (c == 3) {
      std::memcpy(im.pixels.data(), s, im.pixels.size());
    } else {
      im.source_gray = true;
      for (int64_t p = 0; p < h * w; ++p)
        im.pixels[3 * p] = im.pixels[3 * p + 1] = im.pixels[3 * p + 2] = s[p];
    }
  }
  return out;
}

}  // namespace dmeval
