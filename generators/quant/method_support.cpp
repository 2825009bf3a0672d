#include "generators/quant/method_support.h"

#include <torch/torch.h>

#include "core/error.h"

namespace dmeval {

void add_trajectory_settings(nlohmann::ordered_json& s, int64_t images, int64_t steps,
                             const std::string& skip, double eta, int64_t seed) {
  s["traj_images"] = images;
  s["traj_steps"] = steps;
  s["traj_skip"] = skip;
  s["traj_eta"] = eta;
  s["traj_batch"] = 32;
  s["seed"] = seed;
}

Trajectories trajectories_from_settings(QuantContext& ctx, DiffusionModel& fp) {
  const auto& s = ctx.settings;
  SamplerSpec spec;
  spec.sampler = "ddim";
  spec.skip_type = s.at("traj_skip").get<std::string>();
  spec.steps = s.at("traj_steps").get<int64_t>();
  spec.eta = s.at("traj_eta").get<double>();
  auto noise = make_noise_source("per-image", s.at("seed").get<uint64_t>());
  const int64_t n = s.at("traj_images").get<int64_t>();
  fp.validate_sampler(spec);
  ctx.log(fmt::format("calibration trajectories: {} images, {}", n, fp.describe_sampler(spec)));
  const int64_t batch = s.at("traj_batch").get<int64_t>();
  // Without a conditioning rule a conditional model samples as its eps({}) allows (the ldm family
  // refuses, naming what it needs).
  if (ctx.conditioning) {
    return record_trajectories(
        fp, [&](const Conditioning& c) { return fp.eps(ctx.run, c); }, ctx.conditioning, spec, *noise, n,
        batch, ctx.run.device);
  }
  return record_trajectories(fp, fp.eps(ctx.run), spec, *noise, n, batch, ctx.run.device);
}

Conditioning probe_conditioning(const DiffusionModel& m, int64_t n) {
  Conditioning c;
  for (const std::string& kind : m.conditioning()) {
    DMEVAL_CHECK(kind == "class", "model {}: no probe input for {} conditioning", m.name(), kind);
    c.class_labels = torch::zeros({n}, torch::kLong);
  }
  return c;
}

void apply_first_last(QuantPlan& plan, const torch::nn::Module& network, const std::string& mode) {
  DMEVAL_CHECK(mode == "same" || mode == "8" || mode == "fp", "first_last = '{}' must be same, 8 or fp",
               mode);
  if (mode == "same") return;
  const auto layers = list_layers(network);
  for (size_t i = 0; i < layers.size(); ++i) {
    if (layers[i].role != LayerRole::kFirstConv && layers[i].role != LayerRole::kLastConv) continue;
    LayerQuantSpec& l = plan.layers[i];
    if (mode == "fp") {
      l.weight.reset();
      l.act.reset();
    } else {
      if (l.weight) l.weight->bits = 8;
      if (l.act) l.act->bits = 8;
    }
  }
}

UNetQuantizedModel::UNetQuantizedModel(std::shared_ptr<DiffusionModel> model, QuantPlan plan,
                                       UNetRunOptions run)
    : QuantizedModel(run), model_(std::move(model)) {
  auto handles = layer_handles(model_->network());
  for (size_t i = 0; i < handles.size(); ++i)
    bits_[handles[i].name] = plan.layers[i].weight ? plan.layers[i].weight->bits : 32.0;
  qunet_ = std::make_unique<QuantizedUNet>(model_, std::move(plan));
}

double UNetQuantizedModel::weight_bits(const LayerInfo& layer) const {
  auto it = bits_.find(layer.name);
  return it == bits_.end() ? 32.0 : it->second;
}

double UNetQuantizedModel::scale_bytes() const {
  double b = 0;
  for (auto& n : qunet_->quantizers()) {
    const torch::Tensor& d = n.uniform ? n.uniform->delta() : n.adaround->delta();
    if (d.defined()) b += 8.0 * static_cast<double>(d.numel());
  }
  return b;
}

void UNetQuantizedModel::build_structure() {
  torch::NoGradGuard no_grad;
  std::vector<int64_t> shape = model_->sample_shape();
  shape.insert(shape.begin(), 1);
  const auto device = model_->network().parameters().front().device();
  qunet_->set_quant_state(false, false);
  qunet_->forward(torch::zeros(shape, torch::TensorOptions().device(device)),
                  torch::zeros({1}, torch::TensorOptions().device(device)), probe_conditioning(*model_, 1));
}

void UNetQuantizedModel::restore(const std::map<std::string, torch::Tensor>& state,
                                 const std::string& source) {
  build_structure();
  qunet_->load_quantizer_state(state, source);
}

}  // namespace dmeval
