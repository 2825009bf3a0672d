// Uniform affine fake quantization as the published diffusion PTQ code bases implement it (spec
// generators.md §5.1, 5.3, 5.4): one quantizer type, three "flavors" that reproduce each repository's
// scale initialisation and clamping exactly, quirks included:
//   qdiff  — q-diffusion qdiff/quant_layer.py: `max`, `max_scale`, `mse` (80-step shrink search),
//            symmetric = signed grid of 2^(b-1)-1 levels, running statistics for activations;
//   brecq  — PTQD/BRECQ quant_scripts/brecq_quant_layer.py: unsigned grid of 2^b levels, symmetric =
//            symmetric range with z ≈ 2^(b-1), `max`, `max_scale`, `mse`;
//   qdrop  — PTQ4DM's QDrop quant/quant_layer.py: always the range search (1-D for symmetric or
//            one-sided data, 2-D over range x zero point otherwise), EMA of searched ranges for
//            activations, Δ = 1, z = 0 until initialised.
// The forward uses a straight-through rounding, so Δ can be learned (LSQ-style) where the method
// does. Δ/z are computed with the same float64/float32 steps as the references: x / Δ is a true
// float32 division and rounding is half to even.
#pragma once

#include <torch/types.h>

#include <functional>
#include <string>
#include <vector>

namespace dmeval {

enum class QuantFlavor { kQDiffusion, kBrecq, kQDrop };
const char* quant_flavor_name(QuantFlavor f);
QuantFlavor quant_flavor_from_name(const std::string& name);  // qdiff, brecq, qdrop

struct UniformQuantizerSpec {
  QuantFlavor flavor = QuantFlavor::kQDiffusion;
  int bits = 8;
  bool symmetric = false;
  bool channel_wise = false;  // per slice of dim 0 (output channels of a weight)
  // max, max_scale, mse, percentile[:p] (default p 0.9999) (qdrop: ignored, always its search)
  std::string scale_method = "max";
  bool leaf_param = false;   // activation quantizer: Δ learnable (qdiff/brecq), EMA range (qdrop)
  bool always_zero = false;  // qdiff: z = 0 (softmax outputs)
  std::string describe() const;
};

class UniformQuantizer {
 public:
  explicit UniformQuantizer(UniformQuantizerSpec spec);

  // Fake-quantizes x. qdiff/brecq initialise Δ/z from the first input; qdrop re-initialises on every
  // call while not inited (set_inited(false) opens a calibration pass, as QDrop does).
  torch::Tensor forward(const torch::Tensor& x);
  // The clamped integer grid values round(x / Δ) + z of x (no initialisation).
  torch::Tensor codes(const torch::Tensor& x) const;

  bool inited() const { return inited_; }
  // Δ/z came from data or were set (QDrop's quantizers are "inited" with Δ = 1 before that).
  bool calibrated() const { return calibrated_; }
  void set_inited(bool inited) { inited_ = inited; }
  // qdiff activation quantizers: momentum 0.95 update of the range before each quantization.
  void set_running_stat(bool on) { running_stat_ = on; }

  const UniformQuantizerSpec& spec() const { return spec_; }
  const torch::Tensor& delta() const { return delta_; }
  const torch::Tensor& zero_point() const { return zero_point_; }
  // Sets Δ/z directly (loading calibrated state); shapes as the quantizer stores them.
  void set_params(torch::Tensor delta, torch::Tensor zero_point);
  // Makes Δ a leaf that requires grad (learned step size); returns it.
  torch::Tensor& learnable_delta();
  // Range of the integer grid in forward().
  int64_t qmin() const { return qmin_; }
  int64_t qmax() const { return qmax_; }
  int64_t n_levels() const { return n_levels_; }

  // Verification seam: while set, forward() passes its input through this first (before initialising
  // and quantizing). The layer-by-layer golden tests observe dmeval's input here and substitute the
  // reference's recorded one, so each quantizer is checked on the reference's own input.
  std::function<torch::Tensor(const torch::Tensor&)> input_tap;

 private:
  void initialize(const torch::Tensor& x);
  std::pair<torch::Tensor, torch::Tensor> init_per_tensor(const torch::Tensor& x);
  std::pair<torch::Tensor, torch::Tensor> init_mse(const torch::Tensor& x);
  std::pair<torch::Tensor, torch::Tensor> init_qdrop(const torch::Tensor& x);
  void momentum_update(const torch::Tensor& x);

  UniformQuantizerSpec spec_;
  int64_t n_levels_, qmin_, qmax_;
  bool inited_ = false, running_stat_ = false, calibrated_ = false;
  torch::Tensor delta_, zero_point_;
  torch::Tensor x_min_, x_max_;              // qdiff leaf: running range
  torch::Tensor running_min_, running_max_;  // qdrop leaf: EMA of the searched range
  std::string one_side_;                     // qdrop: "pos", "neg", "no" (decided once)
};

// lp_loss of the references: reduction "none" = sum over dim 1 of |pred - tgt|^p, then mean;
// "all" = mean of |pred - tgt|^p.
torch::Tensor lp_loss(const torch::Tensor& pred, const torch::Tensor& tgt, double p, bool reduce_all);

}  // namespace dmeval
