// `qdiffusion`: Q-Diffusion (Li et al., ICCV 2023) as Xiuyu-Li/q-diffusion's DDIM script runs it
// (spec generators.md §6.1): every Conv2d/Linear quantized (input and weight), split shortcut,
// attention matmul inputs and softmax quantized; calibration data = 20 uniformly spaced steps x 256
// images of 100-step quad DDIM FP trajectories; weights: channel-wise max init, then BRECQ
// reconstruction with AdaRound (20k iterations per layer/block, batch 32, regulariser 0.01,
// β 20 -> 2, warm-up 0.2, inputs from the quantized network); activations: per-tensor symmetric max
// init on 64 calibration samples, then step-size learning (5k iterations, lr 4e-4, cosine, p = 2.4).
// Every count is a setting (the defaults are the paper's; CPU runs shrink them).
#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <torch/torch.h>

#include "core/error.h"
#include "generators/quant/method_support.h"
#include "generators/quant/reconstruction.h"

namespace dmeval {

namespace {
class QDiffusionMethod : public QuantMethod {
 public:
  std::string name() const override { return "qdiffusion"; }
  std::string description() const override {
    return "Q-Diffusion: timestep-aware calibration, BRECQ/AdaRound weight reconstruction, split shortcut, "
           "activation step learning";
  }
  void check_bits(const BitWidths& b) const override {
    DMEVAL_CHECK(
        b.weight >= 2 && b.weight <= 8 && ((b.act >= 4 && b.act <= 16) || b.act == 32),
        "method qdiffusion supports weights of 2..8 bits and activations of 4..16 bits or 32 (float); "
        "--bits {} is not supported",
        b.str());
  }
  nlohmann::ordered_json default_settings() const override {
    nlohmann::ordered_json s;
    add_trajectory_settings(s, 256, 100, "quad", 0.0, 1234);
    s["cali_n"] = 256;
    s["cali_st"] = 20;
    s["first_last"] = "same";  // per-layer override of conv_in / conv_out: same, 8 or fp
    s["weight_scale_method"] = "max";
    s["weight_init_batch"] = 8;
    s["iters_w"] = 20000;
    s["batch_size"] = 32;
    s["round_weight"] = 0.01;
    s["b_start"] = 20.0;
    s["b_end"] = 2.0;
    s["warmup"] = 0.2;
    s["act_symmetric"] = true;  // --a_sym in the CIFAR-10 and LSUN bedroom commands
    s["act_init_batch"] = 64;
    s["running_stat"] = false;
    s["iters_a"] = 5000;
    s["lr_a"] = 4e-4;
    s["p_a"] = 2.4;
    s["sm_abit"] = 8;
    s["split"] = true;
    s["cache_memory_mb"] = 1024;
    return s;
  }

  static QuantPlan plan(const QuantContext& ctx) {
    const auto& s = ctx.settings;
    UniformQuantizerSpec w;
    w.flavor = QuantFlavor::kQDiffusion;
    w.bits = ctx.bits.weight;
    w.channel_wise = true;
    w.scale_method = s.at("weight_scale_method").get<std::string>();
    std::optional<UniformQuantizerSpec> a;
    if (ctx.bits.act_quantized()) {
      UniformQuantizerSpec q;
      q.flavor = QuantFlavor::kQDiffusion;
      q.bits = ctx.bits.act;
      q.symmetric = s.at("act_symmetric").get<bool>();
      q.scale_method = "max";
      q.leaf_param = true;
      a = q;
    }
    QuantPlan p =
        qdiffusion_plan(ctx.model->network(), w, a, s.at("sm_abit").get<int>(), s.at("split").get<bool>());
    apply_first_last(p, ctx.model->network(), s.at("first_last").get<std::string>());
    return p;
  }

