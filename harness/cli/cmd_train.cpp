// `dmeval train`: DDPM training of a ddim UNet (the embedded profile's network is trained with it,
// scripts/train-shapes.sh). Data: the procedural shapes set (`--data shapes:N[:SEED]`) or an ADM-style
// .npz (`arr_0`, N x H x W x 3 uint8). Checkpoints go to --out (model, EMA, optimizer, train.json);
// the same command again resumes exactly where the last checkpoint left off.
#include <fmt/format.h>
#include <torch/torch.h>

#include <cstdio>

#include "core/error.h"
#include "core/npy.h"
#include "core/torch_bridge.h"
#include "generators/ddpm_training.h"
#include "generators/shapes_dataset.h"
#include "generators/unet_config.h"
#include "harness/cli/commands.h"

namespace dmeval::cli {

namespace {
torch::Tensor load_training_data(const std::string& spec, int64_t size) {
  if (spec.rfind("shapes:", 0) == 0) {
    int64_t n = 0;
    uint64_t seed = 0;
    char extra = 0;
    const int got = std::sscanf(spec.c_str() + 7, "%ld:%lu%c", &n, &seed, &extra);
    DMEVAL_CHECK((got == 1 || got == 2) && n > 0, "--data '{}': write shapes:N or shapes:N:SEED", spec);
    ShapesOptions so;
    so.seed = seed;
    so.size = static_cast<int>(size);
    torch::Tensor d = torch::empty({n, 3, size, size}, torch::kUInt8);
    for (int64_t i = 0; i < n; ++i) {
      Image im = render_shape_image(so, i);
      d[i] = torch::from_blob(im.pixels.data(), {size, size, 3}, torch::kUInt8).permute({2, 0, 1}).clone();
    }
    return d;
  }
  NpzReader z = NpzReader::open(spec);
  torch::Tensor a = to_torch(z.read("arr_0"));
  DMEVAL_CHECK(a.dim() == 4 && a.size(3) == 3 && a.scalar_type() == torch::kUInt8,
               "{}: arr_0 must be N x H x W x 3 uint8", spec);
  return a.permute({0, 3, 1, 2}).contiguous();
}
}  // namespace

void add_train_command(CLI::App& app) {
  struct Opts {
    std::string model = "shapes", data, out;
    TrainOptions train;
    bool quiet = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("train", "train a ddim UNet with the DDPM loss (resumable)");
  cmd->add_option("--model", o->model, "preset or ddim .yml of the network")->capture_default_str();
  cmd->add_option("--data", o->data, "shapes:N[:SEED] (procedural) or an .npz with arr_0 (N x H x W x 3)")
      ->required();
  cmd->add_option("--out", o->out, "checkpoint folder (resumed when it holds one)")->required();
  cmd->add_option("--steps", o->train.steps, "optimizer steps in all")->capture_default_str();
  cmd->add_option("--batch", o->train.batch, "images per step")->capture_default_str();
  cmd->add_option("--lr", o->train.lr, "AdamW learning rate")->capture_default_str();
  cmd->add_option("--weight-decay", o->train.weight_decay, "AdamW weight decay")->capture_default_str();
  cmd->add_option("--warmup", o->train.warmup, "linear learning-rate warm-up steps")->capture_default_str();
  cmd->add_option("--grad-clip", o->train.grad_clip, "gradient norm clip (0 = none)")->capture_default_str();
  cmd->add_option("--ema", o->train.ema_rate, "EMA rate (default: the model preset's)");
  cmd->add_option("--seed", o->train.seed, "initialisation and batch seed")->capture_default_str();
  cmd->add_option("--checkpoint-every", o->train.checkpoint_every, "steps between checkpoints")
      ->capture_default_str();
  cmd->add_option("--log-every", o->train.log_every, "steps between log lines")->capture_default_str();
  cmd->add_flag("--quiet", o->quiet, "no log lines");
  cmd->callback([o, cmd] {
    ModelConfig config = resolve_model_config(o->model);
    if (cmd->count("--ema") == 0) o->train.ema_rate = config.ema_rate;
    torch::Tensor data = load_training_data(o->data, config.unet.resolution);
    if (!o->quiet)
      std::fprintf(stderr, "%s\ntraining on %lld images (%s), %lld steps of %lld\n", describe(config).c_str(),
                   static_cast<long long>(data.size(0)), o->data.c_str(),
                   static_cast<long long>(o->train.steps), static_cast<long long>(o->train.batch));
    train_ddpm(config, data, o->train, o->out, [o](const TrainProgress& p) {
      if (!o->quiet)
        std::fprintf(stderr, "step %lld: loss %.4f (%.0f s)\n", static_cast<long long>(p.step), p.loss,
                     p.seconds);
    });
    std::printf("%s: trained to step %lld; weights (EMA): %s/ema.safetensors\n", o->out.c_str(),
                static_cast<long long>(o->train.steps), o->out.c_str());
  });
}

}  // namespace dmeval::cli
