// Mergeable first and second moments of feature vectors (for FID/sFID statistics).
//
// Exactness of merges: features are grouped into fixed blocks by their global image index
// (index / block_size). Each complete block's sum and outer-product sum are computed in float64
// in a fixed order, then added into 128-bit fixed-point accumulators (resolution 2^-64). Integer
// addition is associative, so any split into shards, any batch size and any merge order give
// bit-identical totals, and therefore the same mu and sigma as one uninterrupted pass. Rows of
// incomplete blocks wait in a pending buffer (carried through merge and save/load).
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

namespace dmeval {

struct FeatureStats {
  torch::Tensor mu;     // float64 [D]
  torch::Tensor sigma;  // float64 [D, D], unbiased (divisor N-1), as np.cov(rowvar=False)
  int64_t count = 0;
};

class MomentAccumulator {
 public:
  explicit MomentAccumulator(int64_t dim, int64_t block_size = 256);

  // rows: N x D float32 features of images first_index .. first_index + N - 1.
  void add(int64_t first_index, const torch::Tensor& rows);
  // Adds another accumulator's images (disjoint indices); exact.
  void merge(const MomentAccumulator& other);

  int64_t dim() const { return dim_; }
  int64_t count() const;
  // Folds pending rows (incomplete blocks) and returns mu and sigma. Needs count() >= 2.
  FeatureStats finalize() const;

  // Persist the exact state (npz) so shards made elsewhere can be merged later. `provenance` (e.g.
  // JSON naming the network, weights and preprocessing) is stored with it, so a merge can refuse
  // shards that were computed differently.
  void save(const std::string& path, const std::string& provenance = "") const;
  static MomentAccumulator load(const std::string& path, std::string* provenance = nullptr);

 private:
  void fold_block(const std::vector<std::pair<int64_t, torch::Tensor>>& rows, __int128* sum,
                  __int128* outer) const;

  int64_t dim_;
  int64_t block_;
  int64_t folded_count_ = 0;
  std::vector<__int128> sum_;    // D
  std::vector<__int128> outer_;  // D*(D+1)/2, upper triangle row-major
  std::map<int64_t, std::vector<std::pair<int64_t, torch::Tensor>>> pending_;  // block -> (index, row)
};

// Mean and unbiased covariance of an N x D matrix, computed directly in float64 (reference path).
FeatureStats stats_from_features(const torch::Tensor& features);

}  // namespace dmeval
