// The record of a chunked run on disk, next to its outputs: `<dir>/run.json` holds the run's
// identity (every setting that determines the output), `<dir>/chunks/<k>.json` one file per
// committed chunk (written atomically after the sinks made the chunk durable), with the producer
// state after it for sequential producers. Restarting the same command finds the committed
// chunks and continues; a different command on the same folder is refused, naming what differs.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "core/image_sink.h"

namespace dmeval {

class ChunkLedger {
 public:
  ChunkLedger(std::string dir, nlohmann::ordered_json identity);
  ~ChunkLedger();
  ChunkLedger(const ChunkLedger&) = delete;
  ChunkLedger& operator=(const ChunkLedger&) = delete;

  const std::string& dir() const { return dir_; }
  bool done(int64_t chunk) const;
  int64_t done_count(int64_t num_chunks) const;
  void mark_done(const ChunkRange& chunk, const std::vector<uint8_t>& producer_state,
                 nlohmann::ordered_json details);
  // Producer state saved after `chunk` (empty if none was saved).
  std::vector<uint8_t> state_after(int64_t chunk) const;
  nlohmann::ordered_json chunk_record(int64_t chunk) const;
  // The identity recorded in a ledger folder (throws naming it when there is none).
  static nlohmann::ordered_json read_identity(const std::string& dir);
  // Chunk numbers with a record, ascending.
  std::vector<int64_t> done_chunks() const;
  // Copies chunk `chunk`'s record from another ledger folder of the same run (the caller copies the
  // chunk's outputs first: the record is the commit marker).
  void import_record(const std::string& from_dir, int64_t chunk);
  // Holds an exclusive lock for `name` (e.g. the shard) while the ledger lives; throws if another
  // process holds it.
  void lock(const std::string& name);

 private:
  std::string chunk_path(int64_t chunk) const;
  std::string dir_;
  int lock_fd_ = -1;
};

}  // namespace dmeval
