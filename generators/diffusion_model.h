// A diffusion model family behind one interface: what the samplers, the generation pipeline, the
// quantization methods and the run identities need of a model, whatever its architecture — noise
// prediction (with an optional conditioning input), the shape the sampler denoises (pixels or
// latents), decoding to images, the network whose Conv2d/Linear layers a method quantizes, clone, and
// an identity (architecture + weights hash). Each family lives in its own folder under generators/
// (generators/ddim/: the pixel-space ddim UNet) and is listed once in model_registry.cpp.
#pragma once

#include <torch/nn/module.h>
#include <torch/types.h>

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "generators/beta_schedule.h"
#include "generators/layers.h"
#include "generators/samplers.h"
#include "generators/unet_runner.h"

namespace dmeval {

// The conditioning inputs of one batch of images; tensors a family does not take stay undefined.
struct Conditioning {
  torch::Tensor class_labels;  // (n,) int64: class-conditional models
  torch::Tensor context;       // (n, L, D): cross-attention context (text encoders)
  torch::Tensor low_res;       // (n, C, h, w): super-resolution models, the low-resolution image
  bool empty() const { return !class_labels.defined() && !context.defined() && !low_res.defined(); }
};

// What to load: a family's preset or config file, and its weights (the command-line model options).
struct ModelSpec {
  std::string family;             // "" = the family that knows `model` / `config`
  std::string model = "cifar10";  // preset name or config file (the command line's default)
  std::string config;             // a config file (family-specific format)
  std::string checkpoint;
  int64_t random_weights = -1;  // seed: the framework's default initialisation instead of a checkpoint
  bool no_ema = false;
  bool allow_unknown = false;  // a file named like a public checkpoint whose checksum matches none
};

class DiffusionModel {
 public:
  virtual ~DiffusionModel() = default;

  virtual std::string family() const = 0;   // the registry name ("ddim-unet")
  virtual std::string name() const = 0;     // preset name or config file
  virtual std::string dataset() const = 0;  // what it was trained on (informational)
  // What determines its outputs (architecture, schedule, weights hash, EMA), never paths.
  virtual nlohmann::ordered_json identity() const = 0;
  // identity() plus where the weights came from (path, format, known public file).
  virtual nlohmann::ordered_json describe() const = 0;
  virtual std::string describe_line() const = 0;   // one line for logs
  virtual std::string weights_id() const = 0;      // the weights' SHA-256, or random:<seed>
  virtual std::string weights_sha256() const = 0;  // "" for random weights

  virtual const DiffusionConfig& diffusion() const = 0;
  // (C, H, W) of what the sampler denoises: the image for pixel models, the latent for latent ones.
  virtual std::vector<int64_t> sample_shape() const = 0;
  // The conditioning kinds it needs ("class", "context", "low_res"); empty = unconditional.
  virtual std::vector<std::string> conditioning() const { return {}; }

  // The noise-prediction network as the samplers call it, on run.device in fixed micro-batches, for
  // a batch with this conditioning (an unconditional family refuses a non-empty one).
  virtual EpsModel eps(const UNetRunOptions& run, const Conditioning& c = {}) = 0;
  // The sampler's x_0 -> images in [-1, 1] (pixel models: as it is; latent models: the first stage).
  virtual torch::Tensor decode(const torch::Tensor& x0) { return x0; }

  // The module whose Conv2d/Linear layers (generators/layers.h) the quantization methods attach to.
  virtual torch::nn::Module& network() = 0;
  // Its attention blocks' quantizer slots, in module order (none for a family without attention).
  virtual std::vector<AttentionHook> attention_hooks() { return {}; }
  // A copy with the same configuration and weights (FP references during calibration).
  virtual std::shared_ptr<DiffusionModel> clone() const = 0;
  virtual void to(torch::Device device) = 0;
};

// A family in the registry: its name, what it reads, and how to load it.
struct ModelFamily {
  std::string name, description;
  std::vector<std::string> presets;
  // Whether this family reads `spec` (a preset of its own, or a config file it recognises).
  std::function<bool(const ModelSpec&)> accepts;
  std::function<std::shared_ptr<DiffusionModel>(const ModelSpec&)> load;
};

// Every family, in registry order (model_registry.cpp: one line per family).
const std::vector<ModelFamily>& model_families();
std::vector<std::string> model_family_names();
const ModelFamily& model_family(const std::string& name);  // throws listing the families
// Loads with `spec.family`, or with the first family that accepts the spec; errors list what each
// family reads.
std::shared_ptr<DiffusionModel> load_diffusion_model(const ModelSpec& spec);

// The families (one function per family folder).
ModelFamily ddim_unet_family();

}  // namespace dmeval
