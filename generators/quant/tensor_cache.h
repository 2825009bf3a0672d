// Rows of float32 tensors (layer or block inputs/outputs of calibration data) kept in memory up to
// a limit, then spilled to an unlinked temporary file: reconstruction on 5120 CIFAR-10 samples
// caches gigabytes per block, which must not have to fit in RAM. Rows are fetched by index.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace dmeval {

class TensorCache {
 public:
  // `memory_limit_bytes`: above it the rows go to a file in `spill_dir` (default: $TMPDIR or /tmp).
  explicit TensorCache(int64_t memory_limit_bytes = int64_t{1} << 30, std::string spill_dir = "");
  ~TensorCache();
  TensorCache(const TensorCache&) = delete;
  TensorCache& operator=(const TensorCache&) = delete;
  TensorCache(TensorCache&& other) noexcept;

  void append(const torch::Tensor& rows);  // (n, ...) — converted to contiguous float32 on the CPU
  int64_t rows() const { return rows_; }
  const std::vector<int64_t>& row_shape() const { return row_shape_; }
  bool spilled() const { return fd_ >= 0; }
  torch::Tensor gather(const torch::Tensor& index) const;  // (k, ...) for an int64 index vector
  torch::Tensor all() const;

 private:
  void spill();
  int64_t limit_;
  std::string dir_;
  std::vector<int64_t> row_shape_;
  int64_t row_numel_ = 0, rows_ = 0;
  mutable std::vector<torch::Tensor> chunks_;  // in memory (merged into one on first read)
  int fd_ = -1;                                // spilled
};

}  // namespace dmeval
