// An ImageSink that runs images through shapes-net (the shapes profile's feature network) and keeps
// what its metrics need: exact mergeable moments of the 256-d features (Fréchet distance, reported as
// FID[shapes-net]), and the per-image features and logits (precision/recall, KID, IS). Images are
// evaluated in fixed micro-batches, so every image's features are independent of how batches arrive.
#pragma once

#include <map>
#include <string>

#include "core/image_sink.h"
#include "metrics/moments.h"
#include "metrics/scoring_network.h"
#include "metrics/shapes_net.h"

namespace dmeval {

// shapes-net "features" (N x 256), "spatial" (N x 2048) and "logits" rows of a batch, in fixed
// micro-batches.
std::map<std::string, torch::Tensor> shapes_net_extract(ShapesNet& net, const ImageBatch& batch,
                                                        int64_t micro_batch);

// shapes-net as a run's scoring network (metrics named "...[shapes-net]"), weights from `path`.
ScoringNetwork shapes_scoring_network(const std::string& path, int64_t micro_batch = 64);

class ShapesFeatureSink : public ImageSink {
 public:
  explicit ShapesFeatureSink(ShapesNet net, int64_t micro_batch = 64);
  void consume(const ImageBatch& batch) override;

  int64_t count() const { return moments_.count(); }
  FeatureStats stats() const { return moments_.finalize(); }
  const MomentAccumulator& moments() const { return moments_; }
  // Per-image features (N x 256) and logits (N x classes), float32, in the order images arrived.
  torch::Tensor features() const;
  torch::Tensor logits() const;

 private:
  ShapesNet net_;
  int64_t micro_batch_;
  MomentAccumulator moments_;
  std::vector<torch::Tensor> features_, logits_;
};

}  // namespace dmeval
