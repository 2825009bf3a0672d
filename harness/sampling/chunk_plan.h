// How a run of N images is split: consecutive chunks of a fixed size (the last one shorter), and
// shards that take every N-th chunk. Chunks are the unit of resumption; shards the unit of
// parallelism across processes or machines.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/image_sink.h"

namespace dmeval {

struct Shard {
  int64_t index = 0, count = 1;
  std::string str() const;
};
// "K/N" with 0 <= K < N.
Shard parse_shard(const std::string& spec);

struct ChunkPlan {
  int64_t total = 0;
  int64_t chunk_size = 1024;
  Shard shard;

  int64_t num_chunks() const { return (total + chunk_size - 1) / chunk_size; }
  ChunkRange chunk(int64_t k) const;
  // The chunks this shard runs: k with k mod shard.count == shard.index, ascending.
  std::vector<int64_t> shard_chunks() const;
  int64_t shard_images() const;
};

// A chunk size that is a multiple of `batch`, near `wanted`.
int64_t round_chunk_size(int64_t wanted, int64_t batch);

}  // namespace dmeval
