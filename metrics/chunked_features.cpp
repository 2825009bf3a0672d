#include "metrics/chunked_features.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <filesystem>

#include "core/error.h"
#include "core/npy.h"
#include "core/torch_bridge.h"

namespace dmeval {

namespace fs = std::filesystem;

namespace {
std::string chunk_file(const std::string& dir, int64_t k) {
  return fmt::format("{}/chunk_{:06d}.npz", dir, k);
}
TensorData text_array(const std::string& s) {
  return from_torch(
      torch::from_blob(const_cast<char*>(s.data()), {static_cast<int64_t>(s.size())}, torch::kUInt8).clone());
}
std::string array_text(const TensorData& t) {
  return std::string(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
}
}  // namespace

ChunkedFeatureSink::ChunkedFeatureSink(std::string dir, FeatureExtractor extract, std::string provenance)
    : dir_(std::move(dir)), provenance_(std::move(provenance)), extract_(std::move(extract)) {
  fs::create_directories(dir_);
}

void ChunkedFeatureSink::begin_chunk(const ChunkRange& chunk) {
  chunk_ = chunk;
  pending_.clear();  // a chunk seen partly before starts from nothing
  pending_count_ = 0;
}

void ChunkedFeatureSink::consume(const ImageBatch& batch) {
  DMEVAL_CHECK(batch.first_index == chunk_.first + pending_count_,
               "feature sink: images {} arrived, expected {} (chunk {})", batch.first_index,
               chunk_.first + pending_count_, chunk_.index);
  auto rows = extract_(batch);
  for (auto& [tap, t] : rows) {
    DMEVAL_CHECK(t.size(0) == static_cast<int64_t>(batch.images.size()),
                 "feature tap '{}': {} rows for {} images", tap, t.size(0), batch.images.size());
    pending_[tap].push_back(t.to(torch::kFloat32).cpu().contiguous());
  }
  pending_count_ += static_cast<int64_t>(batch.images.size());
}

void ChunkedFeatureSink::commit_chunk(const ChunkRange& chunk) {
  DMEVAL_CHECK(pending_count_ == chunk.count, "feature sink: chunk {} has {} of {} images", chunk.index,
               pending_count_, chunk.count);
  std::vector<std::pair<std::string, TensorData>> arrays;
  for (auto& [tap, parts] : pending_) arrays.emplace_back(tap, from_torch(torch::cat(parts, 0)));
  arrays.emplace_back("first", from_torch(torch::tensor({chunk.first}, torch::kLong)));
  arrays.emplace_back("count", from_torch(torch::tensor({chunk.count}, torch::kLong)));
  arrays.emplace_back("provenance", text_array(provenance_));
  write_npz(chunk_file(dir_, chunk.index), arrays, /*compressed=*/false);  // atomic
  pending_.clear();
  pending_count_ = 0;
}

torch::Tensor load_chunked_features(const std::string& dir, const std::string& tap, int64_t total,
                                    const std::string& provenance) {
  std::vector<std::pair<int64_t, torch::Tensor>> parts;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("chunk_", 0) != 0 || e.path().extension() != ".npz") continue;
    NpzReader z = NpzReader::open(e.path().string());
    const std::string p = array_text(z.read("provenance"));
    DMEVAL_CHECK(p == provenance, "{}: computed with {}, this run uses {}", e.path().string(), p, provenance);
    DMEVAL_CHECK(z.contains(tap), "{}: no feature tap '{}'", e.path().string(), tap);
    parts.emplace_back(to_torch(z.read("first")).item<int64_t>(), to_torch(z.read(tap)));
  }
  std::sort(parts.begin(), parts.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  int64_t next = 0;
  std::vector<torch::Tensor> rows;
  for (auto& [first, t] : parts) {
    DMEVAL_CHECK(first == next, "{}: features of images {}..{} missing or overlapping", dir, next, first - 1);
    next += t.size(0);
    rows.push_back(t);
  }
  DMEVAL_CHECK(next == total, "{}: features of {} images, the run has {} (unfinished chunks?)", dir, next,
               total);
  return torch::cat(rows, 0);
}

}  // namespace dmeval
