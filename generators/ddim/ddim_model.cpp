#include "generators/ddim/ddim_model.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include "core/error.h"

namespace dmeval {

DdimModel::DdimModel(ModelConfig config, DdimUNet unet, UNetWeightsInfo weights, int64_t random_seed)
    : config_(std::move(config)),
      unet_(std::move(unet)),
      weights_(std::move(weights)),
      random_seed_(random_seed) {}

std::shared_ptr<DdimModel> DdimModel::load(const ModelSpec& o) {
  DMEVAL_CHECK(
      o.uint8_conversion.empty(),
      "--uint8 {}: the ddim-unet family converts as ddim does (round half up, torchvision save_image)",
      o.uint8_conversion);
  DMEVAL_CHECK(o.first_stage.empty(),
               "--first-stage: the ddim-unet family is a pixel-space model (no first stage)");
  ModelConfig config = o.config.empty() ? resolve_model_config(o.model) : read_ddim_yaml(o.config);
  if (o.checkpoint.empty() == (o.random_weights < 0))
    fail("give the UNet weights with --checkpoint FILE, or --random-weights SEED for random ones");
  if (o.random_weights >= 0) torch::manual_seed(static_cast<uint64_t>(o.random_weights));
  DdimUNet unet(config.unet);
  UNetWeightsInfo weights;
  if (!o.checkpoint.empty()) {
    UNetWeightsOptions wo;
    wo.apply_ema = !o.no_ema;
    wo.allow_unknown = o.allow_unknown;
    weights = load_unet_weights(*unet, o.checkpoint, wo);
  }
  unet->eval();
  return std::make_shared<DdimModel>(std::move(config), unet, std::move(weights), o.random_weights);
}

std::shared_ptr<DdimModel> DdimModel::wrap(DdimUNet unet) {
  ModelConfig config;
  config.name = "unet";
  config.source = "a UNet built in code";
  config.unet = unet->config();
  return std::make_shared<DdimModel>(std::move(config), std::move(unet), UNetWeightsInfo{}, -1);
}

std::string DdimModel::weights_id() const {
  return weights_.path.empty() ? fmt::format("random:{}", random_seed_) : weights_.sha256;
}

nlohmann::ordered_json DdimModel::identity() const {
  nlohmann::ordered_json j;
  j["architecture"] = describe_architecture(config_);
  j["weights"] = weights_id();
  if (!weights_.path.empty()) j["ema_applied"] = weights_.ema_applied;
  return j;
}

nlohmann::ordered_json DdimModel::describe() const {
  nlohmann::ordered_json j;
  j["model"] = config_.name;
  j["config_source"] = config_.source;
  j["architecture"] = dmeval::describe(config_);
  if (weights_.path.empty()) {
    j["weights"] = fmt::format("random (PyTorch default initialisation, seed {})", random_seed_);
  } else {
    j["checkpoint"] = weights_.path;
    j["checkpoint_sha256"] = weights_.sha256;
    j["checkpoint_md5"] = weights_.md5;
    j["checkpoint_format"] = weights_.format;
    j["checkpoint_layout"] = weights_.layout;
    j["known_file"] = weights_.known_file.empty() ? "no (not a known public file)" : weights_.known_file;
    j["ema_applied"] = weights_.ema_applied;
    if (weights_.training_step >= 0) j["training_step"] = weights_.training_step;
  }
  return j;
}

std::string DdimModel::describe_line() const {
  return dmeval::describe(config_);
}

std::vector<int64_t> DdimModel::sample_shape() const {
  return {config_.unet.in_channels, config_.unet.resolution, config_.unet.resolution};
}

EpsModel DdimModel::eps(const UNetRunOptions& run, const Conditioning& c) {
  DMEVAL_CHECK(c.empty(),
               "model {} (family ddim-unet) is unconditional: it takes no class labels, context or "
               "low-resolution image",
               config_.name);
  return make_unet_eps(unet_, run);
}

torch::Tensor DdimModel::forward(const torch::Tensor& x, const torch::Tensor& t, const Conditioning& c) {
  DMEVAL_CHECK(c.empty(), "model {} (family ddim-unet) is unconditional", config_.name);
  return unet_->forward(x, t);
}

torch::Tensor DdimModel::forward_blocks(const torch::Tensor& x, const torch::Tensor& t, const Conditioning& c,
                                        std::vector<torch::Tensor>* blocks) {
  DMEVAL_CHECK(c.empty(), "model {} (family ddim-unet) is unconditional", config_.name);
  // The LDM TimestepEmbedSequential equivalents (spec binarydm.md §6.1): conv_in, every encoder block
  // (after its attention), every downsample, the middle output, every decoder block (after its attention,
  // after the level's upsampling for the last block of a level).
  std::vector<std::string> names;
  const ForwardObserver observe = [&](const std::string& name, const torch::Tensor& v) {
    auto starts = [&](const char* p) { return name.rfind(p, 0) == 0; };
    const bool replaces =
        !names.empty() && ((name.find(".attn.") != std::string::npos &&
                            names.back() == fmt::format("{}.block.{}", name.substr(0, name.find(".attn.")),
                                                        name.substr(name.rfind('.') + 1))) ||
                           name.find(".upsample") != std::string::npos);
    if (replaces) {
      blocks->back() = v;
      names.back() = name;
    } else if (name == "conv_in" || name == "mid.block_2" ||
               ((starts("down.") || starts("up.")) && name.find(".block.") != std::string::npos) ||
               (starts("down.") && name.find(".downsample") != std::string::npos)) {
      blocks->push_back(v);
      names.push_back(name);
    }
  };
  return unet_->forward_observed(x, t, observe);
}

void DdimModel::save_weights(const std::string& path, const std::map<std::string, std::string>& metadata) {
  save_unet_weights(*unet_, path, metadata);
}

void DdimModel::load_weights(const std::string& path) {
  UNetWeightsOptions wo;
  wo.hash = false;
  load_unet_weights(*unet_, path, wo);
}

EpsModel make_unet_eps(DdimUNet model, const UNetRunOptions& o) {
  prepare_device_arithmetic(o);
  model->to(o.device);
  model->eval();
  if (o.channels_last) model->set_channels_last(true);
  return micro_batched_eps([model](const torch::Tensor& x, const torch::Tensor& t,
                                   const torch::Tensor&) mutable { return model->forward(x, t); },
                           o);
}

std::vector<AttentionHook> DdimModel::attention_hooks() {
  std::vector<AttentionHook> out;
  for (auto& [name, block] : unet_->attention_blocks()) out.push_back({name, &block->quantizer});
  return out;
}

std::shared_ptr<DiffusionModel> DdimModel::clone() const {
  return std::make_shared<DdimModel>(config_, copy_unet(unet_), weights_, random_seed_);
}

DdimModel& ddim_model_of(DiffusionModel& m, const std::string& who) {
  auto* d = dynamic_cast<DdimModel*>(&m);
  DMEVAL_CHECK(d, "{} works on the ddim-unet family; model {} is of the {} family", who, m.name(),
               m.family());
  return *d;
}

DdimUNet copy_unet(const DdimUNet& unet) {
  DdimUNet c(unet->config());
  torch::NoGradGuard no_grad;
  auto src = unet->named_parameters(true);
  for (auto& p : c->named_parameters(true)) p.value().copy_(src[p.key()]);
  c->to(src.begin()->value().device());
  c->eval();
  return c;
}

ModelFamily ddim_unet_family() {
  ModelFamily f;
  f.name = "ddim-unet";
  f.description =
      "the pixel-space ddim UNet (ermongroup/ddim, pytorch_diffusion, q-diffusion): presets or a ddim .yml";
  f.presets = model_preset_names();
  f.accepts = [](const ModelSpec& s) {
    auto yml = [](const std::string& p) {
      return (p.size() > 4 && p.substr(p.size() - 4) == ".yml") ||
             (p.size() > 5 && p.substr(p.size() - 5) == ".yaml");
    };
    // Any other .yml is a ddim config (the ldm family, before this one in the registry, takes the
    // LatentDiffusion ones).
    if (!s.config.empty()) return true;
    if (yml(s.model)) return true;
    for (const auto& n : model_preset_names())
      if (n == s.model) return true;
    return false;
  };
  f.load = [](const ModelSpec& s) -> std::shared_ptr<DiffusionModel> { return DdimModel::load(s); };
  return f;
}

}  // namespace dmeval
