// `tinydm`, `tinydm-b1`, `tinydm-attn`: the method users call TinyDM — APQ-DM's code
// (ChangyuanWang17/APQ-DM 53c1780) as its sample_cifar.sh runs it, spec tinydm.md. Weights of the
// ResnetBlock 3x3 convolutions per output channel (min/max with 0, no reconstruction); their inputs
// per sampler step index and channel, the range a softmax mixture of 8 channel-group ranges whose
// assignment logits are learned end to end along calibration trajectories (ε-MSE + assignment
// entropy, AdamW, one step per sampler step), over rounds whose calibration images come from fresh FP
// trajectories at an actively selected step (entropy score minus a visit-count penalty).
//
// Decisions (spec §11), recommended ones by default, alternatives as settings recorded with the
// calibration: D1 whatever checkpoint the user gives; D2 per-step channel groups; D3 the step index
// is passed explicitly (the sampler's); D4 `weight_grid` as-coded | clamped; D5 the logits and group
// ranges are kept (as trained); D6 the harness writes exactly N images; D7 calibrated once, stored,
// reused; D8 size = quantized weights at b bits + rest fp32 (+ weight ranges and frozen activation
// ranges with scales); D9 `calib_image_unit_range` / `update_from_input` (quirks by default);
// D11 separate W and A bit widths. `tinydm-attn` (the attention 1x1 convolutions quantized the same
// way, keys at max(4, b-2) bits) is dmeval's own construction, not a reproduction.
#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <chrono>

#include "core/error.h"
#include "generators/quant/method_tinydm.h"
#include "generators/timestep_sequence.h"

namespace dmeval {

namespace {

// The reference's single CPU generator stream (spec 7), shared by the trajectory sampler and the
// calibration loop: every draw is a sequential randn.
class StreamNoise : public NoiseSource {
 public:
  explicit StreamNoise(at::Generator& gen) : gen_(gen) {}
  std::string name() const override { return "stream"; }
  std::string describe() const override { return "one sequential torch CPU generator stream"; }
  torch::Tensor initial(int64_t, int64_t n, c10::IntArrayRef shape) override { return draw(n, shape); }
  torch::Tensor step(int64_t, int64_t, int64_t n, c10::IntArrayRef shape, bool) override {
    return draw(n, shape);
  }
  bool sequential() const override { return true; }
  torch::Tensor draw(int64_t n, c10::IntArrayRef shape) {
    std::vector<int64_t> s = {n};
    s.insert(s.end(), shape.begin(), shape.end());
    return torch::randn(s, gen_);
  }

 private:
  at::Generator& gen_;
};

struct TinyDMOptions {
  bool attention = false;
  TinyDMWeightGrid grid = TinyDMWeightGrid::kAsCoded;
};

double entropy_of(const torch::Tensor& p) {  // cal_entropy for reports
  return (-1 * torch::sum(p * torch::log(p), -1).mean()).item<double>();
}

class TinyDMModel : public QuantizedModel {
 public:
  TinyDMModel(std::shared_ptr<DiffusionModel> model, BitWidths bits, std::vector<int64_t> timesteps,
              TinyDMOptions o, UNetRunOptions run)
      : QuantizedModel(run),
        model_(std::move(model)),
        timesteps_(std::move(timesteps)),
        step_(std::make_shared<int64_t>(0)) {
    const int64_t S = static_cast<int64_t>(timesteps_.size());
    for (LayerHandle& h : layer_handles(model_->network())) {
      const bool resblock = h.role() == LayerRole::kResblockConv;
      const bool attn = o.attention && h.role() == LayerRole::kAttention1x1;
      if (!resblock && !attn) continue;
      DMEVAL_CHECK(h.conv, "TinyDM quantizes convolutions; {} is not one", h.name);
      const bool key = attn && h.name.size() > 2 && h.name.substr(h.name.size() - 2) == ".k";
      auto lower = [&](int b) { return b >= 32 || !key ? b : std::max(4, b - 2); };
      auto layer = std::make_shared<TinyDMLayer>(step_, h.weight(), lower(bits.weight), lower(bits.act), S,
                                                 h.conv->in_channels, o.grid);
      h.quantizer() = layer;
      layers_.emplace_back(h.name, layer);
      bits_[h.name] = layer->weight_bits;
    }
  }
  ~TinyDMModel() override {
    for (LayerHandle& h : layer_handles(model_->network()))
      if (bits_.count(h.name)) h.quantizer().reset();
  }

