#include "harness/sampling/chunk_runner.h"

#include <fmt/format.h>

#include "core/error.h"

namespace dmeval {

ChunkRunResult run_chunks(ImageProducer& producer, const ChunkPlan& plan, ChunkLedger& ledger,
                          const std::vector<ImageSink*>& sinks, const ChunkRunOptions& o) {
  DMEVAL_CHECK(o.batch >= 1, "batch size must be at least 1");
  DMEVAL_CHECK(plan.total >= 1, "nothing to do: the run has {} images", plan.total);
  if (producer.sequential()) {
    DMEVAL_CHECK(
        plan.shard.count == 1,
        "this producer draws one sequential random stream (reference noise): it cannot be sharded; use "
        "per-image noise for --shard");
    DMEVAL_CHECK(plan.chunk_size % o.batch == 0,
                 "with a sequential random stream the chunk size ({}) must be a multiple of the batch ({})",
                 plan.chunk_size, o.batch);
  }
  ledger.lock(fmt::format("shard-{}-of-{}", plan.shard.index, plan.shard.count));
  const std::vector<int64_t> mine = plan.shard_chunks();
  int64_t todo_images = 0, done_images = 0;
  for (int64_t k : mine) (ledger.done(k) ? done_images : todo_images) += plan.chunk(k).count;

  ChunkRunResult r;
  r.chunks_total = plan.num_chunks();
  Progress progress(plan.shard.count > 1 ? fmt::format("shard {}", plan.shard.str()) : "sampling",
                    todo_images + done_images, done_images, o.progress, o.log_every_s);
  bool restored = false;  // sequential producers: state matches the next chunk to run
  for (size_t i = 0; i < mine.size(); ++i) {
    const int64_t k = mine[i];
    if (ledger.done(k)) {
      ++r.chunks_skipped;
      restored = false;
      continue;
    }
    if (o.max_chunks > 0 && r.chunks_run >= o.max_chunks) break;
    if (producer.sequential() && !restored) {
      // The stream continues from where the previous chunk ended (or from its seed for chunk 0).
      if (k > 0) {
        DMEVAL_CHECK(ledger.done(k - 1), "sequential stream: chunk {} cannot run before chunk {}", k, k - 1);
        producer.restore(ledger.state_after(k - 1));
      }
      restored = true;
    }
    const ChunkRange c = plan.chunk(k);
    for (ImageSink* s : sinks) s->begin_chunk(c);
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t b = c.first; b < c.first + c.count; b += o.batch) {
      const int64_t n = std::min(o.batch, c.first + c.count - b);
      ImageBatch batch = producer.produce(b, n);
      DMEVAL_CHECK(static_cast<int64_t>(batch.images.size()) == n && batch.first_index == b,
                   "the producer returned {} images from {} for a request of {} from {}", batch.images.size(),
                   batch.first_index, n, b);
      for (ImageSink* s : sinks) s->consume(batch);
      progress.advance(n);
    }
    for (ImageSink* s : sinks) s->commit_chunk(c);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    nlohmann::ordered_json details;
    details["seconds"] = secs;
    details["images_per_second"] = secs > 0 ? static_cast<double>(c.count) / secs : 0.0;
    details["shard"] = plan.shard.str();
    ledger.mark_done(c, producer.sequential() ? producer.state() : std::vector<uint8_t>{}, details);
    ++r.chunks_run;
    r.images += c.count;
  }
  progress.finish();
  r.seconds = progress.elapsed_s();
  r.images_per_second = progress.images_per_second();
  r.chunks_done = ledger.done_count(r.chunks_total);
  if (r.chunks_done == r.chunks_total) {
    for (ImageSink* s : sinks) s->finish();
    r.complete = true;
  }
  return r;
}

}  // namespace dmeval
