#include "generators/ddpm_training.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>

#include "core/atomic_file.h"
#include "core/error.h"
#include "generators/noise_source.h"
#include "generators/philox.h"
#include "generators/quant/quant_method.h"
#include "generators/unet_weights.h"

namespace dmeval {

namespace fs = std::filesystem;

namespace {

// Word `w` of the Philox stream of (seed, step, tag).
uint32_t batch_word(uint64_t seed, int64_t step, uint32_t tag, uint32_t w) {
  const uint64_t s = static_cast<uint64_t>(step);
  PhiloxCounter c = {w / 4, static_cast<uint32_t>(s), static_cast<uint32_t>(s >> 32), tag};
  return philox4x32_10(c, {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)})[w % 4];
}

nlohmann::ordered_json options_json(const ModelConfig& config, const TrainOptions& o, int64_t n) {
  return {{"model", describe(config)},  {"data_images", n},   {"steps", o.steps},
          {"batch", o.batch},           {"lr", o.lr},         {"weight_decay", o.weight_decay},
          {"grad_clip", o.grad_clip},   {"warmup", o.warmup}, {"ema_rate", o.ema_rate},
          {"decay_from", o.decay_from}, {"seed", o.seed},     {"flip", o.flip}};
}

// A model description without its dropout, and that dropout (-1 when it names none): dropout is a
// training setting that may change when a run is resumed, the rest of the description may not.
std::pair<std::string, double> split_dropout(const std::string& model) {
  static const std::regex kDropout(", dropout ([^,]+)");
  std::smatch m;
  const double dropout = std::regex_search(model, m, kDropout) ? std::stod(m[1].str()) : -1.0;
  return {std::regex_replace(model, kDropout, ""), dropout};
}

void save_atomically(const std::function<void(const std::string&)>& write, const std::string& path) {
  const std::string tmp = path + ".tmp";
  write(tmp);
  fs::rename(tmp, path);
}

}  // namespace

