// The training commands. `dmeval train`: DDPM training of a diffusion model — a ddim UNet (the embedded
// profile's network, scripts/train-shapes.sh) or, through its family's loader, any other family's model
// from random weights (ldm: a UNet and class embedder on a first stage trained by `dmeval train-vq`,
// scripts/train-shapes-ldm.sh). `dmeval train-vq`: a VQ first stage. `dmeval train-classifier`: shapes-net.
// Data: the procedural shapes set (`--data shapes:N[:SEED]`, with its class labels) or an ADM-style .npz
// (`arr_0`, N x H x W x 3 uint8; labels in `arr_1`). Checkpoints go to --out (model, EMA, optimizer,
// train.json); the same command again resumes exactly where the last checkpoint left off.
#include <fmt/format.h>
#include <torch/torch.h>

#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "core/npy.h"
#include "core/torch_bridge.h"
#include "generators/ddim/unet_config.h"
#include "generators/ddpm_training.h"
#include "generators/ldm/ldm_config.h"
#include "generators/ldm/vq_training.h"
#include "generators/shapes_dataset.h"
#include "harness/cli/commands.h"
#include "harness/cli/training_data.h"
#include "metrics/shapes_net.h"

namespace dmeval::cli {

namespace {
// The family that reads the spec ("" = none: the ddim path reports the error).
std::string load_family_of(const ModelSpec& spec) {
  for (const auto& f : model_families())
    if (f.accepts(spec)) return f.name;
  return "";
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
    std::string model = "shapes", data, out, first_stage;
    TrainOptions train;
    double dropout = -1;
    bool quiet = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("train", "train a diffusion model with the DDPM loss (resumable)");
  cmd->add_option("--model", o->model,
                  "preset or config of the network (ddim .yml, or a model of another family, e.g. the ldm "
                  "preset shapes-ldm)")
      ->capture_default_str();
  cmd->add_option("--first-stage", o->first_stage,
                  "latent models: the trained first stage (with its encoder), from `dmeval train-vq`");
  cmd->add_option("--label-dropout", o->train.label_dropout,
                  "class-conditional models: probability of training an image as unconditional "
                  "(classifier-free guidance)")
      ->capture_default_str();
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
    auto log = [o](const TrainProgress& p) {
      if (!o->quiet)
        std::fprintf(stderr, "step %lld: loss %.4f (%.0f s)\n", static_cast<long long>(p.step), p.loss,
                     p.seconds);
    };
    ModelSpec spec;
    spec.model = o->model;
    spec.random_weights = static_cast<int64_t>(o->train.seed);
    spec.first_stage = o->first_stage;
    if (const std::string family = load_family_of(spec); !family.empty() && family != "ddim-unet") {
      // Any other family: its loader gives the initial model (random weights from the seed, plus what
      // it needs, e.g. the ldm first stage); DDPM training is the same task.
      DMEVAL_CHECK(o->dropout < 0, "--dropout is a ddim UNet setting");
      auto model = load_diffusion_model(spec);
      // The image size: what the model decodes (pixel models: the sample itself).
      std::vector<int64_t> shape = model->sample_shape();
      shape.insert(shape.begin(), 1);
      const int64_t size = model->decode(torch::zeros(shape)).size(2);
      TrainingData data = load_training_data(o->data, size);
      if (model->num_classes() == 0) data.labels = torch::Tensor();
      DMEVAL_CHECK(
          model->num_classes() == 0 || data.labels.defined(),
          "{}: model {} is class-conditional; the data holds no labels (shapes, or an .npz with arr_1)",
          o->data, o->model);
      if (!o->quiet)
        std::fprintf(stderr, "%s\ntraining on %lld images (%s), %lld steps of %lld\n",
                     model->describe_line().c_str(), static_cast<long long>(data.images.size(0)),
                     o->data.c_str(), static_cast<long long>(o->train.steps),
                     static_cast<long long>(o->train.batch));
      train_ddpm(model, data.images, o->train, o->out, log, data.labels);
      std::printf("%s: trained to step %lld; weights (EMA): %s/ema.safetensors\n", o->out.c_str(),
                  static_cast<long long>(o->train.steps), o->out.c_str());
      return;
    }
    DMEVAL_CHECK(o->first_stage.empty(), "--first-stage is for latent models (the ddim UNet has none)");
    ModelConfig config = resolve_model_config(o->model);
    if (cmd->count("--ema") == 0) o->train.ema_rate = config.ema_rate;
    if (o->dropout >= 0) config.unet.dropout = o->dropout;
    torch::Tensor data = load_training_data(o->data, config.unet.resolution).images;
    if (!o->quiet)
      std::fprintf(stderr, "%s\ntraining on %lld images (%s), %lld steps of %lld\n", describe(config).c_str(),
                   static_cast<long long>(data.size(0)), o->data.c_str(),
                   static_cast<long long>(o->train.steps), static_cast<long long>(o->train.batch));
    train_ddpm(config, data, o->train, o->out, log);
    std::printf("%s: trained to step %lld; weights (EMA): %s/ema.safetensors\n", o->out.c_str(),
                static_cast<long long>(o->train.steps), o->out.c_str());
  });
}

