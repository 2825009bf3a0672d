// Improved precision and recall (Kynkäänniemi et al. 2019) as ADM and torch-fidelity compute
// them (shared/spec §6): k-th nearest-neighbour radii within each set counting the point itself,
// a point is covered if its distance to some point of the other set is <= that point's radius.
// Distances by blocked GEMM (|u|^2 - 2 u.v + |v|^2) in fixed-size tiles: neither the N x N matrix
// nor a block-by-N strip is materialised, so working memory does not grow with N.
#pragma once

#include <torch/torch.h>

namespace dmeval {

struct PrecisionRecall {
  double precision = 0;  // fraction of generated samples inside the real manifold
  double recall = 0;     // fraction of real samples inside the generated manifold
  double f_score = 0;    // torch-fidelity's 2PR / max(1e-5, P + R)
};

struct PrecisionRecallOptions {
  int64_t k = 3;
  int64_t block_rows = 2048;
  int64_t block_cols = 8192;  // distance tiles are block_rows x block_cols: memory independent of N
  torch::ScalarType dtype = torch::kFloat64;  // kFloat32 is faster; kFloat16 emulates ADM's TF block
};

PrecisionRecall precision_recall(const torch::Tensor& real, const torch::Tensor& generated,
                                 const PrecisionRecallOptions& options = {});

// Squared k-NN radius of every row: the (k+1)-th smallest squared distance, counting the row itself.
torch::Tensor knn_radii(const torch::Tensor& x, const PrecisionRecallOptions& options);

}  // namespace dmeval
