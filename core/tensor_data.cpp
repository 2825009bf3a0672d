#include "core/tensor_data.h"

#include <cstring>

#include "core/error.h"

namespace dmeval {

int64_t checked_numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) fail("negative dimension {} in shape {}", d, shape_str(shape));
    if (d != 0 && n > INT64_MAX / d) fail("shape {} has too many elements", shape_str(shape));
    n *= d;
  }
  return n;
}

int64_t TensorData::numel() const {
  return checked_numel(shape);
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

int64_t view_extent(int64_t offset, const std::vector<int64_t>& sizes, const std::vector<int64_t>& strides) {
  if (sizes.size() != strides.size()) fail("view has {} sizes but {} strides", sizes.size(), strides.size());
  if (offset < 0) fail("negative storage offset {}", offset);
  if (checked_numel(sizes) == 0) return 0;
  int64_t last = offset;
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (strides[i] < 0) fail("negative stride {} in view", strides[i]);
    int64_t span = sizes[i] - 1;
    if (span > 0 && strides[i] > (INT64_MAX - last) / span)
      fail("view {} with strides {} overflows", shape_str(sizes), shape_str(strides));
    last += span * strides[i];
  }
  return last + 1;
}

std::vector<uint8_t> gather_strided(const uint8_t* storage, int64_t storage_numel, size_t elem_size,
                                    int64_t offset, const std::vector<int64_t>& sizes,
                                    const std::vector<int64_t>& strides) {
  int64_t extent = view_extent(offset, sizes, strides);
  if (extent > storage_numel)
    fail("view {} (offset {}, strides {}) reaches element {} of a storage of {} elements", shape_str(sizes),
         offset, shape_str(strides), extent - 1, storage_numel);
  int64_t n = checked_numel(sizes);
  std::vector<uint8_t> out(static_cast<size_t>(n) * elem_size);
  if (n == 0) return out;
  // Contiguous fast path.
  bool contiguous = true;
  int64_t expect = 1;
  for (size_t i = sizes.size(); i-- > 0;) {
    if (sizes[i] != 1 && strides[i] != expect) contiguous = false;
    expect *= sizes[i];
  }
  if (contiguous) {
    std::memcpy(out.data(), storage + offset * elem_size, out.size());
    return out;
  }
  const size_t nd = sizes.size();
  std::vector<int64_t> idx(nd, 0);
  int64_t src = offset;
  for (int64_t k = 0; k < n; ++k) {
    std::memcpy(out.data() + k * elem_size, storage + src * elem_size, elem_size);
    for (size_t d = nd; d-- > 0;) {  // odometer increment
      if (++idx[d] < sizes[d]) {
        src += strides[d];
        break;
      }
      src -= (sizes[d] - 1) * strides[d];
      idx[d] = 0;
    }
  }
  return out;
}

}  // namespace dmeval
