// What every command that generates images shares (`run`, `sample`, `bench latency`, `quantize`):
// one option group (model, method and bits, sampler, sample count, seed, batch, micro-batch, chunk,
// device) under the same names in every command, and one builder that turns it into the pipeline
// model -> schedule -> timesteps -> quantized model -> the sampler's network (-> an ImageProducer).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "generators/diffusion_producer.h"
#include "generators/samplers.h"
#include "generators/unet_runner.h"
#include "harness/cli/model_cli.h"
#include "harness/cli/option_table.h"
#include "harness/cli/quant_cli.h"

namespace dmeval::cli {

// --sampler, --skip-type, --steps, --eta.
const OptionTable<SamplerSpec>& sampler_option_table();

struct GenerationOptions {
  ModelOptions model;
  QuantOptions quant;
  SamplerSpec sampler;
  int64_t samples = 1000, batch = 64, micro_batch = 8, chunk = 256, seed = 0;
  std::string device = "cpu";
  std::string conditioning;  // "" = the model's default (none for unconditional models)
  double guidance = 1.0;     // classifier-free guidance scale (1 = none)
  // The calibration trajectories' conditioning rule ("" = the run's): PTQD's cin256 calibration
  // samples 4 images of every class (per-class=4), whatever the evaluation's order.
  std::string calib_conditioning;
};

// The model, quantization and sampler groups plus --samples, --batch, --micro-batch, --chunk, --seed,
// --device, --conditioning, --guidance, --calib-conditioning. Commands set their own defaults in the struct
// before binding.
const OptionTable<GenerationOptions>& generation_option_table();

using LogLine = std::function<void(const std::string&)>;

struct GenerationPipeline {
  LoadedModel model;
  DiffusionSchedule schedule;
  std::vector<int64_t> timesteps;     // the sampler's timesteps, increasing (the last is the noisiest)
  std::vector<int64_t> sample_shape;  // (C, H, W) of one sample
  torch::Device device = torch::kCPU;
  UNetRunOptions run;
  std::optional<QuantizedSetup> quant;          // empty: the float model as it is (no method object)
  double size_mb = 0;                           // Conv2d/Linear weights at the method's bits, the rest fp32
  double scale_bytes = -1;                      // the method's quantizer parameters (negative: not stated)
  std::shared_ptr<DiffusionModel> float_model;  // the float model before quantization (keep_float_copy)
  // Each image's conditioning (generators/conditioning_source.h); "none" for unconditional models.
  std::shared_ptr<const ConditioningSource> conditioning;
  double guidance = 1.0;

  // The sampler's network for a batch with conditioning `c` (unconditional models: none).
  EpsModel eps(const Conditioning& c = {}) const;
  // The conditioning (with the guidance scale) of images first .. first + count - 1; empty for
  // unconditional runs (latency measurements use it for their batches).
  Conditioning conditioning_for(int64_t first, int64_t count) const;
  // What the run identity records of the conditioning (nothing for unconditional, unguided runs, so
  // their identities stay as they were before conditioning existed).
  template <class Json>
  void add_identity(Json& id) const {
    if (conditioning && !conditioning->empty()) id["conditioning"] = conditioning->describe();
    if (guidance != 1.0) id["guidance"] = guidance;
  }
  QuantNoiseStd quant_noise() const;
  std::string method() const { return quant ? quant->record.method : "fp"; }
  std::string bits() const { return quant ? quant->record.bits.str() : "32/32"; }
  // The sampler as an ImageProducer over this pipeline's network.
  // The sampler's line for identities and logs (the family's samplers).
  std::string describe_sampler(const SamplerSpec& sampler) const {
    return model.model->describe_sampler(sampler);
  }
  std::unique_ptr<DiffusionImageProducer> producer(const SamplerSpec& sampler,
                                                   std::unique_ptr<NoiseSource> noise,
                                                   bool keep_raw = false) const;
};

struct GenerationBuild {
  // Quantize through the method even for fp/32 (run: every cell has a calibration record); otherwise
  // the float model is used as it is unless a method, a calibration file or an import is given.
  bool always_quantize = false;
  bool channels_last = false;
  // Calibrate on the options' sampler (run, sample, bench); false: the method's own calibration
  // trajectories (quantize without sampler options).
  bool calibrate_on_sampler = true;
  bool keep_float_copy = false;  // GenerationPipeline::float_unet (quantize's error figures)
};

// Loads the model, makes the schedule and timesteps (a bad --steps fails here, before any work),
// quantizes or restores as the options say (calibrating on the options' sampler) and measures the size.
GenerationPipeline build_generation(const GenerationOptions& o, const LogLine& log,
                                    const GenerationBuild& b = {});

}  // namespace dmeval::cli
