#include "metrics/inception_score.h"

#include <cmath>

#include "core/error.h"
#include "core/tensor_data.h"
#include "metrics/numpy_random.h"

namespace dmeval {

namespace {
void check_logits(const torch::Tensor& logits) {
  if (logits.dim() != 2 || logits.size(0) < 1)
    fail("Inception Score needs N x C logits, got {}", shape_str(logits.sizes().vec()));
  if (!torch::isfinite(logits).all().item<bool>()) fail("logits contain NaN or Inf");
}

// exp(mean_rows sum_c p (log p - log mean_rows p)) for one split.
double split_score(const torch::Tensor& p, const torch::Tensor& log_p) {
  torch::Tensor q = p.mean(0, true);
  torch::Tensor kl = (p * (log_p - q.log())).sum(1);
  return std::exp(kl.mean().item<double>());
}
}  // namespace

InceptionScore inception_score_torch_fidelity(const torch::Tensor& logits_unbiased, int64_t splits,
                                              bool shuffle, uint32_t seed) {
  check_logits(logits_unbiased);
  const int64_t n = logits_unbiased.size(0);
  if (splits < 1 || splits > n) fail("cannot split {} rows into {} splits", n, splits);
  // Split by split (softmax is per row, so this equals the whole-matrix computation): memory is one
  // split's rows, not N x C, and memory-mapped logits are read once.
  std::vector<int64_t> order;
  if (shuffle) order = NumpyRandomState(seed).permutation(n);
  std::vector<double> scores;
  for (int64_t i = 0; i < splits; ++i) {
    int64_t a = i * n / splits, b = (i + 1) * n / splits;
    torch::Tensor x =
        shuffle
            ? logits_unbiased.index_select(
                  0, torch::tensor(std::vector<int64_t>(order.begin() + a, order.begin() + b), torch::kInt64))
            : logits_unbiased.slice(0, a, b);
    x = x.to(torch::kFloat64);
    scores.push_back(split_score(torch::softmax(x, 1), torch::log_softmax(x, 1)));
  }
  InceptionScore r;
  r.splits = splits;
  r.scheme = shuffle ? "torch-fidelity: " + std::to_string(splits) + " splits after RandomState(" +
                           std::to_string(seed) + ").permutation"
                     : "torch-fidelity: " + std::to_string(splits) + " consecutive splits";
  for (double s : scores) r.mean += s / splits;
  for (double s : scores) r.std += (s - r.mean) * (s - r.mean) / splits;
  r.std = std::sqrt(r.std);
  return r;
}

InceptionScore inception_score_adm(const torch::Tensor& logits_unbiased, int64_t split_size) {
  check_logits(logits_unbiased);
  if (split_size < 1) fail("split size must be positive");
  const int64_t n = logits_unbiased.size(0);
  std::vector<double> scores;
  for (int64_t a = 0; a < n; a += split_size) {
    torch::Tensor part =
        torch::softmax(logits_unbiased.slice(0, a, std::min(n, a + split_size)).to(torch::kFloat32), 1);
    // ADM: kl = part * (log(part) - log(mean(part, 0))); exp(mean(sum(kl, 1))) in float32.
    torch::Tensor kl = part * (part.log() - part.mean(0, true).log());
    scores.push_back(static_cast<double>(kl.sum(1).mean().exp().item<float>()));
  }
  InceptionScore r;
  r.splits = static_cast<int64_t>(scores.size());
  r.scheme = "ADM: consecutive splits of " + std::to_string(split_size) + " rows, float32";
  for (double s : scores) r.mean += s;
  r.mean = static_cast<double>(static_cast<float>(r.mean / scores.size()));
  return r;
}

}  // namespace dmeval
