// Learned-step-size quantization as BinaryDM's ours_util.py uses it for activations (`_ActQ`,
// `grad_scale`, `round_pass`; spec generators.md §5.5): signed grid [-2^(b-1), 2^(b-1)-1], step
// α = 2 mean|x| / sqrt(Qp) recomputed from every input (the reference overwrites its learned α on
// each call: quirk, reproduced), gradient to α scaled by 1 / sqrt(numel(x) Qp).
#pragma once

#include <torch/types.h>

namespace dmeval {

// Value x, gradient scaled by `scale`: x - x*scale (detached) + x*scale.
torch::Tensor grad_scale(const torch::Tensor& x, double scale);
// Value round(x), gradient identity: round(x) - x (detached) + x.
torch::Tensor round_pass(const torch::Tensor& x);

struct LsqResult {
  torch::Tensor out;    // fake-quantized x
  torch::Tensor codes;  // round(clamp(x / α)) (detached)
  torch::Tensor alpha;  // the step used (a leaf that requires grad)
};

class LsqActQuantizer {
 public:
  explicit LsqActQuantizer(int bits = 8);
  // BinaryDM's forward: α re-initialised from x, then the LSQ fake quantization.
  LsqResult forward(const torch::Tensor& x) const;
  // The same with a given α (the helpers applied to a fixed step).
  LsqResult forward_with_alpha(const torch::Tensor& x, const torch::Tensor& alpha) const;
  int64_t qn() const { return qn_; }
  int64_t qp() const { return qp_; }

 private:
  int bits_;
  int64_t qn_, qp_;
};

}  // namespace dmeval
