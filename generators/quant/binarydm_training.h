// BinaryDM's binarization-aware training (spec binarydm.md §4-§6) on the shared training loop: a
// student — a copy of the float model whose Conv/Linear layers are BNN layers (binarized_layer.h) placed
// by the family's plan (binarydm_plan.h) — switched on group by group at the first training batches,
// trained on ε-MSE + 1e-4 · low-rank representation mimicking (lrm.h) against the frozen float teacher,
// with AdamW and LDM's EMA rule. The same task trains the baselines of the tables: order 1 everywhere
// without LRM (baseline-1bit) and the LSQ weight quantizer (LSQ-2bit).
//
// Determinism: the batch of step s (images, timesteps, noise) comes from the caller as a function of s
// (Philox words of (seed, s) in dmeval's runs), the projections K are drawn once at step 0 from the
// framework's generator seeded with `pca_seed` (as the golden driver seeds it) and saved with every
// checkpoint, and the switch-on state follows from the step, so a resumed training ends bit-identical to
// an uninterrupted one (on the same threads). The reference recomputes K after a resume: dmeval keeps it.
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "generators/diffusion_model.h"
#include "generators/quant/binarized_layer.h"
#include "generators/quant/binarydm_plan.h"
#include "generators/quant/lrm.h"
#include "generators/training_loop.h"

namespace dmeval {

struct BnnLayerSettings {
  std::vector<int> order2_groups = {0, 1};  // BinaryDM; the baseline: none
  int lsq_bits = 0;                         // > 0: LSQ weights instead of binarization
  int act_bits = 8;                         // 32: no activation quantization (W1A32)
  int attention_bits = 8;                   // the attention matmul inputs' _ActQ; 32: never switched on
  bool progressive = true;                  // group-by-group switch-on (false: everything from step 0)
};

// The float model with BNN layers attached (module registration adds the reference's parameter names).
class BnnStudent {
 public:
  // `fp` is cloned; the initial scales are drawn from `seed` (rand·0.001, overwritten on the first call).
  BnnStudent(const DiffusionModel& fp, const BnnLayerSettings& settings, uint64_t seed);
  // The switch-on state of training batch `step` (progressive schedule), or the final state (every group
  // on, attention quantizers on) for evaluation.
  void set_step(int64_t step);
  void set_final();
  // After restoring parameters: the layers binary before `step` have their scales (no re-initialisation).
  void mark_inited_before(int64_t step);
  // Every layer binary with scales initialised on the next call (eps_allbin_init of the golden data).
  std::shared_ptr<DiffusionModel> model;
  BnnPlan plan;
  BnnLayerSettings settings;
  std::vector<std::shared_ptr<BnnLayer>> layers;  // plan order
  std::vector<std::shared_ptr<BnnAttentionQuantizer>> attention;
  // The network's parameters by name (the reference's state-dict names), and restoring them strictly.
  std::vector<std::pair<std::string, torch::Tensor>> state() const;
  void load_state(const std::map<std::string, torch::Tensor>& state, const std::string& source);
  // Bits per weight of a layer for the size accounting (1, 2 for order 2, LSQ bits, 32 for float).
  double weight_bits(const std::string& layer) const;
};

struct BnnTrainOptions {
  int64_t steps = 1000;
  double lr = 8e-5;            // LDM: base 2e-5 × batch 4 (scale_lr)
  double weight_decay = 0.01;  // AdamW's default, as the reference leaves it
  double ema_max = 0.9999;     // LitEma
  bool lrm = true;
  double lrm_weight = 1e-4;  // hard-coded in the reference
  uint64_t seed = 0;         // the loop's per-step reseeding
  uint64_t pca_seed = 0;     // the generator seed of the projections' Gaussian draws
  int64_t checkpoint_every = 100;
  int64_t log_every = 10;
  nlohmann::ordered_json record;  // settings recorded in train.json (the run's identity)
};

// One training batch in the network's space: x0 (latents for latent models), t (B,) int64, noise like
// x0, and its conditioning (class labels), all for step `step`.
struct BnnBatch {
  torch::Tensor x0, t, noise;
  Conditioning c;
};
using BnnBatchFn = std::function<BnnBatch(int64_t step)>;

// Per-step figures (for logs, tests and the training curve).
struct BnnStepLog {
  int64_t step = 0;
  double loss = 0, loss_simple = 0, loss_lrm = 0;  // loss_lrm already × lrm_weight
  int64_t binary_layers = 0;
  bool attention_on = false;
};

// Trains `student` (its EMA copy alongside) from the frozen `teacher` in `dir` (resumed when a
// checkpoint is there). `on_step` sees every step after the optimizer and EMA updates.
void train_binarydm(BnnStudent& student, BnnStudent& ema, DiffusionModel& teacher, const BnnBatchFn& batches,
                    const BnnTrainOptions& options, const std::string& dir,
                    const std::function<void(const BnnStepLog&)>& on_step = {});

// x_t = √ᾱ_t x0 + √(1−ᾱ_t) ε with LDM's float64-computed, float32-stored coefficients.
torch::Tensor bnn_q_sample(const DiffusionSchedule& s, const torch::Tensor& x0, const torch::Tensor& t,
                           const torch::Tensor& noise);

}  // namespace dmeval
