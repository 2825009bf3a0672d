#include "metrics/chunked_features.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <filesystem>
#include <optional>

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

std::map<int64_t, std::string> chunk_files(const std::string& dir) {
  std::map<int64_t, std::string> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("chunk_", 0) != 0 || e.path().extension() != ".npz") continue;
    try {
      files[std::stoll(name.substr(6))] = e.path().string();
    } catch (const std::exception&) {
      // not one of ours
    }
  }
  if (ec) fail("{}: cannot list the feature chunks: {}", dir, ec.message());
  return files;
}

std::string chunk_feature_file(const std::string& dir, int64_t k) {
  return chunk_file(dir, k);
}

void for_each_chunk(const std::string& dir, const std::string& tap, int64_t total,
                    const std::string& provenance,
                    const std::function<void(int64_t first, const torch::Tensor& rows)>& visit) {
  // Order by first image (read from each file's small `first` array before the rows).
  std::vector<std::pair<int64_t, std::string>> parts;
  for (const auto& [k, path] : chunk_files(dir)) {
    NpzReader z = NpzReader::open(path);
    const std::string p = array_text(z.read("provenance"));
    DMEVAL_CHECK(p == provenance, "{}: computed with {}, this run uses {}", path, p, provenance);
    DMEVAL_CHECK(z.contains(tap), "{}: no feature tap '{}'", path, tap);
    parts.emplace_back(to_torch(z.read("first")).item<int64_t>(), path);
  }
  std::sort(parts.begin(), parts.end());
  int64_t next = 0;
  for (const auto& [first, path] : parts) {
    DMEVAL_CHECK(first == next, "{}: features of images {}..{} missing or overlapping", dir, next, first - 1);
    torch::Tensor t = to_torch(NpzReader::open(path).read(tap));
    DMEVAL_CHECK(torch::isfinite(t).all().item<bool>(),
                 "{}: NaN or Inf in the '{}' features of images {}..{}", path, tap, first,
                 first + t.size(0) - 1);
    visit(first, t);
    next += t.size(0);
  }
  DMEVAL_CHECK(next == total, "{}: features of {} images, the run has {} (unfinished chunks?)", dir, next,
               total);
}

torch::Tensor load_chunked_features(const std::string& dir, const std::string& tap, int64_t total,
                                    const std::string& provenance) {
  std::vector<torch::Tensor> rows;
  for_each_chunk(dir, tap, total, provenance, [&](int64_t, const torch::Tensor& t) { rows.push_back(t); });
  return torch::cat(rows, 0);
}

MomentAccumulator chunked_moments(const std::string& dir, const std::string& tap, int64_t total,
                                  const std::string& provenance) {
  std::optional<MomentAccumulator> acc;
  for_each_chunk(dir, tap, total, provenance, [&](int64_t first, const torch::Tensor& t) {
    if (!acc) acc.emplace(t.size(1));
    acc->add(first, t);
  });
  return std::move(*acc);
}

}  // namespace dmeval
