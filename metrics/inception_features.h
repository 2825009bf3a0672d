// An ImageSink that runs images through a tool's preprocessing and the FID Inception network and
// keeps what the metrics need: exact mergeable moments of pool3 (FID) and spatial (sFID), and the
// per-image features of the requested taps (IS logits, P/R and KID features, feature dumps).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/image_sink.h"
#include "metrics/feature_store.h"
#include "metrics/inception_net.h"
#include "metrics/moments.h"
#include "metrics/preprocess.h"
#include "metrics/scoring_network.h"

namespace dmeval {

// Tap names as the CLI spells them: pool3, logits, logits-unbiased, spatial, pool-64, pool-192, mixed-6e-768.
const std::vector<std::string>& inception_tap_names();
InceptionTaps taps_from_names(const std::vector<std::string>& names);  // throws listing the valid names
int64_t tap_dim(const std::string& name);

// The FID Inception network as a run's scoring network: pool = pool3 (2048), spatial = sFID's
// Mixed_6d.branch1x1[:7] (2023), logits = the 1008 logits without bias (IS, as torch-fidelity and ADM).
// Metrics keep the papers' names (fid, sfid, is, precision, recall); `mode_name` is the preprocessing.
ScoringNetwork inception_scoring_network(FidInception net, PreprocessMode mode, const std::string& mode_name,
                                         const std::string& weights_sha256, int64_t micro_batch = 50,
                                         torch::Device device = torch::kCPU);

class InceptionFeatureSink : public ImageSink {
 public:
  // `keep` lists the taps whose per-image features are stored; `moment_taps` those whose exact
  // mergeable moments are accumulated (pool3 for FID, spatial for sFID, pool-64 ... for
  // pytorch-fid's --dims).
  InceptionFeatureSink(FidInception net, PreprocessMode mode, std::vector<std::string> keep,
                       std::vector<std::string> moment_taps);
  void consume(const ImageBatch& batch) override;

  int64_t count() const { return count_; }
  // Statistics of a tap listed in `moment_taps`, and its exact mergeable state.
  FeatureStats stats(const std::string& tap) const;
  const MomentAccumulator& moments(const std::string& tap) const;
  // All stored features of a tap, N x D float32 in index order (memory-mapped when spilled).
  torch::Tensor features(const std::string& tap) const;
  // Before the first batch: stream the stored features to `dir`/`prefix``tap`.npy instead of memory
  // (deleted once mapped unless `keep_files`), so memory does not grow with the number of images.
  void spill_to(const std::string& dir, const std::string& prefix, bool keep_files);
  // The feature file of a tap ("" when kept in memory).
  std::string feature_file(const std::string& tap) const;

 private:
  FidInception net_;
  PreprocessMode mode_;
  std::vector<std::string> keep_;
  InceptionTaps taps_;
  std::map<std::string, MomentAccumulator> moments_;
  mutable std::map<std::string, std::unique_ptr<FeatureStore>> stored_;
  std::string spill_dir_, spill_prefix_;
  bool keep_files_ = false;
  int64_t count_ = 0;
};

}  // namespace dmeval
