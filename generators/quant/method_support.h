// What the method files share: FP calibration trajectories from a method's settings, and a
// QuantizedModel around a QuantizedUNet (its eps, state and per-layer weight bits).
#pragma once

#include <memory>

#include "generators/quant/calibration_data.h"
#include "generators/quant/quant_method.h"
#include "generators/quant/quantized_unet.h"

namespace dmeval {

// Settings every calibrating method has: the FP sampler whose trajectories give the calibration
// data, how many images, and the seed of their noise (per-image noise; keep it different from the
// evaluation seed so that calibration and evaluation images differ).
void add_trajectory_settings(nlohmann::ordered_json& s, int64_t images, int64_t steps,
                             const std::string& skip, double eta, int64_t seed);
// `fp`: the full-precision model (a clone made before quantizers are attached). With ctx.conditioning
// (conditional runs) each batch samples with its class labels and guidance.
Trajectories trajectories_from_settings(QuantContext& ctx, DiffusionModel& fp);

// A conditioning of n rows that makes any model run once (class 0 for class-conditional models, none
// otherwise): the passes that only create structure or initialise weight quantizers.
Conditioning probe_conditioning(const DiffusionModel& m, int64_t n);

// Per-layer override of the first and last convolution: "same" (as every layer), "8" (weights and
// inputs at 8 bits) or "fp" (left in float32). Throws for other values.
void apply_first_last(QuantPlan& plan, const torch::nn::Module& network, const std::string& mode);

class UNetQuantizedModel : public QuantizedModel {
 public:
  UNetQuantizedModel(std::shared_ptr<DiffusionModel> model, QuantPlan plan, UNetRunOptions run);
  EpsModel eps(const Conditioning& c = {}) override { return model_->eps(run_, c); }
  std::vector<std::pair<std::string, torch::Tensor>> state() override { return qunet_->quantizer_state(); }
  double weight_bits(const LayerInfo& layer) const override;
  double scale_bytes() const override;  // every quantizer's Δ and z in float32
  QuantizedUNet& qunet() { return *qunet_; }
  nlohmann::ordered_json& mutable_report() { return report_; }
  // Creates the lazily made structure (split quantizers) with one unquantized forward.
  void build_structure();
  void restore(const std::map<std::string, torch::Tensor>& state, const std::string& source);

 private:
  std::shared_ptr<DiffusionModel> model_;
  std::unique_ptr<QuantizedUNet> qunet_;
  std::map<std::string, double> bits_;
};

}  // namespace dmeval
