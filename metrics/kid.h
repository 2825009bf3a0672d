// Kernel Inception Distance: unbiased MMD^2 with the polynomial kernel (x.y/d + 1)^3 (spec §6.4).
#pragma once

#include <torch/torch.h>

namespace dmeval {

struct KernelDistance {
  double mean = 0;
  double std = 0;  // population std over subsets
  int64_t subsets = 0;
  int64_t subset_size = 0;
};

// Unbiased MMD^2 of two sets (float64).
double mmd2_polynomial(const torch::Tensor& x, const torch::Tensor& y);
// torch-fidelity `kid`: `subsets` subsets of `subset_size` rows, drawn without replacement with
// numpy RandomState(seed) (set 1 then set 2 per subset). Needs subset_size <= both set sizes.
KernelDistance kid_torch_fidelity(const torch::Tensor& x1, const torch::Tensor& x2, int64_t subsets = 100,
                                  int64_t subset_size = 1000, uint32_t seed = 2020);
// One subset = the full sets: deterministic, what clean-fid also gives when sizes are equal.
KernelDistance kid_full(const torch::Tensor& x1, const torch::Tensor& x2);

}  // namespace dmeval
