#include "generators/ldm/ldm_sampler.h"

#include <cmath>
#include <vector>

#include "core/error.h"

namespace dmeval {

LdmSchedule ldm_linear_schedule(double linear_start, double linear_end, int64_t T) {
  DMEVAL_CHECK(T >= 2 && linear_start > 0 && linear_end > linear_start, "bad LDM schedule ({} .. {}, T = {})",
               linear_start, linear_end, T);
  LdmSchedule s;
  s.num_timesteps = T;
  // torch.linspace(sqrt(start), sqrt(end), T, float64) ** 2, with linspace written out: ATen's kernel
  // computes start + step·i below the halfway point and end − step·(T − 1 − i) above it, but its
  // vectorised path starts each vector from such a base and adds lane·step, so its last bits depend on
  // the CPU's vector width (measured here: ATen's default vs AVX2 kernels differ in betas_f64). The
  // scalar formula is the same on every CPU and within a few float64 ulp of any of them.
  const double a = std::sqrt(linear_start), b = std::sqrt(linear_end);
  const double step = (b - a) / static_cast<double>(T - 1);
  std::vector<double> betas(static_cast<size_t>(T));
  for (int64_t i = 0; i < T; ++i) {
    const double v =
        i < T / 2 ? a + step * static_cast<double>(i) : b - step * static_cast<double>(T - i - 1);
    betas[static_cast<size_t>(i)] = v * v;
  }
  s.betas_f64 = torch::tensor(betas, torch::kFloat64);
  torch::Tensor ac = torch::cumprod(1.0 - s.betas_f64, 0);
  torch::Tensor ac_prev = torch::cat({torch::ones({1}, torch::kFloat64), ac.slice(0, 0, T - 1)});
  s.betas = s.betas_f64.to(torch::kFloat32);
  s.alphas_cumprod = ac.to(torch::kFloat32);
  s.alphas_cumprod_prev = ac_prev.to(torch::kFloat32);
  s.sqrt_one_minus_alphas_cumprod = torch::sqrt(1.0 - ac).to(torch::kFloat32);
  return s;
}

LdmDdimConstants ldm_ddim_constants(const LdmSchedule& s, int64_t S, double eta) {
  DMEVAL_CHECK(S >= 1 && S <= s.num_timesteps, "DDIM steps {} outside 1..{}", S, s.num_timesteps);
  LdmDdimConstants c;
  c.eta = eta;
  const int64_t step = s.num_timesteps / S;
  for (int64_t t = 0; t < s.num_timesteps; t += step) c.timesteps.push_back(t + 1);
  torch::Tensor idx = torch::tensor(c.timesteps, torch::kLong);
  c.alphas = s.alphas_cumprod.index_select(0, idx);  // float32
  torch::Tensor prev =
      torch::cat({s.alphas_cumprod.slice(0, 0, 1), c.alphas.slice(0, 0, -1)}).to(torch::kFloat64);
  // σ = η sqrt((1 - a_prev) / (1 - a) (1 - a / a_prev)): the reference divides a float64 array by a
  // float32 tensor, which evaluates the reciprocal of (1 - a) in float32 (spec §6 quirk).
  torch::Tensor r = torch::reciprocal(1 - c.alphas).to(torch::kFloat64);
  torch::Tensor sig = eta * torch::sqrt(r * (1 - prev) * (1 - c.alphas.to(torch::kFloat64) / prev));
  c.alphas_prev = prev.to(torch::kFloat32);
  c.sigmas = sig.to(torch::kFloat32);
  c.sqrt_one_minus_alphas = torch::sqrt(1 - c.alphas);  // float32
  return c;
}

namespace {

// The step of p_sample_ddim / PLMS's get_x_prev_and_pred_x0 (float32, the reference's order).
LdmStep ddim_step(const LdmDdimConstants& c, int64_t i, const torch::Tensor& x, const torch::Tensor& e,
                  const LdmNoise& noise, int64_t draw) {
  auto full = [&](const torch::Tensor& v) {
    return torch::full({x.size(0), 1, 1, 1}, v[i].item<float>(), x.options());
  };
  LdmStep s;
  s.a_t = full(c.alphas), s.a_prev = full(c.alphas_prev), s.sigma_t = full(c.sigmas);
  torch::Tensor sqrt_one_minus_at = full(c.sqrt_one_minus_alphas);
  s.pred_x0 = (x - sqrt_one_minus_at * e) / s.a_t.sqrt();
  torch::Tensor dir_xt = (1. - s.a_prev - s.sigma_t.pow(2)).sqrt() * e;
  s.noise = noise(draw, x.sizes()).to(x.device());
  torch::Tensor n = s.sigma_t * s.noise * 1.0;
  s.x_prev = s.a_prev.sqrt() * s.pred_x0 + dir_xt + n;
  s.eps = e;
  return s;
}

void report(LdmTrace* trace, LdmStep s, const LdmDdimConstants& c, int64_t k, int64_t i) {
  if (!trace) return;
  trace->x_inter.push_back(s.x_prev);
  trace->pred_x0.push_back(s.pred_x0);
  if (!trace->on_step) return;
  s.k = k;
  s.t = c.timesteps[static_cast<size_t>(i)];
  s.t_prev = i > 0 ? c.timesteps[static_cast<size_t>(i - 1)] : 0;
  trace->on_step(s);
}

torch::Tensor t_full(const torch::Tensor& x, int64_t t) {
  return torch::full({x.size(0)}, t, torch::dtype(torch::kLong).device(x.device()));
}

}  // namespace

torch::Tensor ldm_ddim_sample(const LdmDdimConstants& c, const LdmEps& eps, const torch::Tensor& x_T,
                              const LdmNoise& noise, LdmTrace* trace) {
  torch::NoGradGuard no_grad;
  torch::Tensor x = x_T;
  if (trace) trace->x_inter.push_back(x);
  const int64_t S = static_cast<int64_t>(c.timesteps.size());
  for (int64_t k = 0; k < S; ++k) {
    const int64_t i = S - 1 - k, t = c.timesteps[static_cast<size_t>(i)];
    if (trace) trace->model_t.push_back(t);
    torch::Tensor e = eps(x, t_full(x, t));
    LdmStep s = ddim_step(c, i, x, e, noise, k);
    x = s.x_prev;
    report(trace, std::move(s), c, k, i);
  }
  return x;
}

torch::Tensor ldm_plms_sample(const LdmDdimConstants& c, const LdmEps& eps, const torch::Tensor& x_T,
                              const LdmNoise& noise, LdmTrace* trace) {
  DMEVAL_CHECK(c.eta == 0, "PLMS sampling needs eta = 0 (got {})", c.eta);
  torch::NoGradGuard no_grad;
  torch::Tensor x = x_T;
  if (trace) trace->x_inter.push_back(x);
  const int64_t S = static_cast<int64_t>(c.timesteps.size());
  std::vector<torch::Tensor> old;  // the last three un-combined ε, newest last
  int64_t draw = 0;
  for (int64_t k = 0; k < S; ++k) {
    const int64_t i = S - 1 - k, t = c.timesteps[static_cast<size_t>(i)];
    const int64_t t_next = c.timesteps[static_cast<size_t>(std::max<int64_t>(i - 1, 0))];
    if (trace) trace->model_t.push_back(t);
    torch::Tensor e = eps(x, t_full(x, t)), e_prime;
    if (old.empty()) {
      torch::Tensor x_tmp = ddim_step(c, i, x, e, noise, draw++).x_prev;
      if (trace) trace->model_t.push_back(t_next);
      torch::Tensor e_next = eps(x_tmp, t_full(x, t_next));
      e_prime = (e + e_next) / 2;
    } else if (old.size() == 1) {
      e_prime = (3 * e - old.end()[-1]) / 2;
    } else if (old.size() == 2) {
      e_prime = (23 * e - 16 * old.end()[-1] + 5 * old.end()[-2]) / 12;
    } else {
      e_prime = (55 * e - 59 * old.end()[-1] + 37 * old.end()[-2] - 9 * old.end()[-3]) / 24;
    }
    LdmStep s = ddim_step(c, i, x, e_prime, noise, draw++);
    x = s.x_prev;
    old.push_back(e);
    if (old.size() > 3) old.erase(old.begin());
    report(trace, std::move(s), c, k, i);
  }
  return x;
}

LdmEps ldm_guided_eps(LdmNet net, torch::Tensor context, torch::Tensor uc, double scale) {
  if (scale == 1.0 || !uc.defined())
    return [net, context](const torch::Tensor& x, const torch::Tensor& t) { return net(x, t, context); };
  return [net, context, uc, scale](const torch::Tensor& x, const torch::Tensor& t) {
    torch::Tensor out = net(torch::cat({x, x}), torch::cat({t, t}), torch::cat({uc, context}));
    auto parts = out.chunk(2);
    return parts[0] + scale * (parts[1] - parts[0]);
  };
}

}  // namespace dmeval
