// Quantization methods by name (Faiss-style registry): each method knows which bit widths it supports,
// its calibration settings with the defaults of its authors' scripts, how to calibrate a model from
// the full-precision model's own trajectories, and how to restore a saved calibration. A calibrated
// model is an EpsModel for the samplers plus the tensors that describe it (saved with provenance in a
// calibration file, calibration_file.h).
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "generators/beta_schedule.h"
#include "generators/diffusion_model.h"
#include "generators/model_cost.h"
#include "generators/samplers.h"
#include "generators/training_loop.h"
#include "generators/unet_runner.h"

namespace dmeval {

struct BitWidths {
  int weight = 32, act = 32;  // 32 = float
  bool weight_quantized() const { return weight < 32; }
  bool act_quantized() const { return act < 32; }
  std::string str() const;    // "4/8", "32/32"
  std::string label() const;  // "W4A8", "W4A32", "FP"
};
// "4/8", "8/8", "4/32", "4" (= 4/32), "32" or "fp" (= 32/32).
BitWidths parse_bits(const std::string& spec);

struct QuantContext {
  // The model being quantized (any family): the methods attach their quantizers to its network and
  // attention hooks, clone it for FP references and sample its own trajectories for calibration.
  std::shared_ptr<DiffusionModel> model;
  DiffusionSchedule schedule;
  std::string model_id;  // weights SHA-256 (or random:<seed>)
  BitWidths bits;
  nlohmann::ordered_json settings;  // the method's settings (defaults merged with the user's)
  UNetRunOptions run;               // device and micro-batch for the FP and quantized passes
  uint64_t seed = 0;
  // Conditional models: the conditioning (with the guidance scale) of calibration images first ..
  // first + n - 1, as the run samples them; empty for unconditional models.
  std::function<Conditioning(int64_t first, int64_t n)> conditioning;
  std::function<void(const std::string&)> log = [](const std::string&) {};
  // Training methods (BinaryDM and its baselines): the model's training images for a data spec (the
  // method's `data` setting: shapes:N[:SEED], an .npz, an image folder) as (N, C, H, W) uint8 and the
  // class labels ((N,) int64, undefined without); provided by the harness.
  std::function<std::pair<torch::Tensor, torch::Tensor>(const std::string& spec)> training_data;
};

class QuantizedModel {
 public:
  explicit QuantizedModel(UNetRunOptions run = {}) : run_(run) {}
  virtual ~QuantizedModel() = default;
  // Device and micro-batch of the network passes eps() makes (latency is measured at exactly the
  // batch being timed; sampling keeps the fixed evaluation micro-batch).
  void set_run_options(const UNetRunOptions& run) { run_ = run; }
  const UNetRunOptions& run_options() const { return run_; }
  // The sampler's view of the quantized network (with the method's corrections, e.g. PTQD's) for a
  // batch with conditioning `c` (none for unconditional models).
  virtual EpsModel eps(const Conditioning& c = {}) = 0;
  // Everything that defines the calibration (quantizer parameters, method state), by name.
  virtual std::vector<std::pair<std::string, torch::Tensor>> state() = 0;
  // Weight bits of each Conv2d/Linear (32 = float) for the size accounting.
  virtual double weight_bits(const LayerInfo& layer) const = 0;
  // PTQD-style correction of the sampler's injected noise (empty for most methods).
  virtual QuantNoiseStd quant_noise_std() { return {}; }
  // Bytes of the float32 quantizer parameters inference needs beyond the weights (steps, zero points,
  // ranges); negative when the method does not say.
  virtual double scale_bytes() const { return -1; }
  // Facts about the calibration for the record (losses, times, counts).
  virtual nlohmann::ordered_json report() const { return report_; }

 protected:
  UNetRunOptions run_;
  nlohmann::ordered_json report_ = nlohmann::ordered_json::object();
};

class QuantMethod {
 public:
  virtual ~QuantMethod() = default;
  virtual std::string name() const = 0;
  virtual std::string description() const = 0;
  // Throws naming the method and what it supports.
  virtual void check_bits(const BitWidths& bits) const = 0;
  virtual nlohmann::ordered_json default_settings() const { return nlohmann::ordered_json::object(); }
  virtual std::unique_ptr<QuantizedModel> calibrate(QuantContext& ctx) const = 0;
  // Methods that train after calibrating (quantization-aware training, BinaryDM) fit the calibrated
  // model through the shared training loop (generators/training_loop.h), keeping its resumable state
  // in `state_dir` (a killed fit continues from its last checkpoint). The post-training methods here
  // have no fitting step.
  virtual bool has_fit() const { return false; }
  virtual void fit(QuantContext& ctx, QuantizedModel& model, const std::string& state_dir) const;
  virtual std::unique_ptr<QuantizedModel> restore(
      QuantContext& ctx, const std::map<std::string, torch::Tensor>& state) const = 0;
};

const QuantMethod& quant_method(const std::string& name);  // throws listing the methods
std::vector<std::string> quant_method_names();

// One file per method (method_<name>.cpp); the registry in quant_method.cpp lists them.
std::unique_ptr<QuantMethod> make_fp_method();
std::unique_ptr<QuantMethod> make_baseline_method();
std::unique_ptr<QuantMethod> make_qdiffusion_method();
std::unique_ptr<QuantMethod> make_ptq4dm_method();
std::unique_ptr<QuantMethod> make_ptqd_method();
std::unique_ptr<QuantMethod> make_tinydm_method();
std::unique_ptr<QuantMethod> make_tinydm_b1_method();
std::unique_ptr<QuantMethod> make_tinydm_attn_method();
std::unique_ptr<QuantMethod> make_binarydm_method();
std::unique_ptr<QuantMethod> make_binary_baseline_method();
std::unique_ptr<QuantMethod> make_lsq_method();

// method.check_bits(bits), with the methods that do support those widths named in the error (e.g.
// --bits 1/4 for a post-training method lists the binarizing ones).
void check_method_bits(const QuantMethod& method, const BitWidths& bits);

// Merges user overrides ("key=value", numbers and booleans parsed) into a method's defaults; unknown
// keys are errors naming the method's keys.
nlohmann::ordered_json merge_settings(const QuantMethod& method, const std::vector<std::string>& overrides);

}  // namespace dmeval
