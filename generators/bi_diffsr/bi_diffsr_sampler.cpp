#include "generators/bi_diffsr/bi_diffsr_sampler.h"

#include "core/error.h"

namespace dmeval {

BiDiffSrSchedule bi_diffsr_schedule(int64_t T, double beta_start, double beta_end) {
  DMEVAL_CHECK(T >= 1, "BI-DiffSR schedule: {} training timesteps", T);
  BiDiffSrSchedule s;
  s.num_train_timesteps = T;
  s.betas = torch::linspace(beta_start, beta_end, T, torch::kFloat32);
  s.alphas_cumprod = torch::cumprod(1.0 - s.betas, 0);
  return s;
}

std::vector<int64_t> bi_diffsr_timesteps(int64_t T, int64_t steps) {
  DMEVAL_CHECK(steps >= 1 && steps <= T, "BI-DiffSR sampler: {} steps for {} training timesteps", steps, T);
  const int64_t r = T / steps;
  std::vector<int64_t> out;
  for (int64_t i = steps - 1; i >= 0; --i) out.push_back(i * r);
  return out;
}

BiDiffSrStep bi_diffsr_ddim_step(const BiDiffSrSchedule& s, int64_t steps, const torch::Tensor& eps,
                                 int64_t t, const torch::Tensor& x) {
  const int64_t prev = t - s.num_train_timesteps / steps;
  const torch::Tensor a = s.alphas_cumprod[t];
  const torch::Tensor a_prev = prev >= 0 ? s.alphas_cumprod[prev] : torch::tensor(1.0f);
  const torch::Tensor b = 1 - a;
  BiDiffSrStep r;
  r.x0_pred = (x - b.pow(0.5).to(x.device()) * eps) / a.pow(0.5).to(x.device());
  r.x0_clipped = r.x0_pred.clamp(-1, 1);
  // std_dev_t = η · σ = 0: the direction is sqrt(1 − ᾱ_prev − 0) · ε.
  r.x_prev = a_prev.pow(0.5).to(x.device()) * r.x0_clipped + (1 - a_prev).pow(0.5).to(x.device()) * eps;
  return r;
}

torch::Tensor bi_diffsr_sample(BiDiffSrUNetImpl& net, const BiDiffSrSchedule& s, int64_t steps,
                               const torch::Tensor& cond, const torch::Tensor& x_T,
                               const BiDiffSrObserver& observe) {
  torch::NoGradGuard no_grad;
  torch::Tensor x = x_T;
  const auto ts = bi_diffsr_timesteps(s.num_train_timesteps, steps);
  for (size_t i = 0; i < ts.size(); ++i) {
    const torch::Tensor t =
        torch::full({x.size(0), 1}, ts[i], torch::TensorOptions().dtype(torch::kLong).device(x.device()));
    const torch::Tensor eps = net.forward(x, cond, t);
    BiDiffSrStep st = bi_diffsr_ddim_step(s, steps, eps, ts[i], x);
    if (observe) observe(i, ts[i], x, eps, st);
    x = st.x_prev;
  }
  return x;
}

torch::Tensor bi_diffsr_pad(const torch::Tensor& x, int64_t m, int64_t* pad_h, int64_t* pad_w) {
  const int64_t h = x.size(-2), w = x.size(-1);
  const int64_t ph = h % m ? m - h % m : 0, pw = w % m ? m - w % m : 0;
  if (pad_h) *pad_h = ph;
  if (pad_w) *pad_w = pw;
  if (ph == 0 && pw == 0) return x;
  return torch::reflection_pad2d(x, {0, pw, 0, ph});
}

torch::Tensor bi_diffsr_to_uint8_bgr(const torch::Tensor& image) {
  DMEVAL_CHECK(image.dim() == 3 && image.size(0) == 3, "tensor2img: a (3, H, W) image, not {} dimensions",
               image.dim());
  torch::Tensor v = image.to(torch::kFloat32).cpu().clamp(0, 1);
  v = (v * 255.0).round().to(torch::kUInt8);
  return v.flip({0}).permute({1, 2, 0}).contiguous();  // RGB -> BGR, HWC
}

}  // namespace dmeval
