// NumPy .npy (format 1.0/2.0/3.0) and .npz archives (stored or deflated), read and write.
// Used for pytorch-fid statistics (`mu`, `sigma` float64), ADM reference batches (`arr_0` uint8
// NHWC plus `mu`, `sigma`, ...) and dmeval's feature dumps.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/byte_source.h"
#include "core/tensor_data.h"

namespace dmeval {

// Parses a whole .npy held by `src`; converts Fortran order and big-endian data to C order,
// little-endian.
TensorData read_npy(const ByteSource& src);
TensorData read_npy_file(const std::string& path);

std::vector<uint8_t> encode_npy(const TensorData& t);          // format 1.0 (2.0 if the header needs it)
void write_npy(const std::string& path, const TensorData& t);  // atomic
// The header alone (magic, version, dict, padding): followed by the C-order data it describes.
std::vector<uint8_t> encode_npy_header(DType dtype, const std::vector<int64_t>& shape);
// Dtype, shape and data position of a C-order little-endian .npy, without reading the data; throws
// if the file is shorter than its header says.
struct NpyFileInfo {
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t data_offset = 0, data_bytes = 0;
};
NpyFileInfo read_npy_info(const std::string& path);

class ZipReader;

class NpzReader {
 public:
  static NpzReader open(const std::string& path);
  static NpzReader from_memory(const std::string& name, std::vector<uint8_t> bytes);

  const std::string& path() const { return path_; }
  // Array names without the ".npy" suffix, in archive order.
  const std::vector<std::string>& names() const { return names_; }
  bool contains(const std::string& name) const;
  TensorData read(const std::string& name) const;  // throws listing the available names

 private:
  std::string path_;
  std::shared_ptr<ZipReader> zip_;
  std::vector<std::string> names_;
};

// np.savez (compressed = false) / np.savez_compressed (true). Atomic.
void write_npz(const std::string& path, const std::vector<std::pair<std::string, TensorData>>& arrays,
               bool compressed);

}  // namespace dmeval
