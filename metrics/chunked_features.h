// Per-image features of a chunked (resumable, shardable) run, persisted chunk by chunk, so that a
// killed run, a resumed one and N shards writing into one folder all end with the same features —
// and, through the exact mergeable moments, the same scores — as one uninterrupted process.
//
// `<dir>/chunk_<k>.npz` holds, per tap, the chunk's rows (count x D float32) plus `first` and
// `count`; it is written atomically at commit_chunk, before the run's ledger marks the chunk done,
// and a chunk started again simply rewrites it. The extractor turns an image batch into named rows
// (e.g. shapes-net "features"/"logits", Inception "pool3"/"spatial"/"logits"); `provenance` (the
// network, its weights hash, preprocessing) is stored in every chunk and checked when loading.
#pragma once

#include <torch/types.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/image_sink.h"
#include "metrics/moments.h"
#include "metrics/scoring_network.h"

namespace dmeval {

class ChunkedFeatureSink : public ImageSink {
 public:
  ChunkedFeatureSink(std::string dir, FeatureExtractor extract, std::string provenance);
  void begin_chunk(const ChunkRange& chunk) override;
  void consume(const ImageBatch& batch) override;
  void commit_chunk(const ChunkRange& chunk) override;

 private:
  std::string dir_, provenance_;
  FeatureExtractor extract_;
  ChunkRange chunk_;
  std::map<std::string, std::vector<torch::Tensor>> pending_;
  int64_t pending_count_ = 0;
};

// Every chunk's rows of `tap` in global index order, N x D float32; throws naming the folder when a
// chunk is missing, overlapping or was computed with another provenance.
torch::Tensor load_chunked_features(const std::string& dir, const std::string& tap, int64_t total,
                                    const std::string& provenance);
// The same checks, one chunk at a time in index order (memory bounded by one chunk).
void for_each_chunk(const std::string& dir, const std::string& tap, int64_t total,
                    const std::string& provenance,
                    const std::function<void(int64_t first, const torch::Tensor& rows)>& visit);
// Exact moments of `tap` over every chunk, streamed.
MomentAccumulator chunked_moments(const std::string& dir, const std::string& tap, int64_t total,
                                  const std::string& provenance);
// The chunk files of a folder by chunk number.
std::map<int64_t, std::string> chunk_files(const std::string& dir);
// The feature file of chunk k in `dir`.
std::string chunk_feature_file(const std::string& dir, int64_t k);

}  // namespace dmeval
