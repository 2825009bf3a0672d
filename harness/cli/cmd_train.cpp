// `dmeval train`: DDPM training of a ddim UNet (the embedded profile's network is trained with it,
// scripts/train-shapes.sh). Data: the procedural shapes set (`--data shapes:N[:SEED]`) or an ADM-style
// .npz (`arr_0`, N x H x W x 3 uint8). Checkpoints go to --out (model, EMA, optimizer, train.json);
// the same command again resumes exactly where the last checkpoint left off.
#include <fmt/format.h>
#include <torch/torch.h>

#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "core/npy.h"
#include "core/torch_bridge.h"
#include "generators/ddim/unet_config.h"
#include "generators/ddpm_training.h"
#include "generators/shapes_dataset.h"
#include "harness/cli/commands.h"
#include "metrics/shapes_net.h"

namespace dmeval::cli {

namespace {
torch::Tensor load_training_data(const std::string& spec, int64_t size) {
  if (is_shapes_spec(spec)) {
    const ShapesSpec s = parse_shapes_spec(spec, "--data");
    const int64_t n = s.n;
    ShapesOptions so;
    so.seed = s.seed;
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
// Shapes images first .. first + n - 1 of a data seed as a classifier batch (N x 32 x 32 x 3).
ClassifierBatch shapes_batch(uint64_t seed, int64_t first, int64_t n) {
  ShapesOptions so;
  so.seed = seed;
  ClassifierBatch b;
  b.images = torch::empty({n, 32, 32, 3}, torch::kUInt8);
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    int l = 0;
    Image im = render_shape_image(so, first + i, &l);
    std::memcpy(b.images[i].data_ptr<uint8_t>(), im.pixels.data(), im.pixels.size());
    labels[static_cast<size_t>(i)] = l;
  }
  b.labels = torch::tensor(labels, torch::kLong);
  return b;
}
}  // namespace

void add_train_classifier_command(CLI::App& app) {
  struct Opts {
    std::string out;
    ClassifierTrainOptions train;
    uint64_t data_seed = 1, test_seed = 2;
    int64_t test_images = 2048;
    bool quiet = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand(
      "train-classifier",
      "train shapes-net, the feature network of the shapes profile, on fresh procedural images");
  cmd->add_option("--out", o->out, "weights file (.safetensors)")->required();
  cmd->add_option("--steps", o->train.steps, "optimizer steps")->capture_default_str();
  cmd->add_option("--batch", o->train.batch, "images per step (each step draws new images)")
      ->capture_default_str();
  cmd->add_option("--lr", o->train.lr, "AdamW learning rate")->capture_default_str();
  cmd->add_option("--seed", o->train.seed, "initialisation seed")->capture_default_str();
  cmd->add_option("--data-seed", o->data_seed,
                  "shapes seed of the training images (the profile's reference uses 0)")
      ->capture_default_str();
  cmd->add_option("--test-seed", o->test_seed, "shapes seed of the held-out images")->capture_default_str();
  cmd->add_flag("--quiet", o->quiet, "no log lines");
  cmd->callback([o] {
    const int64_t batch = o->train.batch;
    ShapesNet net = train_shapes_net(
        o->train, [&](int64_t step) { return shapes_batch(o->data_seed, step * batch, batch); },
        [o](int64_t step, double loss, double acc) {
          if (!o->quiet)
            std::fprintf(stderr, "step %lld: loss %.4f, accuracy %.3f\n", static_cast<long long>(step), loss,
                         acc);
        });
    const double acc = shapes_net_accuracy(net, shapes_batch(o->test_seed, 0, o->test_images));
    save_shapes_net(net, o->out,
                    {{"dmeval_network", "shapes-net"},
                     {"train", fmt::format("steps {}, batch {}, lr {}, seed {}, shapes data seed {}",
                                           o->train.steps, batch, o->train.lr, o->train.seed, o->data_seed)},
                     {"held_out_accuracy", fmt::format("{:.4f} on {} images of shapes seed {}", acc,
                                                       o->test_images, o->test_seed)}});
    std::printf("%s: held-out accuracy %.4f (%lld images of shapes seed %llu)\n", o->out.c_str(), acc,
                static_cast<long long>(o->test_images), static_cast<unsigned long long>(o->test_seed));
  });
}

void add_train_command(CLI::App& app) {
  struct Opts {
    std::string model = "shapes", data, out;
    TrainOptions train;
    double dropout = -1;
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
  cmd->add_option(
      "--decay-from", o->train.decay_from,
      "decay the learning rate linearly to 0 from this step to --steps (default: constant); may "
      "change when a run is resumed, as --steps and --dropout may (logged in train.json's phases)");
  cmd->add_option("--dropout", o->dropout, "dropout while training (default: the model preset's)");
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
    if (o->dropout >= 0) config.unet.dropout = o->dropout;
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
