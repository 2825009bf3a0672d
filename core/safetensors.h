// safetensors files: an 8-byte little-endian header length, a JSON header
// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}, then data.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/byte_source.h"
#include "core/tensor_data.h"

namespace dmeval {

struct SafetensorsEntry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t offset;  // absolute file offset of the first byte
  uint64_t bytes;
};

struct SafetensorsHeader {
  std::vector<SafetensorsEntry> entries;  // in header order
  std::map<std::string, std::string> metadata;
};

// Validates the header against the source's size (offsets, dtype sizes, overlaps).
SafetensorsHeader parse_safetensors_header(const ByteSource& src);

// Writes tensors (in the given order) and string metadata; atomic (temp file + rename).
void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, TensorData>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace dmeval
