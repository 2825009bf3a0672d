// `baseline`: the papers' naive baseline ("Linear Quant" in Q-Diffusion's tables): per-output-channel
// min-max weights, per-tensor min-max activations on every Conv2d/Linear input, round to nearest, no
// reconstruction; attention matrix products in float. The activation ranges are those of one
// calibration batch drawn from q-diffusion's calibration set.
#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <torch/torch.h>

#include "core/error.h"
#include "generators/quant/method_support.h"

namespace dmeval {

namespace {
class BaselineMethod : public QuantMethod {
 public:
  std::string name() const override { return "baseline"; }
  std::string description() const override {
    return "naive PTQ baseline: per-channel min-max weights, per-tensor min-max activations, nearest "
           "rounding";
  }
  void check_bits(const BitWidths& b) const override {
    auto ok = [](int v) { return (v >= 2 && v <= 16) || v == 32; };
    DMEVAL_CHECK(
        ok(b.weight) && ok(b.act) && b.weight_quantized(),
        "method baseline quantizes weights to 2..16 bits and activations to 2..16 bits or 32 (float); "
        "--bits {} is not supported",
        b.str());
  }
  nlohmann::ordered_json default_settings() const override {
    nlohmann::ordered_json s;
    add_trajectory_settings(s, 64, 100, "quad", 0.0, 1234);
    s["cali_n"] = 64;
    s["cali_st"] = 20;
    s["first_last"] = "same";  // per-layer override of conv_in / conv_out: same, 8 or fp
    s["act_init_batch"] = 64;
    return s;
  }

  static QuantPlan plan(const QuantContext& ctx) {
    UniformQuantizerSpec w;
    w.flavor = QuantFlavor::kQDiffusion;
    w.bits = ctx.bits.weight;
    w.channel_wise = true;
    w.scale_method = "max";
    std::optional<UniformQuantizerSpec> a;
    if (ctx.bits.act_quantized()) {
      UniformQuantizerSpec s;
      s.flavor = QuantFlavor::kQDiffusion;
      s.bits = ctx.bits.act;
      s.scale_method = "max";
      a = s;
    }
    QuantPlan p = qdiffusion_plan(ctx.model->network(), w, a, 8, /*split_shortcut=*/false);
    p.attention.reset();  // matrix products stay float
    apply_first_last(p, ctx.model->network(), ctx.settings.at("first_last").get<std::string>());
    return p;
  }

  std::unique_ptr<QuantizedModel> calibrate(QuantContext& ctx) const override {
    check_bits(ctx.bits);
    std::shared_ptr<DiffusionModel> fp = ctx.model->clone();
    auto model = std::make_unique<UNetQuantizedModel>(ctx.model, plan(ctx), ctx.run);
    QuantizedUNet& q = model->qunet();
    torch::NoGradGuard no_grad;
    q.set_quant_state(true, false);
    model->build_structure();
    q.set_quant_state(true, false);
    std::vector<int64_t> shape = ctx.model->sample_shape();
    shape.insert(shape.begin(), 1);
    const auto dev = ctx.run.device;
    q.forward(torch::zeros(shape, torch::TensorOptions().device(dev)),
              torch::zeros({1}, torch::TensorOptions().device(dev)),
              probe_conditioning(*ctx.model, 1));  // weights: min-max of the weights
    if (ctx.bits.act_quantized()) {
      Trajectories tr = trajectories_from_settings(ctx, *fp);
      CalibSet calib = qdiffusion_calibration(tr, ctx.settings["cali_n"], ctx.settings["cali_st"]);
      at::Generator g = at::make_generator<at::CPUGeneratorImpl>(ctx.settings["seed"].get<uint64_t>());
      torch::Tensor idx = torch::randperm(calib.size(), g, torch::kLong)
                              .slice(0, 0, ctx.settings["act_init_batch"].get<int64_t>());
      CalibSet batch = calib.index(idx);
      q.set_quant_state(true, true);
      q.forward(batch.x.to(dev), batch.t.to(dev), batch.cond());
      model->mutable_report()["act_init_images"] = batch.size();
    }
    q.set_quant_state(true, ctx.bits.act_quantized());
    return model;
  }

  std::unique_ptr<QuantizedModel> restore(QuantContext& ctx,
                                          const std::map<std::string, torch::Tensor>& state) const override {
    check_bits(ctx.bits);
    auto model = std::make_unique<UNetQuantizedModel>(ctx.model, plan(ctx), ctx.run);
    model->restore(state, "baseline calibration");
    model->qunet().set_quant_state(true, ctx.bits.act_quantized());
    return model;
  }
};
}  // namespace

std::unique_ptr<QuantMethod> make_baseline_method() {
  return std::make_unique<BaselineMethod>();
}

}  // namespace dmeval
