// Inception Score, IS = exp(E_x KL(p(y|x) || p(y))), per split then averaged (shared/spec §5).
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

namespace dmeval {

struct InceptionScore {
  double mean = 0;
  double std = 0;  // population std over splits (torch-fidelity); 0 for ADM (not reported)
  int64_t splits = 0;
  std::string scheme;  // how rows were split, for provenance
};

// torch-fidelity `isc`: float64 softmax of bias-free logits; rows permuted with
// numpy RandomState(seed).permutation(N) when shuffle; split i = rows [i N/s, (i+1) N/s).
InceptionScore inception_score_torch_fidelity(const torch::Tensor& logits_unbiased, int64_t splits = 10,
                                              bool shuffle = true, uint32_t seed = 2020);
// ADM evaluator: float32, consecutive splits of split_size rows (last may be shorter), no shuffle.
InceptionScore inception_score_adm(const torch::Tensor& logits_unbiased, int64_t split_size = 5000);

}  // namespace dmeval
