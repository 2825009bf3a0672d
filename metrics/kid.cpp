#include "metrics/kid.h"

#include <cmath>

#include "core/error.h"
#include "core/tensor_data.h"
#include "metrics/numpy_random.h"

namespace dmeval {

double mmd2_polynomial(const torch::Tensor& x, const torch::Tensor& y) {
  torch::NoGradGuard no_grad;
  if (x.dim() != 2 || y.dim() != 2 || x.size(1) != y.size(1))
    fail("KID needs two N x D feature sets of equal D, got {} and {}", shape_str(x.sizes().vec()),
         shape_str(y.sizes().vec()));
  if (x.size(0) < 2 || y.size(0) < 2) fail("KID needs at least 2 rows per set");
  torch::Tensor a = x.to(torch::kFloat64), b = y.to(torch::kFloat64);
  const double d = static_cast<double>(a.size(1));
  auto kernel = [d](const torch::Tensor& u, const torch::Tensor& v) {
    return (torch::mm(u, v.t()) / d + 1).pow(3);
  };
  torch::Tensor kxx = kernel(a, a), kyy = kernel(b, b), kxy = kernel(a, b);
  const double m = static_cast<double>(a.size(0)), n = static_cast<double>(b.size(0));
  double sxx = (kxx.sum() - kxx.diagonal().sum()).item<double>() / (m * (m - 1));
  double syy = (kyy.sum() - kyy.diagonal().sum()).item<double>() / (n * (n - 1));
  return sxx + syy - 2 * kxy.sum().item<double>() / (m * n);
}

KernelDistance kid_torch_fidelity(const torch::Tensor& x1, const torch::Tensor& x2, int64_t subsets,
                                  int64_t subset_size, uint32_t seed) {
  if (x1.size(0) < subset_size || x2.size(0) < subset_size)
    fail("KID subset size {} is larger than the sets ({} and {} rows); lower --kid-subset-size", subset_size,
         x1.size(0), x2.size(0));
  NumpyRandomState rng(seed);
  std::vector<double> v;
  for (int64_t s = 0; s < subsets; ++s) {
    auto i1 = rng.choice_without_replacement(x1.size(0), subset_size);
    auto i2 = rng.choice_without_replacement(x2.size(0), subset_size);
    v.push_back(
        mmd2_polynomial(x1.index_select(0, torch::tensor(i1)), x2.index_select(0, torch::tensor(i2))));
  }
  KernelDistance k;
  k.subsets = subsets;
  k.subset_size = subset_size;
  for (double x : v) k.mean += x / subsets;
  for (double x : v) k.std += (x - k.mean) * (x - k.mean) / subsets;
  k.std = std::sqrt(k.std);
  return k;
}

KernelDistance kid_full(const torch::Tensor& x1, const torch::Tensor& x2) {
  KernelDistance k;
  k.mean = mmd2_polynomial(x1, x2);
  k.subsets = 1;
  k.subset_size = std::min(x1.size(0), x2.size(0));
  return k;
}

}  // namespace dmeval
