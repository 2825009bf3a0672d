// One resumable, deterministic training loop — AdamW with linear warm-up and optional linear decay,
// gradient clipping, an EMA copy, checkpoints in a folder and exact resume — shared by DDPM training
// (ddpm_training) and, next, quantization-aware training (QuantMethod::fit). The task supplies the
// model and the loss of each step; the batch of step s must depend only on (seed, s) (Philox words),
// and the loop reseeds the framework's generator per step (dropout), so a run resumed from the
// checkpoint of step s continues exactly as an uninterrupted one (on the same threads).
//
// The folder: the task's model files, `optimizer.pt` and `train.json` (options, step, loss log, the
// phases of settings that changed on resume), written last as the commit point.
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <functional>
#include <string>

namespace dmeval {

struct TrainLoopOptions {
  int64_t steps = 20000;
  double lr = 2e-4;
  double weight_decay = 0.0;
  double grad_clip = 1.0;  // 0: none
  int64_t warmup = 500;    // linear learning-rate warm-up steps
  // Linear learning-rate decay to 0 from this step to `steps` (-1: constant after the warm-up).
  int64_t decay_from = -1;
  double ema_rate = 0.999;  // ema = (1 - rate) * p + rate * ema after each step (when the task has one)
  // LDM's LitEma instead: decay min(ema_rate, (1 + n) / (10 + n)) at the n-th update (1-based),
  // shadow -= (1 - decay) * (shadow - p).
  bool ema_warmup = false;
  uint64_t seed = 0;
  int64_t checkpoint_every = 1000;
  int64_t log_every = 100;
};

struct TrainProgress {
  int64_t step = 0;
  double loss = 0;  // mean over the last log interval
  double seconds = 0;
};

class TrainingTask {
 public:
  virtual ~TrainingTask() = default;
  // The parameters trained, and an EMA copy with the same parameter order (nullptr: none).
  virtual torch::nn::Module& model() = 0;
  virtual torch::nn::Module* ema() { return nullptr; }
  // The loss of step `step` (a scalar with a graph to the model's parameters).
  virtual torch::Tensor loss(int64_t step) = 0;
  // Writes (atomically) / reads the model and EMA files of a checkpoint in `dir`.
  virtual void save(const std::string& dir, int64_t step) = 0;
  virtual void load(const std::string& dir) = 0;
  // The run's options as recorded in train.json.
  virtual nlohmann::ordered_json options() const = 0;
  // Whether a folder recorded with `saved` options may be resumed with `now` (the loop's steps and
  // decay_from may always change; a task may allow more, e.g. dropout).
  virtual bool same_run(const nlohmann::ordered_json& saved, const nlohmann::ordered_json& now) const {
    return saved == now;
  }
  // Task settings that may change on resume, logged in the phases next to steps and decay_from;
  // legacy_phase: the same read from the options of a record written before phases were kept.
  virtual nlohmann::ordered_json phase() const { return nlohmann::ordered_json::object(); }
  virtual nlohmann::ordered_json legacy_phase(const nlohmann::ordered_json& /*saved_options*/) const {
    return nlohmann::ordered_json::object();
  }
};

// Trains from the checkpoint in `dir` if there is one (its options must be the same run), else from
// the task's initial model, to o.steps, checkpointing every o.checkpoint_every steps and at the end.
// `on_log` receives every log line's figures. Returns the step reached.
// `after_step` sees every step's number (1-based count of steps done) after the optimizer and EMA updates.
int64_t run_training(TrainingTask& task, const TrainLoopOptions& o, const std::string& dir,
                     const std::function<void(const TrainProgress&)>& on_log = {},
                     const std::function<void(int64_t)>& after_step = {});

// Writes a file through `write(tmp)` then renames it into place.
void save_atomically(const std::function<void(const std::string&)>& write, const std::string& path);

}  // namespace dmeval
