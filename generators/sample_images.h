// From model samples in [-1, 1] to 8-bit images, exactly as the reference writes them (spec
// generators.md §4.5): ddim's inverse_data_transform clamp((x + 1) / 2, 0, 1), then torchvision's
// save_image: uint8(clamp(v * 255 + 0.5, 0, 255)) in float32 (the cast truncates). The one place
// in dmeval that converts samples.
#pragma once

#include <torch/types.h>

#include <vector>

#include "core/image.h"

namespace dmeval {

// (N, C, H, W) float samples -> (N, H, W, C) uint8 on the CPU. Throws naming the first image index
// (first_index + row) that holds NaN or Inf.
torch::Tensor samples_to_uint8(const torch::Tensor& x, int64_t first_index = 0);
// The same as RGB Images (C must be 3; C = 1 is replicated as PIL does for grey).
std::vector<Image> samples_to_images(const torch::Tensor& x, int64_t first_index = 0);
// (N, H, W, C) uint8 (C = 3, or 1 replicated) -> Images.
std::vector<Image> uint8_to_images(const torch::Tensor& u);
// Throws naming the first image (first_index + row) of (N, ...) samples that holds NaN or Inf.
void check_finite_samples(const torch::Tensor& x, int64_t first_index);

}  // namespace dmeval
