#include "harness/cli/model_cli.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include "core/error.h"

namespace dmeval::cli {

void add_model_options(CLI::App* cmd, ModelOptions& o) {
  cmd->add_option("--model", o.model,
                  "UNet preset (cifar10, celeba, lsun_bedroom, lsun_church, lsun_cat) or a ddim .yml config")
      ->capture_default_str();
  cmd->add_option("--config", o.config, "a ddim-style .yml config (data, model, diffusion sections)");
  cmd->add_option(
      "--checkpoint", o.checkpoint,
      "UNet weights: pytorch_diffusion model-*.ckpt, ddim ckpt.pth (EMA applied), or safetensors");
  cmd->add_option("--random-weights", o.random_weights,
                  "no checkpoint: PyTorch's default initialisation from this seed (benchmarks, tests)");
  cmd->add_flag("--no-ema", o.no_ema, "ddim training checkpoints: use the raw weights, not the EMA entry");
  cmd->add_flag("--allow-unknown-weights", o.allow_unknown,
                "accept a file named like a public checkpoint whose checksum matches none of them");
}

LoadedModel load_model(const ModelOptions& o) {
  LoadedModel m;
  m.config = o.config.empty() ? resolve_model_config(o.model) : read_ddim_yaml(o.config);
  if (o.checkpoint.empty() == (o.random_weights < 0))
    fail("give the UNet weights with --checkpoint FILE, or --random-weights SEED for random ones");
  if (o.random_weights >= 0) {
    torch::manual_seed(static_cast<uint64_t>(o.random_weights));
    m.random_seed = o.random_weights;
  }
  m.unet = DdimUNet(m.config.unet);
  if (!o.checkpoint.empty()) {
    UNetWeightsOptions wo;
    wo.apply_ema = !o.no_ema;
    wo.allow_unknown = o.allow_unknown;
    m.weights = load_unet_weights(*m.unet, o.checkpoint, wo);
  }
  m.unet->eval();
  return m;
}

std::string LoadedModel::weights_id() const {
  return weights.path.empty() ? fmt::format("random:{}", random_seed) : weights.sha256;
}

nlohmann::ordered_json LoadedModel::identity() const {
  nlohmann::ordered_json j;
  j["architecture"] = describe_architecture(config);
  j["weights"] = weights_id();
  if (!weights.path.empty()) j["ema_applied"] = weights.ema_applied;
  return j;
}

nlohmann::ordered_json LoadedModel::describe() const {
  nlohmann::ordered_json j;
  j["model"] = config.name;
  j["config_source"] = config.source;
  j["architecture"] = dmeval::describe(config);
  if (weights.path.empty()) {
    j["weights"] = fmt::format("random (PyTorch default initialisation, seed {})", random_seed);
  } else {
    j["checkpoint"] = weights.path;
    j["checkpoint_sha256"] = weights.sha256;
    j["checkpoint_md5"] = weights.md5;
    j["checkpoint_format"] = weights.format;
    j["checkpoint_layout"] = weights.layout;
    j["known_file"] = weights.known_file.empty() ? "no (not a known public file)" : weights.known_file;
    j["ema_applied"] = weights.ema_applied;
    if (weights.training_step >= 0) j["training_step"] = weights.training_step;
  }
  return j;
}

}  // namespace dmeval::cli
