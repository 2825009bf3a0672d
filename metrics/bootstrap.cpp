#include "metrics/bootstrap.h"

#include <torch/torch.h>

#include <cmath>
#include <random>

#include "core/error.h"
#include "metrics/frechet.h"

namespace dmeval {

double bootstrap_std(const torch::Tensor& rows, const std::function<double(const torch::Tensor&)>& statistic,
                     const BootstrapOptions& o) {
  const int64_t n = rows.size(0);
  if (n < 2 || o.repeats < 2)
    fail("bootstrap needs at least 2 rows and 2 repeats (got {} and {})", n, o.repeats);
  std::mt19937_64 rng(o.seed);
  std::uniform_int_distribution<int64_t> pick(0, n - 1);
  std::vector<double> values;
  for (int64_t r = 0; r < o.repeats; ++r) {
    std::vector<int64_t> idx(static_cast<size_t>(n));
    for (auto& i : idx) i = pick(rng);
    values.push_back(statistic(rows.index_select(0, torch::tensor(idx, torch::kInt64))));
  }
  double mean = 0;
  for (double v : values) mean += v / values.size();
  double var = 0;
  for (double v : values) var += (v - mean) * (v - mean) / (values.size() - 1);
  return std::sqrt(var);
}

double fid_bootstrap_std(const torch::Tensor& gen, const FeatureStats& reference, const BootstrapOptions& o) {
  return bootstrap_std(
      gen, [&](const torch::Tensor& x) { return frechet_distance(stats_from_features(x), reference).value; },
      o);
}

double binomial_std(double p, int64_t n) {
  return n > 0 ? std::sqrt(std::max(0.0, p * (1 - p)) / n) : 0.0;
}

}  // namespace dmeval
