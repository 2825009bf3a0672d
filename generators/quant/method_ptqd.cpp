// `ptqd`: PTQD (He et al., NeurIPS 2023) as ziplab/PTQD runs it (spec generators.md §5.3, 6.3), on the
// ddim UNet: BRECQ quantizers on the *input* and weight of every Conv2d/Linear except the residual
// shortcuts and the downsampling convolutions (PTQD's "neither skip nor op" rule); weights per tensor
// with the MSE search, the time-embedding input layer, the image input conv and the output conv at 8
// bits and not reconstructed; BRECQ/AdaRound reconstruction (10k iterations, batch 8); activations
// per tensor MSE + step learning (5k iterations, lr 4e-4, p 2.4, batch 16). Calibration data: 1024
// random (x_t, t) of the FP sampler. Its distinctive step, the quantization-noise correction, is
// fitted on the FP trajectory: per timestep the slope k_t of the error on ε, the per-channel bias and
// the residual noise σ_res; sampling then uses ε̂ = (ε_q - bias_t) / (1 + k_t) and removes
// (σ_res / (1 + k_t))² of variance from the injected noise when η > 0. The correction exists for the
// timesteps it was fitted on (the trajectory sampler's), so sampling must use that sampler.
#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include "core/error.h"
#include "generators/quant/method_support.h"
#include "generators/quant/reconstruction.h"

namespace dmeval {

namespace {

struct Correction {
  torch::Tensor timesteps, k, bias, sigma_res;  // (S), (S), (S, C), (S)
  int64_t index(int64_t t) const {
    const int64_t* p = timesteps.data_ptr<int64_t>();
    for (int64_t i = 0; i < timesteps.numel(); ++i)
      if (p[i] == t) return i;
    std::vector<int64_t> all(p, p + timesteps.numel());
    fail(
        "PTQD correction was fitted for timesteps [{}], not {}: sample with the calibration's sampler (its "
        "traj_* "
        "settings) or calibrate for this one",
        fmt::join(all, ", "), t);
  }
};

class PtqdModel : public UNetQuantizedModel {
 public:
  using UNetQuantizedModel::UNetQuantizedModel;
  Correction correction;
  bool corrected = true;
  EpsModel eps(const Conditioning& cond = {}) override {
    EpsModel base = UNetQuantizedModel::eps(cond);
    if (!corrected) return base;
    Correction c = correction;
    return [base, c](const torch::Tensor& x, const torch::Tensor& t, int64_t step) {
      torch::Tensor e = base(x, t, step);
      const int64_t i = c.index(static_cast<int64_t>(t[0].item<float>()));
      const double k = std::max(0.0, c.k[i].item<double>());
      torch::Tensor bias = c.bias[i].to(e.device()).view({1, -1, 1, 1});
      return (e - bias) / (1 + k);
    };
  }
  QuantNoiseStd quant_noise_std() override {
    if (!corrected) return {};
    Correction c = correction;
    return [c](int64_t t) {
      const int64_t i = c.index(t);
      return c.sigma_res[i].item<double>() / (1 + std::max(0.0, c.k[i].item<double>()));
    };
  }
  std::vector<std::pair<std::string, torch::Tensor>> state() override {
    auto s = UNetQuantizedModel::state();
    s.emplace_back("ptqd.timesteps", correction.timesteps);
    s.emplace_back("ptqd.k", correction.k);
    s.emplace_back("ptqd.bias", correction.bias);
    s.emplace_back("ptqd.sigma_res", correction.sigma_res);
    return s;
  }
};

class PtqdMethod : public QuantMethod {
 public:
  std::string name() const override { return "ptqd"; }
  std::string description() const override {
    return "PTQD: BRECQ/AdaRound PTQ with quantization-noise correction (correlated part and residual "
           "variance)";
  }
  void check_bits(const BitWidths& b) const override {
    DMEVAL_CHECK(b.weight >= 2 && b.weight <= 8 && ((b.act >= 2 && b.act <= 8) || b.act == 32),
                 "method ptqd (BRECQ quantizers, 2..8 bits) does not support --bits {}", b.str());
  }
  nlohmann::ordered_json default_settings() const override {
    nlohmann::ordered_json s;
    add_trajectory_settings(s, 64, 20, "uniform", 0.0, 1234);
    s["cali_pairs"] = 1024;
    s["weight_init_batch"] = 32;
    s["iters_w"] = 10000;
    s["batch_size_w"] = 8;
    s["round_weight"] = 0.01;
    s["b_start"] = 20.0;
    s["b_end"] = 2.0;
    s["warmup"] = 0.2;
    s["act_init_batch"] = 64;
    s["iters_a"] = 5000;
    s["batch_size_a"] = 16;
    s["lr_a"] = 4e-4;
    s["p_a"] = 2.4;
    s["correction"] = true;
    s["cache_memory_mb"] = 1024;
    return s;
  }

