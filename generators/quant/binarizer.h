// BinaryDM's weight binarizer (ours_util.py BNNConv2d / BNNConv1d / BNNLinear, spec generators.md
// §5.6): order 1 = sign(W) · s1, order 2 adds sign(W - sign(W) s1) · s2, with per-output-channel
// scales initialised on the first call as nested means of |·| over the non-output dimensions (last
// dimension first, as the reference nests them) and trainable afterwards. sign passes gradients
// straight through where |input| <= 1 (BinaryQuantize).
#pragma once

#include <torch/types.h>

namespace dmeval {

// sign(x) with BinaryQuantize's backward: grad where -1 <= x <= 1, else 0.
torch::Tensor binary_quantize(const torch::Tensor& x);

class WeightBinarizer {
 public:
  // s1 / s2: the scale parameters to fill on the first call (their data is replaced, as the reference
  // assigns `.data`, so an optimizer holding them keeps its state); undefined: the binarizer makes its own.
  explicit WeightBinarizer(int order, torch::Tensor s1 = {}, torch::Tensor s2 = {});
  // The binarised weight (same shape as `weight`); the first call initialises the scales.
  torch::Tensor forward(const torch::Tensor& weight);
  torch::Tensor& s1() { return s1_; }
  torch::Tensor& s2() { return s2_; }
  bool inited() const { return inited_; }
  void set_inited(bool on) { inited_ = on; }
  int order() const { return order_; }

 private:
  int order_;
  bool inited_ = false;
  torch::Tensor s1_, s2_;  // (out, 1, ..., 1), leaves that require grad
};

}  // namespace dmeval
