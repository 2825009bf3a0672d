// BinaryDM's Low-rank Representation Mimicking (spec binarydm.md §5): for every block output F
// (B, C, H, W) a projection K (W × q) of the width axis, computed once from the teacher's first batch by
// torch.pca_lowrank(F.reshape(-1, W), q, center=True, niter=2) — a randomized algorithm whose Gaussian
// test matrix comes from the framework's global generator, ported here step for step (PyTorch 1.13
// torch/_lowrank.py) — and the loss mean_f MSE(F_s K, F_t K).
#pragma once

#include <torch/types.h>

#include <optional>
#include <vector>

namespace dmeval {

// q = W // 4 when that exceeds 2, else 2 (the reference's rule; W must be at least 2).
int64_t lrm_rank(int64_t width);

// V of torch.pca_lowrank(a, q, center=True, niter) for a float matrix a (m × n): (n × q) with
// orthonormal columns. `r`: the Gaussian test matrix to use ((m, q) when m < n or n > q, else (n, q));
// undefined: drawn with torch::randn from the global generator, as the reference draws it.
torch::Tensor pca_lowrank_v(const torch::Tensor& a, int64_t q, int64_t niter = 2,
                            const torch::Tensor& r = {});

class LrmLoss {
 public:
  // The cached projections (one per feature; empty until the first call).
  const std::vector<torch::Tensor>& projections() const { return k_; }
  void set_projections(std::vector<torch::Tensor> k) { k_ = std::move(k); }
  // mean over features of MSE(S_f K_f, T_f K_f); the first call computes K_f from the teacher features
  // (drawing from the global generator in feature order).
  torch::Tensor operator()(const std::vector<torch::Tensor>& student,
                           const std::vector<torch::Tensor>& teacher);

 private:
  std::vector<torch::Tensor> k_;
};

}  // namespace dmeval