  static bool excluded(const LayerInfo& l) {
    return l.role == LayerRole::kResblockShortcut || l.role == LayerRole::kDownsampleConv;
  }

  static QuantPlan plan(const QuantContext& ctx, std::vector<bool>* ignore_recon = nullptr) {
    const auto layers = list_layers(ctx.model->network());
    std::vector<size_t> quantized;
    for (size_t i = 0; i < layers.size(); ++i)
      if (!excluded(layers[i])) quantized.push_back(i);
    QuantPlan p;
    p.layers.resize(layers.size());
    if (ignore_recon) ignore_recon->assign(layers.size(), false);
    for (size_t qi = 0; qi < quantized.size(); ++qi) {
      const size_t i = quantized[qi];
      UniformQuantizerSpec w;
      w.flavor = QuantFlavor::kBrecq;
      w.bits = ctx.bits.weight;
      w.scale_method = "mse";
      // module_list[0], [2] and [-1]: 8-bit and not reconstructed
      const bool head = qi == 0 || qi == 2 || qi + 1 == quantized.size();
      if (head) {
        w.bits = 8;
        if (ignore_recon) (*ignore_recon)[i] = true;
      }
      p.layers[i].weight = w;
      if (ctx.bits.act_quantized()) {
        UniformQuantizerSpec a;
        a.flavor = QuantFlavor::kBrecq;
        a.bits = ctx.bits.act;
        a.scale_method = "mse";
        a.leaf_param = true;
        p.layers[i].act = a;
      }
    }
    return p;
  }

