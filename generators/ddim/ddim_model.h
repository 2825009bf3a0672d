// The ddim UNet family (ermongroup/ddim, pesser/pytorch_diffusion, q-diffusion's copy) behind the
// DiffusionModel interface: presets and ddim .yml configs, the checkpoints users have, pixel-space
// and unconditional.
#pragma once

#include "generators/ddim/ddim_unet.h"
#include "generators/ddim/unet_config.h"
#include "generators/ddim/unet_weights.h"
#include "generators/diffusion_model.h"

namespace dmeval {

class DdimModel : public DiffusionModel {
 public:
  DdimModel(ModelConfig config, DdimUNet unet, UNetWeightsInfo weights, int64_t random_seed);
  // Loads a preset or .yml config and its weights (a checkpoint, or random weights from a seed).
  static std::shared_ptr<DdimModel> load(const ModelSpec& spec);
  // A bare UNet (shared, not copied) as a model: its own architecture, ddim's default linear
  // schedule, weights of unknown origin (tests and tools that build a UNet themselves).
  static std::shared_ptr<DdimModel> wrap(DdimUNet unet);

  std::string family() const override { return "ddim-unet"; }
  std::string name() const override { return config_.name; }
  std::string dataset() const override { return config_.dataset; }
  nlohmann::ordered_json identity() const override;
  nlohmann::ordered_json describe() const override;
  std::string describe_line() const override;
  std::string weights_id() const override;
  std::string weights_sha256() const override { return weights_.sha256; }
  const DiffusionConfig& diffusion() const override { return config_.diffusion; }
  std::vector<int64_t> sample_shape() const override;
  EpsModel eps(const UNetRunOptions& run, const Conditioning& c = {}) override;
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const Conditioning& c = {}) override;
  torch::Tensor forward_blocks(const torch::Tensor& x, const torch::Tensor& t, const Conditioning& c,
                               std::vector<torch::Tensor>* blocks) override;
  void set_split_shortcut(bool on) override { unet_->set_split_shortcut(on); }
  void save_weights(const std::string& path,
                    const std::map<std::string, std::string>& metadata = {}) override;
  void load_weights(const std::string& path) override;
  torch::nn::Module& network() override { return *unet_; }
  std::vector<AttentionHook> attention_hooks() override;
  std::shared_ptr<DiffusionModel> clone() const override;
  void to(torch::Device device) override { unet_->to(device); }

  const ModelConfig& config() const { return config_; }
  DdimUNet& unet() { return unet_; }
  const UNetWeightsInfo& weights() const { return weights_; }
  int64_t random_seed() const { return random_seed_; }

 private:
  ModelConfig config_;
  DdimUNet unet_;
  UNetWeightsInfo weights_;  // empty path for random weights
  int64_t random_seed_ = -1;
};

// The ddim family's model behind `m`; throws naming `who` (a method, a command) and m's family when
// it is another family.
DdimModel& ddim_model_of(DiffusionModel& m, const std::string& who);

// A fresh UNet with the same configuration and weights.
DdimUNet copy_unet(const DdimUNet& unet);

// The sampler's view of a bare ddim UNet: moved to the device (and layout), in fixed micro-batches
// (generators/unet_runner.h).
EpsModel make_unet_eps(DdimUNet model, const UNetRunOptions& options);

}  // namespace dmeval
