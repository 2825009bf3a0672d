// LPIPS (richzhang/PerceptualSimilarity, pip package `lpips` 0.1.4), version 0.1, lpips=True,
// spatial=False: shared/spec/metrics-paired.md section 7.
//
//   inputs in [0,1] RGB  -> x' = 2x - 1 (the package's normalize=True; done here, inside)
//   -> scaling layer (x' - shift) / scale -> torchvision backbone `features`, ReLU taps
//   -> per-position channel normalisation f / (sqrt(sum_c f^2) + 1e-10)
//   -> (n0 - n1)^2 -> v0.1 linear 1x1 conv (C_k -> 1, no bias) -> spatial mean -> sum over taps.
//
// Backbones come from the torchvision files users already have (alexnet-owt-7be5be79.pth,
// vgg16-397923af.pth, squeezenet1_1-b8a52dc0.pth; the whole classifier or only its `features.*`
// tensors), linear layers from the package's weights/v0.1/{alex,vgg,squeeze}.pth.
#pragma once

#include <torch/types.h>

#include <string>
#include <vector>

#include "core/checkpoint.h"

namespace dmeval {

enum class LpipsNet { kAlex, kVgg, kSqueeze };

const char* lpips_net_name(LpipsNet net);
// "alex", "vgg" (or "vgg16"), "squeeze"; throws listing the choices.
LpipsNet parse_lpips_net(const std::string& name);
// The standard file names, and where users normally find them (for error messages).
const char* lpips_backbone_file_name(LpipsNet net);
const char* lpips_backbone_source(LpipsNet net);
const char* lpips_linear_file_name(LpipsNet net);  // "alex.pth" ...
const char* lpips_linear_source(LpipsNet net);

// Per-tap intermediate values for one image pair (batch element 0), for golden tests and debugging.
struct LpipsLayers {
  std::vector<torch::Tensor> feat0;  // backbone taps (C,H,W), after ReLU, before normalisation
  std::vector<torch::Tensor> feat1;
  std::vector<torch::Tensor> normdiff;  // (n0 - n1)^2, (C,H,W)
  std::vector<torch::Tensor> lin_map;   // linear-layer output (H,W)
  std::vector<double> layer_mean;       // spatial mean of each lin_map (what retPerLayer returns)
  double total = 0;
};

class Lpips {
 public:
  // `backbone`: torchvision state dict (keys features.N.weight/bias); `linear`: v0.1 weights
  // (keys lin{k}.model.1.weight). Shapes are checked against the architecture; errors name the file.
  static Lpips load(LpipsNet net, const Checkpoint& backbone, const Checkpoint& linear);

  LpipsNet net() const { return net_; }
  int taps() const { return static_cast<int>(lin_.size()); }
  // Moves the weights (CPU/CUDA, float32/float64). Inputs are converted to match.
  void to(torch::Device device, torch::ScalarType dtype);
  torch::Device device() const { return device_; }
  torch::ScalarType dtype() const { return dtype_; }

  // in0, in1: (N,3,H,W) RGB in [0,1] (any float dtype/device). Returns (N) float64 distances.
  torch::Tensor distance(const torch::Tensor& in0, const torch::Tensor& in1) const;
  LpipsLayers layers(const torch::Tensor& in0, const torch::Tensor& in1) const;

 private:
  std::vector<torch::Tensor> backbone_taps(const torch::Tensor& x) const;  // x already scaled
  torch::Tensor scale_input(const torch::Tensor& unit) const;

  LpipsNet net_ = LpipsNet::kAlex;
  std::vector<torch::Tensor> conv_w_, conv_b_;  // backbone convs in execution order
  std::vector<torch::Tensor> lin_;              // (1, C_k, 1, 1)
  torch::Tensor shift_, scale_;                 // (1,3,1,1)
  torch::Device device_ = torch::kCPU;
  torch::ScalarType dtype_ = torch::kFloat32;
};

}  // namespace dmeval
