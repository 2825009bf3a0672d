// The feature network a generation run is scored with, behind one interface: shapes-net (the
// embedded profile's classifier) or the FID Inception network. The extractor turns an image batch
// into rows of three taps by role — "pool" (Fréchet distance, precision/recall), "spatial" (sFID),
// "logits" (IS) — always in fixed micro-batches, so an image's rows never depend on its neighbours
// (chunked, resumed and sharded runs get the same features).
#pragma once

#include <torch/types.h>

#include <functional>
#include <map>
#include <string>

#include "core/image_sink.h"

namespace dmeval {

using FeatureExtractor = std::function<std::map<std::string, torch::Tensor>(const ImageBatch& batch)>;

// What makes features comparable across files (a reference made by `dmeval stats` and a run's
// samples): the network, its weights' SHA-256 and the preprocessing.
inline std::string features_key(const std::string& network, const std::string& weights_sha256,
                                const std::string& mode) {
  return network + " " + weights_sha256 + "; " + mode;
}

struct ScoringNetwork {
  std::string name;   // "shapes-net" | "inception"
  std::string label;  // the feature network as results record it ("FID Inception (pt_inception-2015-12-05)")
  std::string metric_suffix;   // appended to metric names: "[shapes-net]"; "" for Inception (the papers')
  std::string weights_sha256;  // of the weight file
  std::string mode;            // preprocessing, recorded with every metric
  std::string provenance;      // one line: network, weights hash, preprocessing, micro-batch
  std::string pool_desc, spatial_desc, logits_desc;  // e.g. "pool3 (2048)"
  int64_t pool_dim = 0, spatial_dim = 0;
  FeatureExtractor extract;  // batch -> {"pool", "spatial", "logits"}
  std::string key() const { return features_key(name, weights_sha256, mode); }
};

}  // namespace dmeval
