#include "generators/ddpm_training.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>

#include "core/atomic_file.h"
#include "core/error.h"
#include "generators/ddim/ddim_model.h"
#include "generators/ddim/unet_weights.h"
#include "generators/noise_source.h"
#include "generators/philox.h"

namespace dmeval {

namespace fs = std::filesystem;

namespace {

// Word `w` of the Philox stream of (seed, step, tag).
uint32_t batch_word(uint64_t seed, int64_t step, uint32_t tag, uint32_t w) {
  const uint64_t s = static_cast<uint64_t>(step);
  PhiloxCounter c = {w / 4, static_cast<uint32_t>(s), static_cast<uint32_t>(s >> 32), tag};
  return philox4x32_10(c, {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)})[w % 4];
}

nlohmann::ordered_json options_json(const std::string& model, const TrainOptions& o, int64_t n) {
  return {{"model", model},
          {"data_images", n},
          {"steps", o.steps},
          {"batch", o.batch},
          {"lr", o.lr},
          {"weight_decay", o.weight_decay},
          {"grad_clip", o.grad_clip},
          {"warmup", o.warmup},
          {"ema_rate", o.ema_rate},
          {"decay_from", o.decay_from},
          {"seed", o.seed},
          {"flip", o.flip}};
}

// A model description without its dropout, and that dropout (-1 when it names none): dropout is a
// training setting that may change when a run is resumed, the rest of the description may not.
std::pair<std::string, double> split_dropout(const std::string& model) {
  static const std::regex kDropout(", dropout ([^,]+)");
  std::smatch m;
  const double dropout = std::regex_search(model, m, kDropout) ? std::stod(m[1].str()) : -1.0;
  return {std::regex_replace(model, kDropout, ""), dropout};
}

// The noise of step `step`'s n images, each of `shape` (the image's, or a latent model's latent's).
torch::Tensor batch_noise(const TrainOptions& o, int64_t step, int64_t n, const std::vector<int64_t>& shape) {
  std::vector<torch::Tensor> e;
  for (int64_t j = 0; j < n; ++j) e.push_back(per_image_noise(o.seed + 1, step, j, shape));
  return torch::stack(e);
}

}  // namespace

TrainBatch training_batch(const torch::Tensor& data, const TrainOptions& o, int64_t T, int64_t step,
                          const torch::Tensor& labels, int64_t unconditional) {
  const int64_t n = o.batch, N = data.size(0);
  std::vector<int64_t> idx(n), flip(n), t(n);
  for (int64_t j = 0; j < n; ++j) {
    idx[j] = static_cast<int64_t>(batch_word(o.seed, step, 1, static_cast<uint32_t>(j)) %
                                  static_cast<uint64_t>(N));
    flip[j] = o.flip && (batch_word(o.seed, step, 2, static_cast<uint32_t>(j)) & 1u);
  }
  // ddim's antithetic sampling: n/2 + 1 draws t, then T - t - 1, cut to n
  const int64_t half = n / 2 + 1;
  for (int64_t j = 0; j < half && j < n; ++j)
    t[j] = static_cast<int64_t>(batch_word(o.seed, step, 3, static_cast<uint32_t>(j)) %
                                static_cast<uint64_t>(T));
  for (int64_t j = half; j < n; ++j) t[j] = T - t[j - half] - 1;
  TrainBatch b;
  torch::Tensor x = data.index_select(0, torch::tensor(idx, torch::kLong)).to(torch::kFloat32) / 255.0;
  for (int64_t j = 0; j < n; ++j)
    if (flip[j]) x[j] = x[j].flip({2});
  b.x0 = 2.0 * x - 1.0;
  b.t = torch::tensor(t, torch::kLong);
  b.e = batch_noise(o, step, n, std::vector<int64_t>(data.sizes().begin() + 1, data.sizes().end()));
  if (labels.defined()) {
    // Label dropout: word 4 of the stream, uniform in [0, 1) as (word + 0.5) / 2^32.
    std::vector<int64_t> y(n);
    torch::Tensor l = labels.to(torch::kLong).contiguous();
    for (int64_t j = 0; j < n; ++j) {
      const double u = (batch_word(o.seed, step, 4, static_cast<uint32_t>(j)) + 0.5) / 4294967296.0;
      y[j] = u < o.label_dropout ? unconditional : l[idx[j]].item<int64_t>();
    }
    b.y = torch::tensor(y, torch::kLong);
  }
  return b;
}

