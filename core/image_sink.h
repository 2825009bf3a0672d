// The interface between what produces images (files, generators) and what consumes them (PNG
// writers, feature extractors). It lives in core so generators and metrics never include each
// other (ARCHITECTURE.md).
//
// Large runs are split into chunks of consecutive global image indices (harness/chunk_runner): a
// sink sees begin_chunk, the chunk's batches in index order, then commit_chunk, after which its
// output for that chunk must be durable. A chunk can be started again after a crash, so a sink
// must accept a chunk it has partly seen before and end up as if it had seen it once. finish()
// is called once every chunk of the whole run (all shards) is committed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/image.h"
#include "core/tensor_data.h"

namespace dmeval {

struct ImageBatch {
  int64_t first_index = 0;         // global index of images[0] (deterministic across shards)
  std::vector<Image> images;       // RGB uint8
  std::vector<std::string> names;  // source names (file paths), may be empty for generated images
  // Generated images only, when the producer was asked for them: the float samples before the
  // conversion to 8 bits, float32 (n, C, H, W).
  TensorData raw;
};

struct ChunkRange {
  int64_t index = 0;  // chunk number
  int64_t first = 0;  // global index of its first image
  int64_t count = 0;
};

class ImageSink {
 public:
  virtual ~ImageSink() = default;
  virtual void begin_chunk(const ChunkRange& chunk) { (void)chunk; }
  virtual void consume(const ImageBatch& batch) = 0;
  virtual void commit_chunk(const ChunkRange& chunk) { (void)chunk; }
  virtual void finish() {}
};

// What chunked runs pull images from: generators implement it, the harness drives it and knows
// nothing else of the workload.
class ImageProducer {
 public:
  virtual ~ImageProducer() = default;
  // The images first .. first + count - 1 (global indices), as one batch.
  virtual ImageBatch produce(int64_t first, int64_t count) = 0;
  // A sequential producer's output depends on the order of calls (e.g. one random stream): it must
  // be called in index order, cannot be sharded, and resumes from the state saved with the last
  // finished chunk.
  virtual bool sequential() const { return false; }
  virtual std::vector<uint8_t> state() const { return {}; }
  virtual void restore(const std::vector<uint8_t>& state) { (void)state; }
};

}  // namespace dmeval