void add_train_vq_command(CLI::App& app) {
  struct Opts {
    std::string model = "shapes-ldm", data, out, eval_data = "shapes:2048:2";
    VqTrainOptions train;
    bool quiet = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("train-vq",
                                 "train the VQ first stage of a latent model (L1 + codebook/commitment, "
                                 "dmeval's construction; resumable)");
  cmd->add_option("--model", o->model, "LDM preset or config whose first_stage_config is trained")
      ->capture_default_str();
  cmd->add_option("--data", o->data, "shapes:N[:SEED] (procedural) or an .npz with arr_0 (N x H x W x 3)")
      ->required();
  cmd->add_option("--out", o->out, "checkpoint folder (resumed when it holds one); vq.safetensors in it")
      ->required();
  cmd->add_option("--eval-data", o->eval_data, "held-out images the final reconstruction figures use")
      ->capture_default_str();
  cmd->add_option("--steps", o->train.steps, "optimizer steps in all")->capture_default_str();
  cmd->add_option("--batch", o->train.batch, "images per step")->capture_default_str();
  cmd->add_option("--lr", o->train.lr, "AdamW learning rate")->capture_default_str();
  cmd->add_option("--warmup", o->train.warmup, "linear learning-rate warm-up steps")->capture_default_str();
  cmd->add_option("--decay-from", o->train.decay_from,
                  "decay the learning rate linearly to 0 from this step to --steps (default: constant)");
  cmd->add_option("--beta", o->train.beta, "commitment weight")->capture_default_str();
  cmd->add_option("--seed", o->train.seed, "initialisation and batch seed")->capture_default_str();
  cmd->add_option("--checkpoint-every", o->train.checkpoint_every, "steps between checkpoints")
      ->capture_default_str();
  cmd->add_option("--log-every", o->train.log_every, "steps between log lines")->capture_default_str();
  cmd->add_flag("--quiet", o->quiet, "no log lines");
  cmd->callback([o] {
    const LdmConfig config = resolve_ldm_config(o->model);
    const VqDecoderConfig& fc = config.first_stage;
    TrainingData data = load_training_data(o->data, fc.resolution);
    if (!o->quiet)
      std::fprintf(
          stderr,
          "VQ first stage of %s (ch %lld, %lld codes of %lld): %lld images (%s), %lld steps of %lld\n",
          config.name.c_str(), static_cast<long long>(fc.ch), static_cast<long long>(fc.n_embed),
          static_cast<long long>(fc.embed_dim), static_cast<long long>(data.images.size(0)), o->data.c_str(),
          static_cast<long long>(o->train.steps), static_cast<long long>(o->train.batch));
    VqFirstStage fs = train_vq(fc, data.images, o->train, o->out, [o](const TrainProgress& p) {
      if (!o->quiet)
        std::fprintf(stderr, "step %lld: loss %.4f (%.0f s)\n", static_cast<long long>(p.step), p.loss,
                     p.seconds);
    });
    const VqQuality train_q = vq_quality(fs, data.images.slice(0, 0, 2048));
    const VqQuality q = vq_quality(fs, load_training_data(o->eval_data, fc.resolution).images);
    std::printf(
        "%s/vq.safetensors: held-out (%s) L1 %.4f, PSNR %.2f dB, %lld of %lld codes used (perplexity %.1f); "
        "latent std %.4f on the first 2,048 training images (scale_factor = 1 / std = %.4f)\n",
        o->out.c_str(), o->eval_data.c_str(), q.l1, q.psnr, static_cast<long long>(q.codes_used),
        static_cast<long long>(fc.n_embed), q.perplexity, train_q.latent_std, 1.0 / train_q.latent_std);
  });
}

}  // namespace dmeval::cli
