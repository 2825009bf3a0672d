// Per-image features that metrics need all at once (precision/recall, KID, IS logits), stored
// either in memory or — for large sets — streamed to a float32 .npy file and memory-mapped back,
// so the resident memory of a 50k-image run does not grow with N beyond what the OS pages in.
// The spilled file is an ordinary .npy (C order, '<f4', shape (N, D)): it can be kept and read by
// numpy or `dmeval inspect`.
#pragma once

#include <torch/types.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace dmeval {

class FeatureStore {
 public:
  // In memory.
  explicit FeatureStore(int64_t dim);
  // Streamed to `path` (created or truncated). With `keep_file` false the file is unlinked as soon
  // as it is mapped (Linux keeps the mapping valid), so nothing is left behind even on a crash after
  // that point.
  FeatureStore(int64_t dim, std::string path, bool keep_file);
  ~FeatureStore();
  FeatureStore(const FeatureStore&) = delete;
  FeatureStore& operator=(const FeatureStore&) = delete;

  // Rows (N x dim, any float dtype) appended in order. Not allowed after rows().
  void append(const torch::Tensor& rows);
  int64_t size() const { return count_; }
  int64_t dim() const { return dim_; }
  bool spilled() const { return !path_.empty(); }
  const std::string& path() const { return path_; }
  // All rows, N x dim float32. For a spilled store this finishes the file and returns a read-only
  // memory-mapped tensor (valid as long as any tensor refers to it).
  torch::Tensor rows();

 private:
  void finish_file();
  int64_t dim_;
  int64_t count_ = 0;
  std::string path_;
  bool keep_file_ = true;
  std::FILE* file_ = nullptr;
  std::vector<torch::Tensor> blocks_;
  torch::Tensor all_;
};

}  // namespace dmeval
