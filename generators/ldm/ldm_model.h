// The latent-diffusion family (CompVis/latent-diffusion LDM-4: LSUN-Bedrooms, cin256-v2) behind the
// DiffusionModel interface: the UNet denoises latents, the VQ first stage decodes them, class labels
// reach the UNet's cross-attention through the class embedder, classifier-free guidance runs the
// unconditional half first (spec ldm.md §3, §6, §7), and its samplers are the LDM's own DDIM and PLMS
// with their timestep discretisation (range(0, T, T // S) + 1) and schedule arithmetic.
#pragma once

#include "generators/diffusion_model.h"
#include "generators/ldm/ldm_config.h"
#include "generators/ldm/ldm_sampler.h"
#include "generators/ldm/ldm_unet.h"
#include "generators/ldm/ldm_weights.h"
#include "generators/ldm/vq_decoder.h"

namespace dmeval {

class LdmModel : public DiffusionModel {
 public:
  LdmModel(LdmConfig config, LdmUNet unet, VqFirstStage first_stage, ClassEmbedder embedder,
           LdmCheckpointInfo weights, int64_t random_seed, std::string uint8_conversion);
  // A preset or LatentDiffusion config (YAML/JSON) and its weights: one checkpoint holding the UNet
  // (EMA applied where the config samples with it), the first stage and the class embedder, or random
  // weights from a seed.
  static std::shared_ptr<LdmModel> load(const ModelSpec& spec);

  std::string family() const override { return "ldm"; }
  std::string name() const override { return config_.name; }
  std::string dataset() const override { return config_.dataset; }
  nlohmann::ordered_json identity() const override;
  nlohmann::ordered_json describe() const override;
  std::string describe_line() const override;
  std::string weights_id() const override;
  std::string weights_sha256() const override { return weights_.sha256; }
  const DiffusionConfig& diffusion() const override { return diffusion_; }
  std::vector<int64_t> sample_shape() const override;
  std::vector<std::string> conditioning() const override;
  int64_t num_classes() const override { return config_.n_classes > 0 ? config_.n_classes - 1 : 0; }

  DiffusionSchedule schedule() const override;
  std::vector<std::string> samplers() const override { return {"ddim", "plms"}; }
  void validate_sampler(const SamplerSpec& spec) const override;
  std::string describe_sampler(const SamplerSpec& spec) const override;
  std::vector<int64_t> sampler_timesteps(const SamplerSpec& spec) const override;
  torch::Tensor sample(const SamplerSpec& spec, const EpsModel& eps, torch::Tensor x_T, NoiseSource& noise,
                       int64_t first, const StepObserver* observer = nullptr,
                       const QuantNoiseStd* quant_noise = nullptr) const override;
  torch::Tensor to_uint8(const torch::Tensor& images, int64_t first_index) const override;
  std::string uint8_conversion() const override;

  EpsModel eps(const UNetRunOptions& run, const Conditioning& c = {}) override;
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const Conditioning& c = {}) override;
  torch::Tensor forward_blocks(const torch::Tensor& x, const torch::Tensor& t, const Conditioning& c,
                               std::vector<torch::Tensor>* blocks) override;
  // The VQ first stage's decode (codebook lookup, post_quant_conv, decoder) of z / scale_factor, in
  // fixed micro-batches like the UNet (the last padded), so images do not depend on the batch.
  torch::Tensor decode(const torch::Tensor& x0) override;
  // Training images in [-1, 1] -> scale_factor * quant_conv(encoder(x)) (needs a first stage loaded with
  // its encoder: random weights with --first-stage).
  torch::Tensor encode(const torch::Tensor& images) override;
  torch::nn::Module& network() override { return *unet_; }
  std::vector<AttentionHook> attention_hooks() override { return unet_->attention_hooks(); }
  void set_split_shortcut(bool on) override { unet_->set_split_shortcut(on); }
  std::shared_ptr<DiffusionModel> clone() const override;
  // The whole model (UNet, first stage, class embedder) under the checkpoint's prefixes in safetensors:
  // a file --checkpoint reads (training checkpoints, exports). load_weights reads one back strictly.
  void save_weights(const std::string& path,
                    const std::map<std::string, std::string>& metadata = {}) override;
  void load_weights(const std::string& path) override;
  void to(torch::Device device) override;

  const LdmConfig& config() const { return config_; }
  LdmUNet& unet() { return unet_; }
  VqFirstStage& first_stage() { return first_stage_; }
  const LdmCheckpointInfo& weights() const { return weights_; }

 private:
  void check_conditioning(const Conditioning& c) const;
  // ε of the (guided) network for x at timesteps t with these conditioning rows.
  torch::Tensor network_eps(const torch::Tensor& x, const torch::Tensor& t, const Conditioning& c);

  LdmConfig config_;
  DiffusionConfig diffusion_;
  LdmSchedule schedule_;
  LdmUNet unet_;
  VqFirstStage first_stage_;
  ClassEmbedder embedder_;  // null for unconditional models
  LdmCheckpointInfo weights_;
  int64_t random_seed_ = -1;
  std::string uint8_conversion_;
  int64_t decode_micro_batch_ = 8;  // the last eps() call's micro-batch
};

}  // namespace dmeval