  int64_t steps() const { return static_cast<int64_t>(timesteps_.size()); }
  const std::vector<int64_t>& timesteps() const { return timesteps_; }
  std::vector<std::pair<std::string, std::shared_ptr<TinyDMLayer>>>& layers() { return layers_; }
  DiffusionModel& model() { return *model_; }
  void set_step(int64_t k) { *step_ = k; }
  void set_calibrating(bool on, bool search) {
    for (auto& [n, l] : layers_) {
      l->calibrating = on, l->search = search;
      l->invalidate();
    }
  }

  EpsModel eps(const Conditioning& c = {}) override {
    EpsModel base = model_->eps(run_, c);
    auto step = step_;
    auto ts = timesteps_;
    return [base, step, ts](const torch::Tensor& x, const torch::Tensor& t, int64_t k) {
      DMEVAL_CHECK(k >= 0 && k < static_cast<int64_t>(ts.size()),
                   "TinyDM was calibrated for a {}-step sampler; called at step index {}: sample with the "
                   "calibration's sampler (traj_* settings) or calibrate for this one",
                   ts.size(), k);
      const int64_t tv = static_cast<int64_t>(t[0].item<float>());
      DMEVAL_CHECK(tv == ts[k],
                   "TinyDM step index {} was calibrated at timestep {}, the sampler asks for {}: sample with "
                   "the calibration's sampler (traj_* settings) or calibrate for this one",
                   k, ts[k], tv);
      *step = k;
      return base(x, t, k);
    };
  }

  std::vector<std::pair<std::string, torch::Tensor>> state() override {
    std::vector<std::pair<std::string, torch::Tensor>> s;
    s.emplace_back("tinydm.timesteps", torch::tensor(timesteps_, torch::kLong));
    if (sample_count.defined()) s.emplace_back("tinydm.sample_count", sample_count);
    for (auto& [n, l] : layers_) {
      s.emplace_back(n + ".weight_range", torch::stack({l->weight_range.min, l->weight_range.max}));
      if (!l->act) continue;
      s.emplace_back(n + ".groups_range", l->act->groups_range);
      s.emplace_back(n + ".alpha_activ", l->act->alpha.detach());
      s.emplace_back(n + ".init_range", torch::stack({l->act->init_range_min, l->act->init_range_max}, 1));
    }
    return s;
  }

  void restore(const std::map<std::string, torch::Tensor>& state) {
    auto get = [&](const std::string& k, c10::IntArrayRef shape) {
      auto it = state.find(k);
      DMEVAL_CHECK(it != state.end(), "TinyDM calibration without '{}'", k);
      DMEVAL_CHECK(it->second.sizes() == shape, "TinyDM calibration '{}' has shape [{}], expected [{}]", k,
                   fmt::join(it->second.sizes(), ", "), fmt::join(shape, ", "));
      return it->second.to(torch::kFloat32).contiguous().clone();
    };
    torch::Tensor ts = state.count("tinydm.timesteps") ? state.at("tinydm.timesteps") : torch::Tensor();
    DMEVAL_CHECK(
        ts.defined() && ts.numel() == steps() &&
            std::equal(timesteps_.begin(), timesteps_.end(), ts.to(torch::kLong).data_ptr<int64_t>()),
        "TinyDM calibration was made for other sampler timesteps than its settings give");
    if (state.count("tinydm.sample_count")) sample_count = state.at("tinydm.sample_count");
    for (auto& [n, l] : layers_) {
      torch::Tensor wr = get(n + ".weight_range", {2, l->weight_range.min.numel()});
      l->weight_range = {wr[0].clone(), wr[1].clone()};
      if (l->act) {
        const int64_t S = steps(), C = l->act->channels();
        l->act->groups_range = get(n + ".groups_range", {S, kTinyDMGroups, 2});
        l->act->alpha = get(n + ".alpha_activ", {S, kTinyDMGroups, C});
        torch::Tensor ir = get(n + ".init_range", {S, 2});
        l->act->init_range_min = ir.select(1, 0).contiguous();
        l->act->init_range_max = ir.select(1, 1).contiguous();
      }
      l->invalidate();
    }
  }

  double weight_bits(const LayerInfo& layer) const override {
    auto it = bits_.find(layer.name);
    return it == bits_.end() ? 32.0 : it->second;
  }
  // Weight ranges (min, max per output channel) and the frozen activation ranges (lo, hi per step
  // and input channel), float32 (spec D8).
  double scale_bytes() const override {
    double b = 0;
    for (auto& [n, l] : layers_) {
      if (l->weight_bits < 32) b += 8.0 * static_cast<double>(l->weight_range.min.numel());
      if (l->act) b += 8.0 * static_cast<double>(l->act->steps() * l->act->channels());
    }
    return b;
  }

