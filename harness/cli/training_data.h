// Training images for `dmeval train`, `train-vq` and the trained quantization methods (BinaryDM): the
// procedural shapes set (shapes:N[:SEED], with its class labels), an ADM-style .npz (arr_0 N×H×W×3
// uint8, optional arr_1 labels) or a folder of images (PNG/JPEG, sorted by name, no labels). Errors name
// the spec and the problem.
#pragma once

#include <torch/torch.h>

#include <string>

namespace dmeval::cli {

struct TrainingData {
  torch::Tensor images;  // (N, 3, H, W) uint8
  torch::Tensor labels;  // (N,) int64, undefined when the data has none
};

// `size`: the model's image side (shapes are rendered at it; files must have it).
TrainingData load_training_data(const std::string& spec, int64_t size);

}  // namespace dmeval::cli
