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
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "generators/beta_schedule.h"
#include "generators/layers.h"
#include "generators/samplers.h"
#include "generators/unet_runner.h"

namespace dmeval {

// The conditioning inputs of one batch of images; tensors a family does not take stay undefined.
// Where they come from per image is a ConditioningSource (generators/conditioning_source.h).
struct Conditioning {
  torch::Tensor class_labels;  // (n,) int64: class-conditional models
  torch::Tensor context;       // (n, L, D): cross-attention context (text encoders)
  torch::Tensor low_res;       // (n, C, h, w): super-resolution models, the low-resolution image
  // Classifier-free guidance scale s: ε = ε_u + s (ε_c − ε_u) with the family's unconditional input;
  // 1 = none (one conditional pass).
  double guidance = 1.0;
  bool empty() const {
    return !class_labels.defined() && !context.defined() && !low_res.defined() && guidance == 1.0;
  }
  // Rows `rows` (int64) of every tensor: a micro-batch's conditioning (generators/unet_runner.h).
  Conditioning rows(const torch::Tensor& rows) const;
};

// What to load: a family's preset or config file, and its weights (the command-line model options).
struct ModelSpec {
  std::string family;             // "" = the family that knows `model` / `config`
  std::string model = "cifar10";  // preset name or config file (the command line's default)
  std::string config;             // a config file (family-specific format)
  std::string checkpoint;
  // Latent models: the first stage's weights from this file instead of the checkpoint (a VQ-f4
  // model.ckpt, or any file holding first_stage_model.*).
  std::string first_stage;
  int64_t random_weights = -1;  // seed: the framework's default initialisation instead of a checkpoint
  bool no_ema = false;
  bool allow_unknown = false;  // a file named like a public checkpoint whose checksum matches none
  // How decoded images become uint8 ("" = the family's default; ldm: png, np or ptqd, spec ldm.md §8).
  std::string uint8_conversion;
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
  // Class-conditional models: the number of classes (labels 0..K-1, without the unconditional one).
  virtual int64_t num_classes() const { return 0; }

  // The noise-prediction network as the samplers call it, on run.device in fixed micro-batches, for
  // a batch with this conditioning (an unconditional family refuses a non-empty one).
  virtual EpsModel eps(const UNetRunOptions& run, const Conditioning& c = {}) = 0;
  // One pass of the network on a batch as it is (no micro-batching, no device move, gradients as the
  // caller's mode says): what calibration and training call.
  virtual torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t,
                                const Conditioning& c = {}) = 0;
  // The same pass (no guidance: one conditional pass), also returning the outputs of the network's
  // blocks in execution order — the representation BinaryDM's low-rank mimicking compares (ldm: every
  // TimestepEmbedSequential; ddim: the tensors its encoder pushes to the skip stack, the middle output and
  // each decoder block's output after its attention and upsampling). Families without blocks refuse.
  virtual torch::Tensor forward_blocks(const torch::Tensor& x, const torch::Tensor& t, const Conditioning& c,
                                       std::vector<torch::Tensor>* blocks);
  // The sampler's x_0 -> images in [-1, 1] (pixel models: as it is; latent models: the first stage).
  virtual torch::Tensor decode(const torch::Tensor& x0) { return x0; }
  // Training images in [-1, 1] -> what the network denoises (pixel models: as they are; latent
  // models: the first stage's encoding).
  virtual torch::Tensor encode(const torch::Tensor& images) { return images; }

  // The family's noise schedule as the samplers and training use it (ddim: make_schedule(diffusion())).
  virtual DiffusionSchedule schedule() const;
  // Its samplers, with the reference's arithmetic for this family: the names --sampler takes here, a
  // check of a sampler spec (before any work), the timestep of each sampler step (the noisiest first;
  // step_index of EpsModel indexes it), and one run from x_T to x_0 (step noise from `noise`; the
  // observer sees every step; quant_noise: PTQD's correction). Defaults: the ddim samplers.
  virtual std::vector<std::string> samplers() const;
  virtual void validate_sampler(const SamplerSpec& spec) const;
  virtual std::string describe_sampler(const SamplerSpec& spec) const;
  virtual std::vector<int64_t> sampler_timesteps(const SamplerSpec& spec) const;
  virtual torch::Tensor sample(const SamplerSpec& spec, const EpsModel& eps, torch::Tensor x_T,
                               NoiseSource& noise, int64_t first, const StepObserver* observer = nullptr,
                               const QuantNoiseStd* quant_noise = nullptr) const;
  // Decoded images (N, C, H, W) in [-1, 1] -> uint8 (N, H, W, C) as the family's reference scripts
  // convert them (NaN/Inf refused naming image first_index + i), and a line saying how.
  virtual torch::Tensor to_uint8(const torch::Tensor& images, int64_t first_index) const;
  virtual std::string uint8_conversion() const;

  // The module whose Conv2d/Linear layers (generators/layers.h) the quantization methods attach to.
  virtual torch::nn::Module& network() = 0;
  // Its attention blocks' quantizer slots, in module order (none for a family without attention).
  virtual std::vector<AttentionHook> attention_hooks() { return {}; }
  // q-diffusion's split shortcut: layers whose input is a concatenation of two feature maps (the ddim
  // decoder's 1x1 shortcuts) quantize the two halves separately. Families without such layers refuse
  // `on`, naming themselves.
  virtual void set_split_shortcut(bool on);
  // A copy with the same configuration and weights (FP references during calibration, EMA copies).
  virtual std::shared_ptr<DiffusionModel> clone() const = 0;
  virtual void to(torch::Device device) = 0;

  // The network's weights in the family's own file format (training checkpoints): written with
  // `metadata`, read back strictly (every tensor, every shape; errors name the file).
  virtual void save_weights(const std::string& path, const std::map<std::string, std::string>& metadata = {});
  virtual void load_weights(const std::string& path);
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
ModelFamily ldm_family();

}  // namespace dmeval
