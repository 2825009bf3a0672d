// Measurement noise of the sample-based metrics: the standard deviation of a metric when the
// generated samples are resampled with replacement (bootstrap). Regression reports compare a change
// against it, so a nightly job does not fail on sampling noise.
//   * FID: recompute the generated statistics on each resample (the reference is fixed);
//   * IS: recompute on resampled logits with the same split scheme;
//   * precision (a mean of per-sample indicators): the bootstrap limit sqrt(p (1 - p) / N) is exact;
//     recall uses sqrt(r (1 - r) / N_ref), the reference-side part of its noise.
// Resampling indices come from a fixed-seed generator, so the estimate is reproducible.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>

#include "metrics/moments.h"

namespace dmeval {

struct BootstrapOptions {
  int64_t repeats = 10;
  uint64_t seed = 2020;
};

// Std over `repeats` resamples of statistic(features[resample]).
double bootstrap_std(const torch::Tensor& rows, const std::function<double(const torch::Tensor&)>& statistic,
                     const BootstrapOptions& options);

double fid_bootstrap_std(const torch::Tensor& gen_features, const FeatureStats& reference,
                         const BootstrapOptions& options);
double binomial_std(double proportion, int64_t n);

}  // namespace dmeval