  std::unique_ptr<QuantizedModel> calibrate(QuantContext& ctx) const override {
    check_bits(ctx.bits);
    const auto& s = ctx.settings;
    std::shared_ptr<DiffusionModel> fp = ctx.model->clone();
    Trajectories tr = trajectories_from_settings(ctx, *fp);
    const auto dev = ctx.run.device;
    CalibSet calib = random_pairs_calibration(tr, s.at("cali_pairs"), s.at("seed").get<uint64_t>());
    calib.x = calib.x.to(dev);
    calib.t = calib.t.to(dev);
    std::vector<bool> ignore;
    QuantPlan pl = plan(ctx, &ignore);
    auto model = std::make_unique<PtqdModel>(ctx.model, pl, ctx.run);
    QuantizedUNet& q = model->qunet();
    auto& report = model->mutable_report();
    report["calibration_samples"] = calib.size();
    {
      torch::NoGradGuard no_grad;
      q.set_quant_state(true, false);
      const int64_t n = s.at("weight_init_batch");
      q.forward(calib.x.slice(0, 0, n), calib.t.slice(0, 0, n), calib.slice(0, n).cond());
    }
    std::set<std::string> skip;
    auto handles = layer_handles(ctx.model->network());
    for (size_t i = 0; i < handles.size(); ++i)
      if (ignore[i]) skip.insert(handles[i].name);
    ReconOptions ro;
    ro.round_weight = s.at("round_weight");
    ro.b_start = s.at("b_start");
    ro.b_end = s.at("b_end");
    ro.warmup = s.at("warmup");
    ro.seed = s.at("seed");
    ro.cache_memory_limit = s.at("cache_memory_mb").get<int64_t>() << 20;
    auto units = reconstruction_units(q);
    ro.iters = s.at("iters_w");
    ro.batch_size = s.at("batch_size_w");
    nlohmann::ordered_json wrec = nlohmann::ordered_json::array();
    for (ReconUnit& u : units) {
      if (ro.iters <= 0 || (u.kind == ReconUnit::Kind::kLayer && skip.count(u.name))) continue;
      ReconReport r = reconstruct(q, u, calib, ro);
      wrec.push_back(recon_record(r, "nearest", "adaround"));
      ctx.log(fmt::format("weights {}: output error {:.4g} (nearest) -> {:.4g} (AdaRound)", r.unit,
                          r.loss_before, r.loss_after));
    }
    report["weight_reconstruction"] = wrec;
    if (ctx.bits.act_quantized()) {
      {
        torch::NoGradGuard no_grad;
        q.set_quant_state(true, true);
        const int64_t n = s.at("act_init_batch");
        q.forward(calib.x.slice(0, 0, n), calib.t.slice(0, 0, n), calib.slice(0, n).cond());
      }
      ro.act_quant = true;
      ro.asym = false;
      ro.iters = s.at("iters_a");
      ro.batch_size = s.at("batch_size_a");
      ro.lr_act = s.at("lr_a");
      ro.p = s.at("p_a");
      nlohmann::ordered_json arec = nlohmann::ordered_json::array();
      for (ReconUnit& u : units) {
        if (ro.iters <= 0 || (u.kind == ReconUnit::Kind::kLayer && skip.count(u.name))) continue;
        ReconReport r = reconstruct(q, u, calib, ro);
        arec.push_back(recon_record(r, "initial", "learned"));
      }
      report["activation_reconstruction"] = arec;
    }
    q.set_quant_state(true, ctx.bits.act_quantized());
    for (auto& p : ctx.model->network().parameters()) p.set_requires_grad(false);

    // Quantization-noise correction on the FP trajectory (one entry per distinct timestep).
    torch::NoGradGuard no_grad;
    // A conditional model's error is that of the guided ε of each image (PTQD's cin256 statistics): the
    // conditional rows of the trajectory with their labels and the run's guidance scale.
    const int64_t images = tr.x0[0].size(0), offset = tr.images() - images;
    Conditioning cond;
    if (!tr.ys.empty()) {
      cond = ctx.conditioning ? ctx.conditioning(0, 1) : Conditioning{};
      cond.class_labels = tr.ys[0].slice(0, offset);
    }
    EpsModel q_eps = model->UNetQuantizedModel::eps(cond), f_eps = fp->eps(ctx.run, cond);
    std::vector<int64_t> ts;
    std::vector<double> ks, sig;
    std::vector<torch::Tensor> biases;
    nlohmann::ordered_json fit = nlohmann::ordered_json::array();
    for (int64_t k = 0; k < tr.steps(); ++k) {
      const int64_t t = static_cast<int64_t>(tr.ts[k][0].item<float>());
      if (std::find(ts.begin(), ts.end(), t) != ts.end()) continue;  // repeated timestep (quad)
      torch::Tensor x = tr.xs[k].slice(0, offset).to(dev), tt = tr.ts[k].slice(0, offset).to(dev);
      torch::Tensor e_fp = f_eps(x, tt, k).to(torch::kFloat64),
                    err = q_eps(x, tt, k).to(torch::kFloat64) - e_fp;
      // scipy.stats.linregress(ε, e).slope over all elements
      torch::Tensor xf = e_fp.flatten(), yf = err.flatten();
      torch::Tensor xm = xf - xf.mean();
      const double slope = ((xm * (yf - yf.mean())).sum() / (xm * xm).sum()).item<double>();
      torch::Tensor bias = err.mean({0, 2, 3});
      torch::Tensor resid = err - std::max(0.0, slope) * e_fp;
      const double sres = resid.flatten(1).std(1, /*unbiased=*/true).mean().item<double>();
      ts.push_back(t);
      ks.push_back(slope);
      sig.push_back(sres);
      biases.push_back(bias.to(torch::kFloat32).cpu());
      fit.push_back(
          {{"t", t}, {"k", slope}, {"sigma_res", sres}, {"bias_abs_mean", bias.abs().mean().item<double>()}});
    }
    model->correction.timesteps = torch::tensor(ts, torch::kLong);
    model->correction.k = torch::tensor(ks, torch::kFloat64).to(torch::kFloat32);
    model->correction.sigma_res = torch::tensor(sig, torch::kFloat64).to(torch::kFloat32);
    model->correction.bias = torch::stack(biases);
    model->corrected = s.at("correction").get<bool>();
    report["noise_correction"] = fit;
    return model;
  }

  std::unique_ptr<QuantizedModel> restore(QuantContext& ctx,
                                          const std::map<std::string, torch::Tensor>& state) const override {
    check_bits(ctx.bits);
    auto model = std::make_unique<PtqdModel>(ctx.model, plan(ctx), ctx.run);
    std::map<std::string, torch::Tensor> quantizers;
    for (const auto& [k, v] : state)
      if (k.rfind("ptqd.", 0) != 0) quantizers[k] = v;
    for (const char* k : {"ptqd.timesteps", "ptqd.k", "ptqd.bias", "ptqd.sigma_res"})
      DMEVAL_CHECK(state.count(k), "PTQD calibration without '{}'", k);
    model->restore(quantizers, "ptqd calibration");
    model->correction = {state.at("ptqd.timesteps").to(torch::kLong), state.at("ptqd.k"),
                         state.at("ptqd.bias"), state.at("ptqd.sigma_res")};
    model->corrected = ctx.settings.at("correction").get<bool>();
    model->qunet().set_quant_state(true, ctx.bits.act_quantized());
    return model;
  }
};
}  // namespace

std::unique_ptr<QuantMethod> make_ptqd_method() {
  return std::make_unique<PtqdMethod>();
}

}  // namespace dmeval