  nlohmann::ordered_json& mutable_report() { return report_; }
  torch::Tensor sample_count;

 private:
  std::shared_ptr<DiffusionModel> model_;
  std::vector<int64_t> timesteps_;
  std::shared_ptr<int64_t> step_;
  std::vector<std::pair<std::string, std::shared_ptr<TinyDMLayer>>> layers_;
  std::map<std::string, double> bits_;
};

// The timestep of step index k (k = 0 noisiest) of the model's trajectory sampler (the ddim family:
// the reversed quad/uniform sequence, as generalized_steps pairs them; the ldm family: its +1 timesteps).
std::vector<int64_t> step_timesteps(const DiffusionModel& m, const nlohmann::ordered_json& s) {
  SamplerSpec spec;
  spec.skip_type = s.at("traj_skip").get<std::string>();
  spec.steps = s.at("traj_steps").get<int64_t>();
  return m.sampler_timesteps(spec);
}

}  // namespace

// Entropy score of every step index (spec 6.2): Σ_l H_l(j) / C_l - sample_weight · count(j).
torch::Tensor tinydm_step_scores(const std::vector<const TinyDMActQuantizer*>& layers,
                                 const torch::Tensor& count, double sample_weight) {
  torch::NoGradGuard no_grad;
  const int64_t S = count.numel();
  torch::Tensor u = torch::zeros({S});
  for (const TinyDMActQuantizer* q : layers) {
    torch::Tensor a = torch::softmax(q->alpha, 1);
    const int64_t dim = a.size(2);
    for (int64_t t = 0; t < S; ++t) u[t] += (-1 * torch::sum(a[t] * torch::log(a[t]), -1).mean()) / dim;
  }
  u -= sample_weight * count;
  return u;
}

// The pick among step indices window_start .. S-1: the maximum score, ties to the largest index.
int64_t tinydm_select_step(const torch::Tensor& scores, int64_t window_start) {
  torch::Tensor w = scores.slice(0, window_start);
  const float best = w.max().item<float>();
  int64_t pick = -1;
  auto acc = w.accessor<float, 1>();
  for (int64_t j = 0; j < w.numel(); ++j)
    if (acc[j] == best) pick = j;
  return window_start + pick;
}

namespace {
TinyDMOptions tinydm_options(const nlohmann::ordered_json& s, bool attention) {
  TinyDMOptions o;
  o.attention = attention;
  const std::string g = s.at("weight_grid").get<std::string>();
  DMEVAL_CHECK(g == "as-coded" || g == "clamped", "weight_grid '{}' must be as-coded or clamped", g);
  o.grid = g == "clamped" ? TinyDMWeightGrid::kClamped : TinyDMWeightGrid::kAsCoded;
  return o;
}

}  // namespace

std::unique_ptr<QuantizedModel> tinydm_calibrate(QuantContext& ctx, bool attention, TinyDMTrace* trace) {
  const auto& s = ctx.settings;
  const std::vector<int64_t> ts = step_timesteps(*ctx.model, s);
  const int64_t S = static_cast<int64_t>(ts.size());
  const int64_t window = s.at("window_start");
  DMEVAL_CHECK(window >= 0 && window < S,
               "TinyDM selects calibration steps among indices {}..{}: needs more than {} sampler steps "
               "(traj_steps={})",
               window, S - 1, window, S);
  DMEVAL_CHECK(s.at("traj_eta").get<double>() >= 0, "traj_eta must be non-negative");
  const std::string skip = s.at("traj_skip");
  std::shared_ptr<DiffusionModel> fp = ctx.model->clone();
  fp->network().eval();
  for (auto& p : ctx.model->network().parameters()) p.set_requires_grad(false);
  auto model = std::make_unique<TinyDMModel>(ctx.model, ctx.bits, ts, tinydm_options(s, attention), ctx.run);
  auto& report = model->mutable_report();
  const int64_t rounds = s.at("rounds"), n = s.at("calib_batch");
  DMEVAL_CHECK(rounds >= 0 && n >= 1, "rounds {} / calib_batch {}", rounds, n);
  model->sample_count = torch::zeros({S});
  report["quantized_layers"] = static_cast<int64_t>(model->layers().size());
  if (ctx.model->family() != "ddim-unet")
    report["construction"] = fmt::format(
        "dmeval's construction: TinyDM (APQ-DM) on the {} family, whose reference code has none (the same "
        "algorithm on its ResBlock convolutions)",
        ctx.model->family());
  if (!ctx.bits.act_quantized() || rounds == 0) {
    report["rounds"] = nlohmann::ordered_json::array();
    return model;  // weight ranges only: nothing to learn
  }
  std::vector<TinyDMActQuantizer*> acts;
  std::vector<const TinyDMActQuantizer*> cacts;
  for (auto& [name, l] : model->layers())
    if (l->act) acts.push_back(l->act.get()), cacts.push_back(l->act.get());

  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(s.at("seed").get<uint64_t>());
  StreamNoise noise(gen);
  SamplerSpec spec;
  spec.skip_type = skip;
  spec.steps = S;
  spec.eta = s.at("traj_eta").get<double>();
  const auto dev = ctx.run.device;
  const std::vector<int64_t> shape = ctx.model->sample_shape();
  // A conditional model: the calibration images' conditioning as the run samples them (guided
  // trajectories); the calibration loss asks the network for the conditional ε of the same labels.
  Conditioning cond, cond_rows;
  if (ctx.conditioning) {
    cond = ctx.conditioning(0, n);
    cond_rows.class_labels = cond.class_labels;
  }
  EpsModel fp_eps = fp->eps(ctx.run, cond);
  const double lr = s.at("lr"), wd = s.at("weight_decay"), sw = s.at("sample_weight"),
               dlw = s.at("diff_loss_weight");
  const bool unit_range = s.at("calib_image_unit_range"), from_input = s.at("update_from_input");
  nlohmann::ordered_json rep = nlohmann::ordered_json::array();
  for (int64_t r = 0; r < rounds; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    // 6. calibration set: a fresh FP trajectory, the selected step's states
    torch::Tensor xs_pick;
    torch::Tensor scores = tinydm_step_scores(cacts, model->sample_count, sw);
    const int64_t pick = tinydm_select_step(scores, window);
    {
      torch::NoGradGuard no_grad;
      torch::Tensor x_T = noise.initial(0, n, shape).to(dev);
      std::vector<torch::Tensor> xs = {x_T};
      StepObserver obs = [&](const StepRecord& rec) { xs.push_back(rec.x_next); };
      fp->sample(spec, fp_eps, x_T, noise, 0, &obs);
      model->sample_count[pick] += 1;
      xs_pick = xs[pick];
      if (trace) trace->x_T.push_back(x_T.cpu());
    }
    torch::Tensor x = unit_range ? torch::clamp((xs_pick + 1.0) / 2.0, 0.0, 1.0) : xs_pick;
    if (trace) {
      trace->scores.push_back(scores.clone());
      trace->picks.push_back(pick);
      trace->calib_sets.push_back(x.cpu());
    }

    // 5. calibration loss along a trajectory from the calibration images
    const bool search = r == 0 && s.at("first_round_search").get<bool>();
    model->set_calibrating(true, search);
    std::vector<torch::Tensor> params;
    for (TinyDMActQuantizer* q : acts) {
      q->alpha.set_requires_grad(true);
      params.push_back(q->alpha);
    }
    torch::optim::AdamW opt(params, torch::optim::AdamWOptions(lr).weight_decay(wd));
    std::vector<double> mse_per_step;
    torch::Tensor ent_per_layer = torch::zeros({S, static_cast<int64_t>(acts.size())});
    for (int64_t k = 0; k < S; ++k) {
      const int64_t t = ts[k], t_next = k + 1 < S ? ts[k + 1] : -1;
      torch::Tensor tv = torch::full({n}, static_cast<float>(t), torch::TensorOptions().device(dev));
      torch::Tensor at = compute_alpha(ctx.schedule, tv.to(torch::kLong)),
                    at_next = compute_alpha(
                        ctx.schedule,
                        torch::full({n}, t_next, torch::TensorOptions().dtype(torch::kLong).device(dev)));
      torch::Tensor e = noise.draw(n, shape).to(dev);
      if (trace) trace->loss_noise.push_back(e.cpu());
      // noise_estimation_loss: a = (1-b).cumprod()[t] (= compute_alpha's value)
      torch::Tensor x_in = x * at.sqrt() + e * (1.0 - at).sqrt();
      model->set_step(k);
      torch::Tensor eps = model->model().forward(x_in, tv, cond_rows);
      torch::Tensor loss = (e - eps).square().sum({1, 2, 3}).mean(0);
      mse_per_step.push_back(loss.item<double>());
      torch::Tensor ent;
      for (size_t li = 0; li < acts.size(); ++li) {
        torch::Tensor a = torch::softmax(acts[li]->alpha, 1);
        const int64_t g = a.size(1), dim = a.size(2);
        torch::Tensor h = -1 * torch::sum(a[k] * torch::log(a[k]), -1).mean();
        ent_per_layer[k][static_cast<int64_t>(li)] = h.detach();
        torch::Tensor term = h / (g * dim);
        ent = ent.defined() ? ent + term : 0 + term;
      }
      loss = loss + dlw * ent;
      {
        torch::NoGradGuard no_grad;
        torch::Tensor base = from_input ? x_in : x;
        torch::Tensor ed = eps.detach();
        torch::Tensor x0 = (base - ed * (1 - at).sqrt()) / at.sqrt();
        torch::Tensor z = noise.draw(n, shape).to(dev);
        torch::Tensor c1 = spec.eta * ((1 - at / at_next) * (1 - at_next) / (1 - at)).sqrt();
        torch::Tensor c2 = ((1 - at_next) - c1.pow(2)).sqrt();
        x = at_next.sqrt() * x0 + c1 * z + c2 * ed;
      }
      opt.zero_grad();
      loss.backward();
      opt.step();
    }
    model->set_calibrating(false, false);
    for (TinyDMActQuantizer* q : acts) q->alpha = q->alpha.detach().set_requires_grad(false);
    if (trace) {
      trace->loss_mse.push_back(torch::tensor(mse_per_step, torch::kFloat64));
      trace->loss_entropy.push_back(ent_per_layer);
      std::vector<torch::Tensor> gr, ir;
      for (TinyDMActQuantizer* q : acts) {
        gr.push_back(q->groups_range.clone());
        ir.push_back(torch::stack({q->init_range_min, q->init_range_max}, 1));
      }
      trace->groups_range.push_back(torch::stack(gr));
      trace->init_range.push_back(torch::stack(ir));
      std::vector<torch::Tensor> al;
      for (TinyDMActQuantizer* q : acts) al.push_back(q->alpha.clone());
      trace->alpha.push_back(al);
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    nlohmann::ordered_json jr = {{"round", r},
                                 {"selected_index", pick},
                                 {"selected_timestep", ts[pick]},
                                 {"loss_mse_first", mse_per_step.front()},
                                 {"loss_mse_last", mse_per_step.back()},
                                 {"s", secs}};
    if (search) {
      std::map<int, int> choices;
      for (TinyDMActQuantizer* q : acts)
        for (int c : q->search_choice) ++choices[c];
      nlohmann::ordered_json hist = nlohmann::ordered_json::object();
      for (auto [c, cnt] : choices)
        hist[c >= 9 || c < 0 ? std::string("kept") : fmt::format("{:.1f}", 1.0 - c * 0.1)] = cnt;
      jr["search_factor_counts"] = hist;
    }
    rep.push_back(jr);
    ctx.log(fmt::format("tinydm round {}/{}: step index {} (t = {}), loss {:.4g} -> {:.4g} in {:.1f} s",
                        r + 1, rounds, pick, ts[pick], mse_per_step.front(), mse_per_step.back(), secs));
  }
  report["rounds"] = rep;
  double ent_mean = 0;
  for (TinyDMActQuantizer* q : acts) ent_mean += entropy_of(torch::softmax(q->alpha, 1)) / acts.size();
  report["final_assignment_entropy_mean"] = ent_mean;
  return model;
}

namespace {

class TinyDMMethod : public QuantMethod {
 public:
  TinyDMMethod(std::string name, int64_t batch, bool attention)
      : name_(std::move(name)), batch_(batch), attention_(attention) {}
  std::string name() const override { return name_; }
  std::string description() const override {
    if (attention_)
      return "TinyDM + attention 1x1 convolutions (dmeval's own construction on the APQ-DM quantizers, not a "
             "published method)";
    if (batch_ == 1) return "TinyDM with the tinyDM-era budget: 64 rounds of 1 calibration image";
    return "TinyDM (APQ-DM code): group-wise per-step activation ranges with learned assignment, active "
           "timestep selection";
  }
  void check_bits(const BitWidths& b) const override {
    DMEVAL_CHECK(b.weight >= 2 && b.weight <= 16 && ((b.act >= 2 && b.act <= 16) || b.act == 32),
                 "method {} does not support --bits {} (weights 2..16, activations 2..16 or 32)", name_,
                 b.str());
  }
  nlohmann::ordered_json default_settings() const override {
    nlohmann::ordered_json s;
    s["traj_steps"] = 100;  // the sampler the step-indexed ranges are calibrated for
    s["traj_skip"] = "quad";
    s["traj_eta"] = 0.0;
    s["seed"] = 1234;  // the reference's torch.manual_seed(1234), one stream (spec 7)
    s["rounds"] = 64;
    s["calib_batch"] = batch_;
    s["lr"] = 0.05;
    s["weight_decay"] = 0.05;
    s["sample_weight"] = 2.0;
    s["diff_loss_weight"] = 1.0;
    s["window_start"] = 30;
    s["first_round_search"] = true;
    s["weight_grid"] = "as-coded";       // D4: as-coded | clamped
    s["calib_image_unit_range"] = true;  // D9 quirk: calibration image clamp((x+1)/2, 0, 1)
    s["update_from_input"] = false;      // D9 quirk: DDIM update applied to x_k, not the noised input
    return s;
  }

  std::unique_ptr<QuantizedModel> calibrate(QuantContext& ctx) const override {
    check_bits(ctx.bits);
    return tinydm_calibrate(ctx, attention_, nullptr);
  }

  std::unique_ptr<QuantizedModel> restore(QuantContext& ctx,
                                          const std::map<std::string, torch::Tensor>& state) const override {
    check_bits(ctx.bits);
    auto model = std::make_unique<TinyDMModel>(ctx.model, ctx.bits, step_timesteps(*ctx.model, ctx.settings),
                                               tinydm_options(ctx.settings, attention_), ctx.run);
    model->restore(state);
    return model;
  }

 private:
  std::string name_;
  int64_t batch_;
  bool attention_;
};

}  // namespace

std::vector<std::string> tinydm_layer_names(const torch::nn::Module& network, bool attention) {
  std::vector<std::string> names;
  for (const LayerInfo& l : list_layers(network))
    if (l.role == LayerRole::kResblockConv || (attention && l.role == LayerRole::kAttention1x1))
      names.push_back(l.name);
  return names;
}

TinyDMSize tinydm_size(const torch::nn::Module& network, int64_t steps, int weight_bits, bool attention) {
  TinyDMSize z;
  int64_t all = 0;
  for (const auto& p : network.parameters()) all += p.numel();
  for (const LayerInfo& l : list_layers(network)) {
    const bool attn = attention && l.role == LayerRole::kAttention1x1;
    if (l.role != LayerRole::kResblockConv && !attn) continue;
    int64_t numel = 1;
    for (int64_t d : l.weight_shape) numel *= d;
    const bool key = attn && l.name.size() > 2 && l.name.substr(l.name.size() - 2) == ".k";
    const int bits = key ? std::max(4, weight_bits - 2) : weight_bits;
    ++z.layers;
    z.quantized_weight_numel += numel;
    z.sum_in_channels += l.weight_shape.at(1);
    z.sum_out_channels += l.weight_shape.at(0);
    z.quantized_weight_bytes += static_cast<double>(numel) * bits / 8.0;
  }
  z.unquantized_fp32_bytes = 4.0 * static_cast<double>(all - z.quantized_weight_numel);
  z.weight_range_bytes = 8.0 * static_cast<double>(z.sum_out_channels);
  z.alpha_numel = steps * kTinyDMGroups * z.sum_in_channels;
  z.groups_range_numel = z.layers * steps * kTinyDMGroups * 2;
  z.collapsed_ranges_bytes = 8.0 * static_cast<double>(steps * z.sum_in_channels);
  z.state_as_trained_bytes = 4.0 * static_cast<double>(z.alpha_numel + z.groups_range_numel);
  return z;
}

std::unique_ptr<QuantMethod> make_tinydm_method() {
  return std::make_unique<TinyDMMethod>("tinydm", 16, false);
}
std::unique_ptr<QuantMethod> make_tinydm_b1_method() {
  return std::make_unique<TinyDMMethod>("tinydm-b1", 1, false);
}
std::unique_ptr<QuantMethod> make_tinydm_attn_method() {
  return std::make_unique<TinyDMMethod>("tinydm-attn", 16, true);
}

}  // namespace dmeval
