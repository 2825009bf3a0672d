// PSNR and SSIM with BasicSR's conventions (basicsr/metrics/psnr_ssim.py calculate_psnr and
// calculate_ssim, as diffusion SR papers such as BI-DiffSR report them; shared/spec/metrics-paired.md
// sections 2-5):
//   * values on the 0..255 scale, float64 arithmetic;
//   * border crop: `crop_border` rows/columns dropped at each edge of both images;
//   * optional Y channel: ITU-R BT.601 studio swing, Y = 16 + (65.481 R + 128.553 G + 24.966 B)/255,
//     not rounded, computed with BasicSR's float32/float64 operation order;
//   * PSNR = 10 log10(255^2 / MSE) with one MSE over all channels; identical images give +inf;
//   * SSIM: 11x11 Gaussian window (sigma 1.5), 'valid' region only, C1 = (0.01*255)^2,
//     C2 = (0.03*255)^2, population moments; colour SSIM = mean of the per-channel means.
#pragma once

#include <string>
#include <vector>

#include "core/image.h"

namespace dmeval {

// Channel-major float64 planes (C,H,W) on the 0..255 scale.
struct Planes {
  int channels = 0;
  int height = 0;
  int width = 0;
  std::vector<double> values;

  double* plane(int c) { return values.data() + static_cast<size_t>(c) * height * width; }
  const double* plane(int c) const { return values.data() + static_cast<size_t>(c) * height * width; }
};

// RGB planes of an 8-bit image.
Planes planes_from_image(const Image& image);
// Planes from float HWC RGB data on the [0,1] scale (e.g. an unrounded network output), times 255.
// `clip` clamps to [0,1] first, as BasicSR's tensor2img does before rounding.
Planes planes_from_unit_hwc(const float* hwc, int height, int width, bool clip);
Planes crop_planes(const Planes& p, int border);
// BT.601 studio-swing luma of RGB planes, with BasicSR's precision (float32 /255, float64 dot product,
// float32 result times 255). One-channel input is returned unchanged (the flag does nothing there).
Planes y_channel(const Planes& rgb);

// Identical images: +infinity.
double psnr(const Planes& a, const Planes& b);
// Mean over channels of each channel's mean SSIM map. Needs at least 11x11 pixels.
double ssim(const Planes& a, const Planes& b);
// Plain reference for ssim(): direct 2-D 11x11 window sums, as cv2.filter2D's valid part. Used by the
// test that checks the separable fast path.
double ssim_reference(const Planes& a, const Planes& b);

struct PairedConventions {
  int crop_border = 0;
  bool y_channel = false;
};

struct PsnrSsim {
  double psnr = 0;
  double ssim = 0;
};

// Crop, optional Y, then both metrics. `what` names the pair in errors (sizes differ, too small).
PsnrSsim psnr_ssim(const Planes& reference, const Planes& distorted, const PairedConventions& conv,
                   const std::string& what = "image pair");

// Mean of per-image PSNRs where +inf values (identical pairs) are counted separately: the mean of the
// finite values and how many were infinite, so a table never silently shows "inf".
struct PsnrMean {
  double mean_finite = 0;  // NaN when every value is infinite
  int finite = 0;
  int infinite = 0;
};
PsnrMean mean_psnr(const std::vector<double>& values);

}  // namespace dmeval
