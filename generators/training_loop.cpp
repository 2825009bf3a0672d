#include "generators/training_loop.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"
#include "core/error.h"

namespace dmeval {

namespace fs = std::filesystem;

void save_atomically(const std::function<void(const std::string&)>& write, const std::string& path) {
  const std::string tmp = path + ".tmp";
  write(tmp);
  fs::rename(tmp, path);
}

int64_t run_training(TrainingTask& task, const TrainLoopOptions& o, const std::string& dir,
                     const std::function<void(const TrainProgress&)>& on_log,
                     const std::function<void(int64_t)>& after_step) {
  DMEVAL_CHECK(o.steps >= 1 && o.lr > 0 && o.ema_rate >= 0 && o.ema_rate < 1 && o.checkpoint_every >= 1 &&
                   o.log_every >= 1,
               "bad training options (steps {}, lr {}, ema {}, checkpoint every {}, log every {})", o.steps,
               o.lr, o.ema_rate, o.checkpoint_every, o.log_every);
  fs::create_directories(dir);
  const std::string opt_file = dir + "/optimizer.pt", state_file = dir + "/train.json";
  torch::nn::Module& model = task.model();
  torch::nn::Module* ema = task.ema();
  torch::optim::AdamW opt(model.parameters(), torch::optim::AdamWOptions(o.lr).weight_decay(o.weight_decay));
  nlohmann::ordered_json state = {
      {"options", task.options()}, {"step", 0}, {"log", nlohmann::ordered_json::array()}};
  int64_t step = 0;
  if (fs::exists(state_file)) {
    std::ifstream in(state_file);
    nlohmann::ordered_json saved = nlohmann::ordered_json::parse(in, nullptr, false);
    DMEVAL_CHECK(!saved.is_discarded() && saved.contains("step") && saved.contains("options"),
                 "{}: not a dmeval training record", state_file);
    DMEVAL_CHECK(task.same_run(saved["options"], state["options"]),
                 "{} was trained with other options: {} (now {}); use another folder", dir,
                 saved["options"].dump(), state["options"].dump());
    task.load(dir);
    torch::load(opt, opt_file);
    step = saved["step"];
    state["log"] = saved["log"];
    state["step"] = step;
    if (saved.contains("phases")) {
      state["phases"] = saved["phases"];
    } else {  // a record from before phases were kept: its options held from step 0
      const nlohmann::ordered_json& so = saved["options"];
      nlohmann::ordered_json first = {{"from_step", 0},
                                      {"steps", so.value("steps", int64_t{0})},
                                      {"decay_from", so.value("decay_from", int64_t{-1})}};
      const nlohmann::ordered_json extra = task.legacy_phase(so);
      for (const auto& [k, v] : extra.items()) first[k] = v;
      state["phases"] = nlohmann::ordered_json::array({first});
    }
  }
  {
    // The settings that may change on resume, from the step they apply to; a new phase when they did.
    nlohmann::ordered_json phase = {{"from_step", step}, {"steps", o.steps}, {"decay_from", o.decay_from}};
    const nlohmann::ordered_json extra = task.phase();
    for (const auto& [k, v] : extra.items()) phase[k] = v;
    auto settings = [](nlohmann::ordered_json p) {
      p.erase("from_step");
      return p;
    };
    auto& phases = state["phases"];
    if (!phases.is_array()) phases = nlohmann::ordered_json::array();
    if (phases.empty() || settings(phases.back()) != settings(phase)) phases.push_back(phase);
  }
  model.train();
  if (ema) ema->eval();
  auto params = model.parameters();
  std::vector<torch::Tensor> ema_params;
  if (ema) {
    ema_params = ema->parameters();
    DMEVAL_CHECK(ema_params.size() == params.size(), "the EMA copy has {} parameters, the model {}",
                 ema_params.size(), params.size());
  }
  double acc = 0;
  int64_t acc_n = 0;
  const auto t0 = std::chrono::steady_clock::now();
  auto checkpoint = [&] {
    task.save(dir, step);
    save_atomically([&](const std::string& p) { torch::save(opt, p); }, opt_file);
    state["step"] = step;
    AtomicFile f(state_file);  // the commit point: written last
    const std::string text = state.dump(1) + "\n";
    f.write(text.data(), text.size());
    f.commit();
  };
  while (step < o.steps) {
    torch::manual_seed(o.seed * 1000003 + static_cast<uint64_t>(step));  // dropout, per step
    torch::Tensor loss = task.loss(step);
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
    if (ema) {
      torch::NoGradGuard no_grad;
      if (o.ema_warmup) {  // LitEma: one update per step, so the update count is step + 1
        const double n = static_cast<double>(step + 1);
        const double one_minus = 1.0 - std::min(o.ema_rate, (1.0 + n) / (10.0 + n));
        for (size_t i = 0; i < params.size(); ++i)
          ema_params[i].sub_(one_minus * (ema_params[i] - params[i]));
      } else {  // ddim's EMAHelper: ema = (1 - mu) * p + mu * ema
        for (size_t i = 0; i < params.size(); ++i)
          ema_params[i].copy_((1.0 - o.ema_rate) * params[i] + o.ema_rate * ema_params[i]);
      }
    }
    ++step;
    if (after_step) after_step(step);
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
  if (ema) ema->eval();
  return step;
}

}  // namespace dmeval
