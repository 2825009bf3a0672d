// `ptq4dm`: PTQ4DM (Shang et al., CVPR 2023) as 42Shawn/PTQ4DM's launchers run it (spec generators.md
// §5.4, 6.2): QDrop's QuantModel on every Conv2d/Linear — weights channel-wise, activations per
// tensor on the layer *output*, both with QDrop's symmetric range search (1-D here), activation
// ranges as an EMA over calibration batches; first and last weight quantizers and the second-to-last
// activation quantizer at 8 bits, the network output unquantized; initialisation only (the shipped
// W8A8 launchers do not reconstruct). Calibration set: NDTC, one normally distributed step per image
// of the FP sampler, passed to the network with the loop counter as its timestep (the reference's
// quirk; `ndtc_true_timestep=true` passes the real one). On the ddim UNet the attention 1x1
// projections are Conv2d and therefore quantized by PTQ4DM's rule.
#include <fmt/format.h>
#include <torch/torch.h>

#include "core/error.h"
#include "generators/quant/method_support.h"

namespace dmeval {

namespace {
class Ptq4dmMethod : public QuantMethod {
 public:
  std::string name() const override { return "ptq4dm"; }
  std::string description() const override {
    return "PTQ4DM: NDTC calibration (normally distributed timesteps), QDrop range-search quantizers on "
           "layer "
           "outputs, 8-bit first/last layers";
  }
  void check_bits(const BitWidths& b) const override {
    DMEVAL_CHECK(b.weight >= 2 && b.weight <= 8 && ((b.act >= 2 && b.act <= 8) || b.act == 32),
                 "method ptq4dm (QDrop quantizers) supports 2..8-bit weights and 2..8-bit or float "
                 "activations; --bits "
                 "{} is not supported",
                 b.str());
  }
  nlohmann::ordered_json default_settings() const override {
    nlohmann::ordered_json s;
    add_trajectory_settings(s, 1024, 100, "quad", 0.0, 1234);
    s["ndtc_mu"] = 0.4;
    s["ndtc_sigma"] = 0.4;
    s["ndtc_true_timestep"] = false;
    s["act_batch"] = 256;
    s["head_stem_8bit"] = true;
    return s;
  }

  static QuantPlan plan(const QuantContext& ctx) {
    const auto& s = ctx.settings;
    const size_t n = list_layers(ctx.model->network()).size();
    QuantPlan p;
    for (size_t i = 0; i < n; ++i) {
      LayerQuantSpec l;
      UniformQuantizerSpec w;
      w.flavor = QuantFlavor::kQDrop;
      w.bits = ctx.bits.weight;
      w.symmetric = true;
      w.channel_wise = true;
      if (s.at("head_stem_8bit").get<bool>() && (i == 0 || i + 1 == n)) w.bits = 8;
      l.weight = w;
      if (ctx.bits.act_quantized()) {
        UniformQuantizerSpec a;
        a.flavor = QuantFlavor::kQDrop;
        a.bits = ctx.bits.act;
        a.symmetric = true;
        a.leaf_param = true;
        if (s.at("head_stem_8bit").get<bool>() && i + 2 == n) a.bits = 8;  // a_list[-2]
        l.act = a;
        l.act_position = ActPosition::kOutput;
        l.disable_act_quant = i + 1 == n;  // disable_network_output_quantization
      }
      p.layers.push_back(l);
    }
    return p;
  }

  std::unique_ptr<QuantizedModel> calibrate(QuantContext& ctx) const override {
    check_bits(ctx.bits);
    const auto& s = ctx.settings;
    std::shared_ptr<DiffusionModel> fp = ctx.model->clone();
    auto model = std::make_unique<UNetQuantizedModel>(ctx.model, plan(ctx), ctx.run);
    QuantizedUNet& q = model->qunet();
    torch::NoGradGuard no_grad;
    // set_weight_quantize_params: each weight quantizer searches its range on the weight
    auto handles = layer_handles(ctx.model->network());
    for (size_t i = 0; i < handles.size(); ++i) {
      UniformQuantizer& wq = *q.layers()[i].second->weight.uniform;
      wq.set_inited(false);
      wq.forward(handles[i].weight());
      wq.set_inited(true);
    }
    if (ctx.bits.act_quantized()) {
      Trajectories tr = trajectories_from_settings(ctx, *fp);
      CalibSet calib =
          ndtc_calibration(tr, s.at("ndtc_mu"), s.at("ndtc_sigma"), !s.at("ndtc_true_timestep").get<bool>(),
                           s.at("seed").get<uint64_t>());
      // set_act_quantize_params(order = together): weights and activations quantized, every batch
      // updates the EMA of the searched ranges; the remainder of N / batch is dropped as there.
      q.set_quant_state(true, true);
      for (auto& [n, l] : q.layers())
        if (l->act) l->act->set_inited(false);
      const int64_t batch = std::min<int64_t>(s.at("act_batch").get<int64_t>(), calib.size());
      const auto dev = ctx.run.device;
      for (int64_t i = 0; i + batch <= calib.size(); i += batch) {
        CalibSet b = calib.slice(i, i + batch);
        q.forward(b.x.to(dev), b.t.to(dev), b.cond());
      }
      for (auto& [n, l] : q.layers())
        if (l->act) l->act->set_inited(true);
      model->mutable_report()["calibration_samples"] = calib.size();
      model->mutable_report()["calibration_timesteps_passed"] = s.at("ndtc_true_timestep").get<bool>()
                                                                    ? "true diffusion timestep"
                                                                    : "loop counter (reference quirk)";
    }
    q.set_quant_state(true, ctx.bits.act_quantized());
    return model;
  }

  std::unique_ptr<QuantizedModel> restore(QuantContext& ctx,
                                          const std::map<std::string, torch::Tensor>& state) const override {
    check_bits(ctx.bits);
    auto model = std::make_unique<UNetQuantizedModel>(ctx.model, plan(ctx), ctx.run);
    model->restore(state, "ptq4dm calibration");
    model->qunet().set_quant_state(true, ctx.bits.act_quantized());
    return model;
  }
};
}  // namespace

std::unique_ptr<QuantMethod> make_ptq4dm_method() {
  return std::make_unique<Ptq4dmMethod>();
}

}  // namespace dmeval
