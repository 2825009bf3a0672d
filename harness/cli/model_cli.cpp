#include "harness/cli/model_cli.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include "core/error.h"

namespace dmeval::cli {

const OptionTable<ModelOptions>& model_option_table() {
  static const OptionTable<ModelOptions> table = [] {
    OptionTable<ModelOptions> t;
    t.add(
        "--family", &ModelOptions::family,
        "model family (default: the one that reads --model/--config): " +
            [] {
              std::string s;
              for (const auto& n : model_family_names()) s += (s.empty() ? "" : ", ") + n;
              return s;
            }(),
        kDefaultTraits, {}, false);
    t.add("--model", &ModelOptions::model,
          "model preset (ddim-unet: cifar10, celeba, lsun_bedroom, lsun_church, lsun_cat, shapes; ldm: "
          "lsun_bedrooms-ldm-vq-4, cin256-v2) or a config file");
    t.add("--config", &ModelOptions::config,
          "a config file: a ddim-style .yml (data, model, diffusion sections) or a latent-diffusion "
          "LatentDiffusion .yaml/.json",
          kDefaultTraits | kPath);
    t.add(
        "--checkpoint", &ModelOptions::checkpoint,
        "weights: pytorch_diffusion model-*.ckpt, ddim ckpt.pth (EMA applied) or safetensors (ddim-unet); a "
        "latent-diffusion .ckpt with UNet, first stage and conditioning stage (ldm; EMA applied where the "
        "config samples with it)",
        kDefaultTraits | kPath);
    t.add("--first-stage", &ModelOptions::first_stage,
          "ldm family: the first stage's weights from this file (a VQ-f4 model.ckpt, or a file holding "
          "first_stage_model.*) instead of --checkpoint's",
          kDefaultTraits | kPath, {}, false);
    t.add("--random-weights", &ModelOptions::random_weights,
          "no checkpoint: PyTorch's default initialisation from this seed (benchmarks, tests)",
          kDefaultTraits, {}, false);
    t.add("--no-ema", &ModelOptions::no_ema,
          "use the raw weights, not the EMA copy (ddim training checkpoints; ldm model_ema.*)");
    t.add("--uint8", &ModelOptions::uint8_conversion,
          "ldm family: how decoded images become uint8 (np: custom_to_np, the default; png: custom_to_pil; "
          "ptqd: PTQD's double mapping, a quirk); recorded with every result",
          kDefaultTraits, {}, false);
    t.add("--allow-unknown-weights", &ModelOptions::allow_unknown,
          "accept a file named like a public checkpoint whose checksum matches none of them");
    return t;
  }();
  return table;
}

void add_model_options(CLI::App* cmd, ModelOptions& o) {
  model_option_table().bind(cmd, o);
}

LoadedModel load_model(const ModelOptions& o) {
  return {load_diffusion_model(o)};
}

}  // namespace dmeval::cli