TrainBatch training_batch(const torch::Tensor& data, const TrainOptions& o, int64_t T, int64_t step) {
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
  std::vector<torch::Tensor> e;
  const std::vector<int64_t> shape(data.sizes().begin() + 1, data.sizes().end());
  for (int64_t j = 0; j < n; ++j) e.push_back(per_image_noise(o.seed + 1, step, j, shape));
  b.e = torch::stack(e);
  return b;
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
  DMEVAL_CHECK(o.steps >= 1 && o.batch >= 1 && o.lr > 0 && o.ema_rate >= 0 && o.ema_rate < 1,
               "bad training options (steps {}, batch {}, lr {}, ema {})", o.steps, o.batch, o.lr,
               o.ema_rate);
  fs::create_directories(dir);
  const std::string model_file = dir + "/model.safetensors", ema_file = dir + "/ema.safetensors",
                    opt_file = dir + "/optimizer.pt", state_file = dir + "/train.json";
  const DiffusionSchedule sched = make_schedule(config.diffusion);
  const int64_t T = sched.num_timesteps;

  torch::manual_seed(o.seed);
  DdimUNet model(config.unet);
  DdimUNet ema = copy_unet(model);
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(o.lr).weight_decay(o.weight_decay));
  nlohmann::ordered_json state = {{"options", options_json(config, o, data.size(0))},
                                  {"step", 0},
                                  {"log", nlohmann::ordered_json::array()}};
  int64_t step = 0;
  if (fs::exists(state_file)) {
    std::ifstream in(state_file);
    nlohmann::ordered_json saved = nlohmann::ordered_json::parse(in, nullptr, false);
    DMEVAL_CHECK(!saved.is_discarded() && saved.contains("step"), "{}: not a dmeval training record",
                 state_file);
    nlohmann::ordered_json a = saved["options"], b = state["options"];
    // A run may be extended (steps), annealed (decay_from) and have its dropout changed (a training-only
    // setting of the model): each change is logged in "phases" with the step it took effect at.
    for (auto* j : {&a, &b}) {
      j->erase("steps"), j->erase("decay_from");
      (*j)["model"] = split_dropout(j->value("model", std::string())).first;
    }
    DMEVAL_CHECK(a == b, "{} was trained with other options: {} (now {}); use another folder", dir, a.dump(),
                 b.dump());
    UNetWeightsOptions wo;
    wo.hash = false;
    load_unet_weights(*model, model_file, wo);
    load_unet_weights(*ema, ema_file, wo);
    torch::load(opt, opt_file);
    step = saved["step"];
    state["log"] = saved["log"];
    state["step"] = step;
    if (saved.contains("phases")) {
      state["phases"] = saved["phases"];
    } else {  // a record from before phases were kept: its options held from step 0
      const nlohmann::ordered_json& so = saved["options"];
      state["phases"] = nlohmann::ordered_json::array(
          {{{"from_step", 0},
            {"steps", so.value("steps", int64_t{0})},
            {"decay_from", so.value("decay_from", int64_t{-1})},
            {"dropout", split_dropout(so.value("model", std::string())).second}}});
    }
  }
  {
    // The settings that may change on resume, from the step they apply to; a new phase when they did.
    nlohmann::ordered_json phase = {{"from_step", step},
                                    {"steps", o.steps},
                                    {"decay_from", o.decay_from},
                                    {"dropout", config.unet.dropout}};
    auto settings = [](nlohmann::ordered_json p) {
      p.erase("from_step");
      return p;
    };
    auto& phases = state["phases"];
    if (!phases.is_array()) phases = nlohmann::ordered_json::array();
    if (phases.empty() || settings(phases.back()) != settings(phase)) phases.push_back(phase);
  }
  model->train();
  ema->eval();
  auto params = model->parameters();
  auto ema_params = ema->parameters();
  double acc = 0;
  int64_t acc_n = 0;
  const auto t0 = std::chrono::steady_clock::now();
  auto checkpoint = [&] {
    save_atomically([&](const std::string& p) { save_unet_weights(*model, p); }, model_file);
    save_atomically(
        [&](const std::string& p) {
          save_unet_weights(*ema, p, {{"dmeval_train_step", std::to_string(step)}});
        },
        ema_file);
    save_atomically([&](const std::string& p) { torch::save(opt, p); }, opt_file);
    state["step"] = step;
    AtomicFile f(state_file);  // the commit point: written last
    const std::string text = state.dump(1) + "\n";
    f.write(text.data(), text.size());
    f.commit();
  };
  while (step < o.steps) {
    TrainBatch b = training_batch(data, o, T, step);
    torch::manual_seed(o.seed * 1000003 + static_cast<uint64_t>(step));  // dropout, per step
    torch::Tensor a = sched.alphas_cumprod_ext.index_select(0, b.t + 1).view({-1, 1, 1, 1});
    torch::Tensor x = b.x0 * a.sqrt() + b.e * (1.0 - a).sqrt();
    torch::Tensor out = model->forward(x, b.t.to(torch::kFloat32));
    torch::Tensor loss = (b.e - out).square().sum({1, 2, 3}).mean(0);
    const double lv = loss.item<double>();
    DMEVAL_CHECK(std::isfinite(lv), "training loss is {} at step {} (learning rate {}?)", lv, step, o.lr);
    double lr = o.lr * std::min(1.0, static_cast<double>(step + 1) / std::max<int64_t>(1, o.warmup));
    if (o.decay_from >= 0 && step >= o.decay_from)
      lr *= static_cast<double>(o.steps - step) /
            static_cast<double>(std::max<int64_t>(1, o.steps - o.decay_from));
    for (auto& g : opt.param_groups()) g.options().set_lr(lr);
    opt.zero_grad();
    loss.backward();
    if (o.grad_clip > 0) torch::nn::utils::clip_grad_norm_(params, o.grad_clip);
    opt.step();
    {
      torch::NoGradGuard no_grad;  // ddim's EMAHelper: ema = (1 - mu) * p + mu * ema
      for (size_t i = 0; i < params.size(); ++i)
        ema_params[i].copy_((1.0 - o.ema_rate) * params[i] + o.ema_rate * ema_params[i]);
    }
    ++step;
    acc += lv, ++acc_n;
    if (step % o.log_every == 0 || step == o.steps) {
      TrainProgress p{step, acc / acc_n,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()};
      state["log"].push_back({{"step", step}, {"loss", p.loss}});
      if (on_log) on_log(p);
      acc = 0, acc_n = 0;
    }
    if (step % o.checkpoint_every == 0 || step == o.steps) checkpoint();
  }
  ema->eval();
  return ema;
}

}  // namespace dmeval