namespace {

// The DDPM task on any family's DiffusionModel: the model and its EMA copy in the family's weights
// format (model.safetensors, ema.safetensors), the ε-prediction loss of step s's batch.
class DdpmTask : public TrainingTask {
 public:
  DdpmTask(std::shared_ptr<DiffusionModel> model, const torch::Tensor& data, const TrainOptions& o,
           const torch::Tensor& labels)
      : model_(std::move(model)), data_(data), labels_(labels), o_(o), sched_(model_->schedule()) {
    ema_ = model_->clone();
  }
  torch::nn::Module& model() override { return model_->network(); }
  torch::nn::Module* ema() override { return &ema_->network(); }
  std::shared_ptr<DiffusionModel> ema_model() { return ema_; }
  torch::Tensor loss(int64_t step) override {
    TrainBatch b = training_batch(data_, o_, sched_.num_timesteps, step, labels_, model_->num_classes());
    torch::Tensor x0;
    {
      torch::NoGradGuard no_grad;  // the first stage is not trained here
      x0 = model_->encode(b.x0);
    }
    if (x0.sizes() != b.e.sizes())  // a latent model: the noise has the latent's shape
      b.e = batch_noise(o_, step, x0.size(0), std::vector<int64_t>(x0.sizes().begin() + 1, x0.sizes().end()));
    torch::Tensor a = sched_.alphas_cumprod_ext.index_select(0, b.t + 1).view({-1, 1, 1, 1});
    torch::Tensor x = x0 * a.sqrt() + b.e * (1.0 - a).sqrt();
    Conditioning c;
    if (b.y.defined()) c.class_labels = b.y;
    torch::Tensor out = model_->forward(x, b.t.to(torch::kFloat32), c);
    return (b.e - out).square().sum({1, 2, 3}).mean(0);
  }
  void save(const std::string& dir, int64_t step) override {
    save_atomically([&](const std::string& p) { model_->save_weights(p); }, dir + "/model.safetensors");
    save_atomically(
        [&](const std::string& p) {
          ema_->save_weights(p, {{"dmeval_train_step", std::to_string(step)}});
        },
        dir + "/ema.safetensors");
  }
  void load(const std::string& dir) override {
    model_->load_weights(dir + "/model.safetensors");
    ema_->load_weights(dir + "/ema.safetensors");
  }
  nlohmann::ordered_json options() const override {
    nlohmann::ordered_json j = options_json(model_->describe_line(), o_, data_.size(0));
    if (labels_.defined()) {
      j["class_conditional"] = true;
      j["label_dropout"] = o_.label_dropout;
      j["first_stage"] = model_->identity().value("first_stage_weights", std::string());
    }
    return j;
  }
  // A run may be extended (steps), annealed (decay_from) and have its dropout changed (a training-only
  // setting of the model): each change is logged in "phases" with the step it took effect at.
  bool same_run(const nlohmann::ordered_json& saved, const nlohmann::ordered_json& now) const override {
    nlohmann::ordered_json a = saved, b = now;
    for (auto* j : {&a, &b}) {
      j->erase("steps"), j->erase("decay_from");
      (*j)["model"] = split_dropout(j->value("model", std::string())).first;
    }
    return a == b;
  }
  nlohmann::ordered_json phase() const override {
    return {{"dropout", split_dropout(model_->describe_line()).second}};
  }
  nlohmann::ordered_json legacy_phase(const nlohmann::ordered_json& so) const override {
    return {{"dropout", split_dropout(so.value("model", std::string())).second}};
  }

 private:
  std::shared_ptr<DiffusionModel> model_, ema_;
  torch::Tensor data_, labels_;
  TrainOptions o_;
  DiffusionSchedule sched_;
};

}  // namespace

std::shared_ptr<DiffusionModel> train_ddpm(std::shared_ptr<DiffusionModel> model, const torch::Tensor& data,
                                           const TrainOptions& o, const std::string& dir,
                                           const std::function<void(const TrainProgress&)>& on_log,
                                           const torch::Tensor& labels) {
  DMEVAL_CHECK(data.dim() == 4 && data.scalar_type() == torch::kUInt8 && data.size(0) > 0,
               "training data must be (N, C, H, W) uint8");
  // (A class-conditional model trained without labels is refused by its own forward, naming what it
  // needs.)
  DMEVAL_CHECK(!labels.defined() || model->num_classes() > 0,
               "model {} is unconditional: it trains without labels", model->name());
  if (labels.defined())
    DMEVAL_CHECK(labels.dim() == 1 && labels.size(0) == data.size(0) && labels.min().item<int64_t>() >= 0 &&
                     labels.max().item<int64_t>() < model->num_classes() && o.label_dropout >= 0 &&
                     o.label_dropout <= 1,
                 "training labels must be one per image in 0..{} and the label dropout in [0, 1]",
                 model->num_classes() - 1);
  DMEVAL_CHECK(o.steps >= 1 && o.batch >= 1 && o.lr > 0 && o.ema_rate >= 0 && o.ema_rate < 1,
               "bad training options (steps {}, batch {}, lr {}, ema {})", o.steps, o.batch, o.lr,
               o.ema_rate);
  DdpmTask task(std::move(model), data, o, labels);
  TrainLoopOptions lo;
  lo.steps = o.steps;
  lo.lr = o.lr;
  lo.weight_decay = o.weight_decay;
  lo.grad_clip = o.grad_clip;
  lo.warmup = o.warmup;
  lo.decay_from = o.decay_from;
  lo.ema_rate = o.ema_rate;
  lo.seed = o.seed;
  lo.checkpoint_every = o.checkpoint_every;
  lo.log_every = o.log_every;
  run_training(task, lo, dir, on_log);
  return task.ema_model();
}

DdimUNet train_ddpm(const ModelConfig& config, const torch::Tensor& data, const TrainOptions& o,
                    const std::string& dir, const std::function<void(const TrainProgress&)>& on_log) {
  DMEVAL_CHECK(data.dim() == 4 && data.scalar_type() == torch::kUInt8 && data.size(0) > 0,
               "training data must be (N, C, H, W) uint8");
  DMEVAL_CHECK(data.size(1) == config.unet.in_channels && data.size(2) == config.unet.resolution &&
                   data.size(3) == config.unet.resolution,
               "training images of shape [{}, {}, {}] do not fit the model ({} channels, {}x{})",
               data.size(1), data.size(2), data.size(3), config.unet.in_channels, config.unet.resolution,
               config.unet.resolution);
  torch::manual_seed(o.seed);
  auto model = std::make_shared<DdimModel>(config, DdimUNet(config.unet), UNetWeightsInfo{},
                                           static_cast<int64_t>(o.seed));
  auto ema = train_ddpm(model, data, o, dir, on_log);
  return ddim_model_of(*ema, "train_ddpm").unet();
}

}  // namespace dmeval
