// A reference set as the generative metrics use it: statistics of the pool and spatial features
// (Fréchet distances), optionally every image's pool features (precision/recall), the provenance
// (feature network, weights hash, preprocessing) and the image count. Stored as an .npz with the
// names pytorch-fid and ADM's evaluator use (mu, sigma; mu_s, sigma_s) plus `features`, `count` and
// `provenance`, so those tools read dmeval's files and dmeval reads theirs (a file without
// `provenance` is accepted as the user's claim and recorded by its SHA-256).
#pragma once

#include <torch/types.h>

#include <optional>
#include <string>

#include "metrics/moments.h"

namespace dmeval {

struct ReferenceStats {
  FeatureStats pool;
  std::optional<FeatureStats> spatial;
  torch::Tensor features;  // N x D float32 pool features, or undefined
  std::string provenance;  // the scoring network's provenance line; "" when the file does not say
  int64_t count = -1;      // images; -1 when the file does not say
};

// Throws naming the file when it holds no mu/sigma or their shapes disagree.
ReferenceStats read_reference_stats(const std::string& path);
// Atomic; deflated.
void write_reference_stats(const std::string& path, const ReferenceStats& r);

}  // namespace dmeval
