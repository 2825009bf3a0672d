// Drives any ImageProducer through a chunk plan into sinks, resumably: chunks the ledger records as
// done are skipped; each chunk runs in batches, every sink commits it, then the ledger marks it done.
// The runner knows nothing of what produces the images (MLPerf LoadGen's rule).
#pragma once

#include <vector>

#include "core/image_sink.h"
#include "harness/sampling/chunk_ledger.h"
#include "harness/sampling/chunk_plan.h"
#include "harness/sampling/progress.h"

namespace dmeval {

struct ChunkRunResult {
  int64_t chunks_run = 0, chunks_skipped = 0, images = 0;
  double seconds = 0, images_per_second = 0;
  bool complete = false;  // every chunk of every shard is done (sinks were finished)
  int64_t chunks_done = 0, chunks_total = 0;
};

struct ChunkRunOptions {
  int64_t batch = 64;  // images per produce() call
  bool progress = true;
  double log_every_s = 30.0;
  // Stop (without error) after this many chunks in this process; 0 = no limit (tests, time slicing).
  int64_t max_chunks = 0;
};

ChunkRunResult run_chunks(ImageProducer& producer, const ChunkPlan& plan, ChunkLedger& ledger,
                          const std::vector<ImageSink*>& sinks, const ChunkRunOptions& options);

}  // namespace dmeval
