// MATLAB-compatible bicubic imresize, as SR benchmarks make their LR inputs and their "Bicubic"
// baseline (shared/spec/metrics-paired.md section 6):
//   * Keys cubic kernel (a = -0.5); output size ceil(in * scale); half-pixel coordinate map;
//   * antialiasing when shrinking (kernel widened by 1/scale), 4 taps when enlarging;
//   * symmetric borders that repeat the edge sample; height axis first, then width.
// Two arithmetic variants, because the published files were made with two:
//   * the float path (BasicSR basicsr/utils/matlab_functions.py imresize): float32 [0,1] input,
//     float32 weights computed with the same libtorch operations as BasicSR (bit-identical), float32
//     sums in a fixed left-to-right order (BasicSR's sums go through the BLAS of the machine, so its
//     own low bits vary with the CPU), unclipped float output; rounded to uint8 with clip +
//     round-half-to-even;
//   * the uint8 two-pass path (MATLAB imresize on a uint8 image): each pass accumulates in float64
//     and rounds half away from zero to a clipped uint8 intermediate. It reproduces the committed
//     benchmark LR files (Set5 LR_bicubic) bit-exactly.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "core/image.h"

namespace dmeval {

// The taps of one axis: BasicSR's calculate_weights_indices with kernel 'cubic', width 4.
struct CubicTaps {
  int64_t in_length = 0;
  int64_t out_length = 0;
  int64_t taps = 0;
  torch::Tensor weights;  // (out_length, taps) float32, rows sum to ~1
  torch::Tensor indices;  // (out_length, taps) int64, 0-based into the symmetrically padded axis
  int64_t sym_len_start = 0;
  int64_t sym_len_end = 0;
  // 0-based source sample read by each tap after the symmetric mirror, (out_length * taps) row-major.
  std::vector<int64_t> source_indices() const;
};

// Output length for a scale: ceil(in * scale) in float64, as BasicSR and MATLAB compute it.
int64_t resized_length(int64_t in_length, double scale);
CubicTaps matlab_cubic_taps(int64_t in_length, int64_t out_length, double scale, bool antialiasing = true);

// Float path on a (C,H,W) float32 tensor on the [0,1] scale; returns (C, ceil(H*s), ceil(W*s)) float32,
// unclipped.
torch::Tensor matlab_imresize(const torch::Tensor& chw, double scale, bool antialiasing = true);
// Float path on an 8-bit image: /255 in float32, resize, clip to [0,1], *255, round half to even.
Image matlab_imresize_float(const Image& image, double scale, bool antialiasing = true);
// uint8 two-pass path (MATLAB on uint8 input; matches the committed benchmark LR files).
Image matlab_imresize_uint8(const Image& image, double scale, bool antialiasing = true);

// OpenCV cv2.resize(INTER_CUBIC) of a float image by an integer factor (a = -0.75, no antialiasing,
// replicated borders): BI-DiffSR's conditioning upsample. For float input and integer factors it
// equals libtorch's bicubic interpolate with align_corners=false, which is what runs here.
torch::Tensor opencv_cubic_upsample(const torch::Tensor& chw, int factor);

// BasicSR mod_crop: keep the top-left (H - H mod s) x (W - W mod s) block.
Image mod_crop(const Image& image, int scale);

// HWC float32 (H,W,3) tensor on the [0,1] scale -> (3,H,W) and back; image <-> tensor helpers.
torch::Tensor image_to_unit_chw(const Image& image);
Image unit_chw_to_image(const torch::Tensor& chw);  // clip, *255, round half to even

}  // namespace dmeval
