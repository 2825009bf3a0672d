#include "generators/samplers.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <map>

#include "core/error.h"
#include "generators/timestep_sequence.h"

namespace dmeval {

namespace {

struct StepInput {
  const torch::Tensor& x;
  const torch::Tensor& e;
  const torch::Tensor& at;
  const torch::Tensor& at_next;
  const torch::Tensor& t;  // float32 (n,)
  int64_t t_value;
  double eta;
  double quant_noise_std;  // PTQD's σ_q at this step (0: none)
  // Draws this step's noise; `needed` = false when it is multiplied by exactly zero.
  std::function<torch::Tensor(bool needed)> draw;
};

struct StepOutput {
  torch::Tensor x_next, x0, noise;
};

// ddim functions/denoising.py generalized_steps, one iteration.
StepOutput ddim_step(const StepInput& in) {
  StepOutput o;
  o.x0 = (in.x - in.e * (1 - in.at).sqrt()) / in.at.sqrt();
  torch::Tensor c1 = in.eta * ((1 - in.at / in.at_next) * (1 - in.at_next) / (1 - in.at)).sqrt();
  torch::Tensor c2 = ((1 - in.at_next) - c1.pow(2)).sqrt();
  if (in.quant_noise_std > 0) {
    // PTQD: part of the variance is already in ε̂ as quantization noise; remove it from the injected
    // noise: σ' = sqrt(σ² - D² σ_q²) when positive (tested on the first image), else 0.
    torch::Tensor d = c2 - (in.at_next * (1 - in.at) / in.at).sqrt();
    const double sigma = c1.flatten()[0].item<double>(), dd = d.flatten()[0].item<double>();
    const double removed = dd * dd * in.quant_noise_std * in.quant_noise_std;
    const double s2 = removed < sigma * sigma ? sigma * sigma - removed : 0.0;
    c1 = torch::full_like(c1, std::sqrt(s2));
    c2 = ((1 - in.at_next) - c1.pow(2)).sqrt();
  }
  o.noise = in.draw(in.eta != 0.0);
  o.x_next = in.at_next.sqrt() * o.x0 + c1 * o.noise + c2 * in.e;
  return o;
}

// ddim functions/denoising.py ddpm_steps, one iteration.
StepOutput ddpm_step(const StepInput& in) {
  StepOutput o;
  torch::Tensor beta_t = 1 - in.at / in.at_next;
  torch::Tensor x0 = (1.0 / in.at).sqrt() * in.x - (1.0 / in.at - 1).sqrt() * in.e;
  o.x0 = torch::clamp(x0, -1, 1);
  torch::Tensor mean =
      ((in.at_next.sqrt() * beta_t) * o.x0 + ((1 - beta_t).sqrt() * (1 - in.at_next)) * in.x) / (1.0 - in.at);
  o.noise = in.draw(in.t_value != 0);
  torch::Tensor mask = (1 - (in.t == 0).to(torch::kFloat32)).view({-1, 1, 1, 1});
  torch::Tensor logvar = beta_t.log();
  o.x_next = mean + mask * torch::exp(0.5 * logvar) * o.noise;
  return o;
}

struct SamplerEntry {
  StepOutput (*step)(const StepInput&);
  const char* description;
  bool uses_eta;
};

const std::map<std::string, SamplerEntry>& samplers() {
  static const std::map<std::string, SamplerEntry> kSamplers = {
      {"ddim", {ddim_step, "DDIM (ddim generalized_steps)", true}},
      {"ddpm", {ddpm_step, "DDPM ancestral (ddim ddpm_steps, x0 clipped to [-1, 1])", false}},
  };
  return kSamplers;
}

const SamplerEntry& entry(const std::string& name) {
  auto it = samplers().find(name);
  if (it == samplers().end()) fail("unknown sampler '{}': one of {}", name, fmt::join(sampler_names(), ", "));
  return it->second;
}

}  // namespace

const std::vector<std::string>& sampler_names() {
  static const std::vector<std::string> kNames = [] {
    std::vector<std::string> n;
    for (const auto& [k, v] : samplers()) n.push_back(k);
    return n;
  }();
  return kNames;
}

void validate(const SamplerSpec& spec) {
  const SamplerEntry& e = entry(spec.sampler);
  DMEVAL_CHECK(e.uses_eta || spec.eta == 0.0, "--eta applies to the ddim sampler only, not '{}'",
               spec.sampler);
  DMEVAL_CHECK(spec.eta >= 0.0 && std::isfinite(spec.eta), "--eta {} must be a finite non-negative number",
               spec.eta);
  timestep_sequence(spec.skip_type, spec.steps, 1000000);  // checks the skip type
}

std::string describe(const SamplerSpec& spec) {
  const SamplerEntry& e = entry(spec.sampler);
  return e.uses_eta
             ? fmt::format("{}, {} {} steps, eta {}", e.description, spec.skip_type, spec.steps, spec.eta)
             : fmt::format("{}, {} {} steps", e.description, spec.skip_type, spec.steps);
}

torch::Tensor run_sampler(const SamplerSpec& spec, const DiffusionSchedule& schedule, const EpsModel& model,
                          torch::Tensor x, NoiseSource& noise, int64_t first, const StepObserver* observer,
                          const QuantNoiseStd* quant_noise) {
  validate(spec);
  const SamplerEntry& e = entry(spec.sampler);
  const std::vector<int64_t> seq = timestep_sequence(spec.skip_type, spec.steps, schedule.num_timesteps);
  const auto pairs = timestep_pairs(seq);
  const int64_t n = x.size(0);
  const auto device = x.device();
  const std::vector<int64_t> image_shape(x.sizes().begin() + 1, x.sizes().end());
  torch::NoGradGuard no_grad;
  for (size_t k = 0; k < pairs.size(); ++k) {
    const auto [i, j] = pairs[k];
    // (torch.ones(n) * i): the timestep as a float32 vector; compute_alpha indexes with t.long().
    torch::Tensor t = torch::full({n}, static_cast<float>(i), torch::dtype(torch::kFloat32).device(device));
    torch::Tensor t_next =
        torch::full({n}, static_cast<float>(j), torch::dtype(torch::kFloat32).device(device));
    torch::Tensor at = compute_alpha(schedule, t.to(torch::kLong));
    torch::Tensor at_next = compute_alpha(schedule, t_next.to(torch::kLong));
    torch::Tensor eps = model(x, t, static_cast<int64_t>(k));
    DMEVAL_CHECK(eps.sizes() == x.sizes(), "the model returned shape [{}] for input [{}]",
                 fmt::join(eps.sizes(), ", "), fmt::join(x.sizes(), ", "));
    auto draw = [&](bool needed) {
      return noise.step(static_cast<int64_t>(k), first, n, image_shape, needed).to(device);
    };
    const double qn = quant_noise && *quant_noise ? (*quant_noise)(i) : 0.0;
    StepOutput o = e.step({x, eps, at, at_next, t, i, spec.eta, qn, draw});
    if (observer) (*observer)({static_cast<int64_t>(k), i, j, t, at, at_next, eps, o.x0, o.noise, o.x_next});
    x = o.x_next;
  }
  return x;
}

}  // namespace dmeval
