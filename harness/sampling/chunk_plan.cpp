#include "harness/sampling/chunk_plan.h"

#include <fmt/format.h>

#include "core/error.h"

namespace dmeval {

std::string Shard::str() const {
  return fmt::format("{}/{}", index, count);
}

Shard parse_shard(const std::string& spec) {
  size_t slash = spec.find('/');
  try {
    if (slash != std::string::npos) {
      size_t used = 0;
      int64_t k = std::stoll(spec.substr(0, slash), &used);
      bool ok = used == slash;
      const std::string rest = spec.substr(slash + 1);
      int64_t n = std::stoll(rest, &used);
      ok = ok && used == rest.size();
      if (ok && n >= 1 && k >= 0 && k < n) return {k, n};
    }
  } catch (const std::exception&) {
  }
  fail("--shard '{}' must be K/N with 0 <= K < N", spec);
}

ChunkRange ChunkPlan::chunk(int64_t k) const {
  ChunkRange c;
  c.index = k;
  c.first = k * chunk_size;
  c.count = std::min(chunk_size, total - c.first);
  return c;
}

std::vector<int64_t> ChunkPlan::shard_chunks() const {
  std::vector<int64_t> out;
  for (int64_t k = shard.index; k < num_chunks(); k += shard.count) out.push_back(k);
  return out;
}

int64_t ChunkPlan::shard_images() const {
  int64_t n = 0;
  for (int64_t k : shard_chunks()) n += chunk(k).count;
  return n;
}

int64_t round_chunk_size(int64_t wanted, int64_t batch) {
  DMEVAL_CHECK(wanted >= 1 && batch >= 1, "chunk size {} and batch {} must be positive", wanted, batch);
  return std::max<int64_t>(1, (wanted + batch - 1) / batch) * batch;
}

}  // namespace dmeval
