// A tensor's values as plain bytes: dtype, shape and contiguous little-endian C-order data.
// File readers produce this without depending on libtorch; core/torch_bridge.h converts.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace dmeval {

struct TensorData {
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;  // numel() * dtype_size(dtype) bytes, C order

  int64_t numel() const;
  template <typename T>
  const T* data() const {
    return reinterpret_cast<const T*>(bytes.data());
  }
  template <typename T>
  T* mutable_data() {
    return reinterpret_cast<T*>(bytes.data());
  }
};

// Number of elements of a shape; throws if a dimension is negative or the product overflows.
int64_t checked_numel(const std::vector<int64_t>& shape);
std::string shape_str(const std::vector<int64_t>& shape);  // "[3, 299, 299]"

// Copies a strided view of `storage` (element units) into contiguous C order. Throws if the view
// reaches outside the storage. Used for torch tensors whose strides are not contiguous (the FID
// Inception weights are TF-ordered storages viewed as [O, I, kh, kw]).
std::vector<uint8_t> gather_strided(const uint8_t* storage, int64_t storage_numel, size_t elem_size,
                                    int64_t offset, const std::vector<int64_t>& sizes,
                                    const std::vector<int64_t>& strides);

// Highest element index a view touches + 1 (0 for an empty view); throws on negative strides.
int64_t view_extent(int64_t offset, const std::vector<int64_t>& sizes, const std::vector<int64_t>& strides);

}  // namespace dmeval