  std::unique_ptr<QuantizedModel> calibrate(QuantContext& ctx) const override {
    check_bits(ctx.bits);
    const auto& s = ctx.settings;
    std::shared_ptr<DiffusionModel> fp = ctx.model->clone();
    Trajectories tr = trajectories_from_settings(ctx, *fp);
    CalibSet calib = qdiffusion_calibration(tr, s.at("cali_n"), s.at("cali_st"));
    const auto dev = ctx.run.device;
    calib.x = calib.x.to(dev);
    calib.t = calib.t.to(dev);
    auto model = std::make_unique<UNetQuantizedModel>(ctx.model, plan(ctx), ctx.run);
    QuantizedUNet& q = model->qunet();
    auto& report = model->mutable_report();
    report["calibration_samples"] = calib.size();
    at::Generator g = at::make_generator<at::CPUGeneratorImpl>(s.at("seed").get<uint64_t>());
    {  // 1. weight quantizers from the first samples (creates the split quantizers too)
      torch::NoGradGuard no_grad;
      q.set_quant_state(true, false);
      const CalibSet first = calib.slice(0, s.at("weight_init_batch").get<int64_t>());
      q.forward(first.x, first.t, first.cond());
    }
    ReconOptions ro;
    ro.batch_size = s.at("batch_size");
    ro.round_weight = s.at("round_weight");
    ro.b_start = s.at("b_start");
    ro.b_end = s.at("b_end");
    ro.warmup = s.at("warmup");
    ro.seed = s.at("seed");
    ro.cache_memory_limit = s.at("cache_memory_mb").get<int64_t>() << 20;
    // 2. weight reconstruction, unit by unit
    ro.iters = s.at("iters_w");
    ro.act_quant = false;
    ro.asym = true;
    ro.p = 2.0;
    nlohmann::ordered_json wrec = nlohmann::ordered_json::array();
    auto units = reconstruction_units(q);
    if (ro.iters > 0) {
      for (ReconUnit& u : units) {
        ReconReport r = reconstruct(q, u, calib, ro);
        wrec.push_back(recon_record(r, "nearest", "adaround"));
        ctx.log(fmt::format("weights {}: output error {:.4g} (nearest) -> {:.4g} (AdaRound) in {:.1f} s",
                            r.unit, r.loss_before, r.loss_after, r.seconds));
      }
    } else {
      q.convert_adaround();  // hard rounding = nearest: the structure of a calibrated model
    }
    report["weight_reconstruction"] = wrec;
    if (ctx.bits.act_quantized()) {
      torch::NoGradGuard no_grad;
      // 3. activation quantizers from 64 random calibration samples, in network order
      q.set_quant_state(true, true);
      torch::Tensor idx = torch::randperm(calib.size(), g, torch::kLong)
                              .slice(0, 0, s.at("act_init_batch").get<int64_t>())
                              .to(dev);
      CalibSet b = calib.index(idx);
      q.forward(b.x, b.t, b.cond());
      if (s.at("running_stat").get<bool>()) {
        torch::Tensor order = torch::randperm(calib.size(), g, torch::kLong).to(dev);
        q.set_running_stat(true);
        const int64_t n = s.at("act_init_batch").get<int64_t>();
        for (int64_t i = 0; i + n <= calib.size(); i += n) {
          CalibSet bb = calib.index(order.slice(0, i, i + n));
          q.forward(bb.x, bb.t, bb.cond());
        }
        q.set_running_stat(false);
      }
    }
    if (ctx.bits.act_quantized() && s.at("iters_a").get<int64_t>() > 0) {
      // 4. activation step learning, unit by unit, FP inputs
      ro.iters = s.at("iters_a");
      ro.act_quant = true;
      ro.asym = false;
      ro.p = s.at("p_a");
      ro.lr_act = s.at("lr_a");
      nlohmann::ordered_json arec = nlohmann::ordered_json::array();
      for (ReconUnit& u : units) {
        ReconReport r = reconstruct(q, u, calib, ro);
        arec.push_back(recon_record(r, "initial", "learned"));
        ctx.log(
            fmt::format("activations {}: output error {:.4g} (initial steps) -> {:.4g} (learned) in {:.1f} s",
                        r.unit, r.loss_before, r.loss_after, r.seconds));
      }
      report["activation_reconstruction"] = arec;
    }
    q.set_quant_state(true, ctx.bits.act_quantized());
    for (auto& p : ctx.model->network().parameters()) p.set_requires_grad(false);
    return model;
  }

  std::unique_ptr<QuantizedModel> restore(QuantContext& ctx,
                                          const std::map<std::string, torch::Tensor>& state) const override {
    check_bits(ctx.bits);
    auto model = std::make_unique<UNetQuantizedModel>(ctx.model, plan(ctx), ctx.run);
    model->restore(state, "q-diffusion calibration");
    model->qunet().set_quant_state(true, ctx.bits.act_quantized());
    return model;
  }
};
}  // namespace

std::unique_ptr<QuantMethod> make_qdiffusion_method() {
  return std::make_unique<QDiffusionMethod>();
}

}  // namespace dmeval
