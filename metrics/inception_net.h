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
  // Fast path: BatchNorm folded into the convolution's weight and bias (computed from the current
  // parameters), weights in channels-last layout. Off = the reference conv -> BN -> ReLU.
  void set_fast(bool on);

 private:
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
  std::vector<int64_t> stride_, padding_;
  torch::Tensor folded_weight_, folded_bias_;  // defined only on the fast path
};
TORCH_MODULE(BasicConv2d);

class FidInceptionImpl : public torch::nn::Module {
 public:
  FidInceptionImpl();
  // x: N x 3 x 299 x 299 float32, already normalised to the tool's range.
  InceptionOutput forward(const torch::Tensor& x, const InceptionTaps& taps);

  // Copies every tensor of the checkpoint into the parameters/buffers of the same name; throws
  // naming the first missing, unexpected or mis-shaped entry. Re-folds the fast path if it is on.
  void load(const Checkpoint& weights);

  // The plain path (as pytorch-fid runs it) is the reference; the fast path folds BatchNorm into
  // the convolutions and runs channels-last (oneDNN's faster layout). Tests compare the two.
  void set_fast_path(bool on);
  bool fast_path() const { return fast_; }

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
  bool fast_ = false;
};
TORCH_MODULE(FidInception);

}  // namespace dmeval
