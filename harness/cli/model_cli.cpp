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
          "UNet preset (cifar10, celeba, lsun_bedroom, lsun_church, lsun_cat, shapes) or a ddim .yml config");
    t.add("--config", &ModelOptions::config, "a ddim-style .yml config (data, model, diffusion sections)",
          kDefaultTraits | kPath);
    t.add("--checkpoint", &ModelOptions::checkpoint,
          "UNet weights: pytorch_diffusion model-*.ckpt, ddim ckpt.pth (EMA applied), or safetensors",
          kDefaultTraits | kPath);
    t.add("--random-weights", &ModelOptions::random_weights,
          "no checkpoint: PyTorch's default initialisation from this seed (benchmarks, tests)",
          kDefaultTraits, {}, false);
    t.add("--no-ema", &ModelOptions::no_ema,
          "ddim training checkpoints: use the raw weights, not the EMA entry");
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
