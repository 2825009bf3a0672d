// The FID Inception network (TF Inception-v3 graph of 2015-12-05) exactly as pytorch-fid,
// torch-fidelity and the ADM evaluator run it (shared/spec/metrics-inception.md §1), with the
// parameter names of `pt_inception-2015-12-05-6726825d.pth`, so the standard weight file loads
// directly. Differences from torchvision's inception_v3: average pools exclude padding, Mixed_7c
// pools with max, 1008 logits with bias, inputs already in [-1, 1].
#pragma once

#include <torch/torch.h>

#include <string>

#include "core/checkpoint.h"

namespace dmeval {

// Which intermediate results a forward pass returns (unrequested ones stay undefined).
struct InceptionTaps {
  bool pool3 = true;             // 2048: mean of Mixed_7c over 8x8
  bool logits = false;           // 1008: pool3 . W^T + b
  bool logits_unbiased = false;  // 1008: pool3 . W^T (IS in torch-fidelity and ADM)
  bool spatial = false;          // 2023: Mixed_6d.branch1x1 (after ReLU), channels 0-6, (h, w, c)
  bool pool_64 = false;          // pytorch-fid --dims 64: first max pool, spatial mean
  bool pool_192 = false;         // pytorch-fid --dims 192: second max pool, spatial mean
  bool mixed_6e_768 = false;     // pytorch-fid --dims 768: Mixed_6e, spatial mean
};

struct InceptionOutput {
  torch::Tensor pool3, logits, logits_unbiased, spatial, pool_64, pool_192, mixed_6e_768;
};

class BasicConv2dImpl : public torch::nn::Module {
 public:
  BasicConv2dImpl(int64_t in, int64_t out, torch::ExpandingArray<2> kernel,
                  torch::ExpandingArray<2> stride = 1, torch::ExpandingArray<2> padding = 0);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
};
TORCH_MODULE(BasicConv2d);

class FidInceptionImpl : public torch::nn::Module {
 public:
  FidInceptionImpl();
  // x: N x 3 x 299 x 299 float32, already normalised to the tool's range.
  InceptionOutput forward(const torch::Tensor& x, const InceptionTaps& taps);

  // Copies every tensor of the checkpoint into the parameters/buffers of the same name; throws
  // naming the first missing, unexpected or mis-shaped entry.
  void load(const Checkpoint& weights);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};
TORCH_MODULE(FidInception);

}  // namespace dmeval
