#include "generators/beta_schedule.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <cmath>

#include "core/error.h"

namespace dmeval {

namespace {
// numpy.linspace(start, stop, n) for float64, endpoint=True.
std::vector<double> np_linspace(double start, double stop, int64_t n) {
  std::vector<double> y(static_cast<size_t>(n));
  if (n == 1) {
    y[0] = start;
    return y;
  }
  const double delta = stop - start;
  const double step = delta / static_cast<double>(n - 1);
  for (int64_t i = 0; i < n; ++i) {
    if (step == 0)
      y[i] = static_cast<double>(i) / static_cast<double>(n - 1) * delta + start;
    else
      y[i] = static_cast<double>(i) * step + start;
  }
  y[n - 1] = stop;
  return y;
}
}  // namespace

const std::vector<std::string>& beta_schedule_names() {
  static const std::vector<std::string> kNames = {"linear", "quad", "const", "jsd", "sigmoid"};
  return kNames;
}

bool beta_schedule_uses_exp(const std::string& name) {
  return name == "sigmoid";
}

std::vector<double> beta_schedule(const std::string& name, double beta_start, double beta_end, int64_t T) {
  DMEVAL_CHECK(T >= 1, "number of diffusion timesteps must be positive, got {}", T);
  std::vector<double> b;
  if (name == "linear") {
    b = np_linspace(beta_start, beta_end, T);
  } else if (name == "quad") {
    b = np_linspace(std::pow(beta_start, 0.5), std::pow(beta_end, 0.5), T);
    for (double& v : b) v = v * v;  // NumPy's `** 2` is a square
  } else if (name == "const") {
    b.assign(static_cast<size_t>(T), beta_end);
  } else if (name == "jsd") {
    b = np_linspace(static_cast<double>(T), 1.0, T);
    for (double& v : b) v = 1.0 / v;
  } else if (name == "sigmoid") {
    b = np_linspace(-6.0, 6.0, T);
    // ddim: sigmoid(x) = 1 / (np.exp(-x) + 1). NumPy's vectorised exp differs from the C library's by
    // up to 2 ulp, so these float64 values can differ in the last bits; the float32 betas the samplers
    // use are identical (golden test).
    for (double& v : b) v = 1.0 / (std::exp(-v) + 1.0) * (beta_end - beta_start) + beta_start;
  } else {
    fail("unknown beta schedule '{}': one of {}", name, fmt::join(beta_schedule_names(), ", "));
  }
  return b;
}

DiffusionSchedule make_schedule(const DiffusionConfig& config) {
  DiffusionSchedule s;
  s.num_timesteps = config.num_timesteps;
  s.betas_f64 = beta_schedule(config.beta_schedule, config.beta_start, config.beta_end, config.num_timesteps);
  for (double b : s.betas_f64)
    DMEVAL_CHECK(b > 0 && b < 1, "beta schedule '{}' ({}..{}) gives beta = {} outside (0, 1)",
                 config.beta_schedule, config.beta_start, config.beta_end, b);
  s.betas = torch::tensor(s.betas_f64, torch::kFloat64).to(torch::kFloat32);
  torch::Tensor ext = torch::cat({torch::zeros({1}, torch::kFloat32), s.betas}, 0);
  s.alphas_cumprod_ext = (1 - ext).cumprod(0);
  return s;
}

torch::Tensor compute_alpha(const DiffusionSchedule& s, const torch::Tensor& t) {
  return s.alphas_cumprod_ext.to(t.device()).index_select(0, t.to(torch::kLong) + 1).view({-1, 1, 1, 1});
}

}  // namespace dmeval
