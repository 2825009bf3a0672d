// Element types of tensors read from checkpoints, safetensors and NumPy files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dmeval {

enum class DType : uint8_t {
  kBool,
  kUInt8,
  kInt8,
  kInt16,
  kInt32,
  kInt64,
  kFloat16,
  kBFloat16,
  kFloat32,
  kFloat64,
};

size_t dtype_size(DType t);
// Short lowercase name as torch prints it: "float32", "int64", "bfloat16", ...
const char* dtype_name(DType t);

// torch storage class names of the pickle format ("FloatStorage", "LongStorage", ...).
std::optional<DType> dtype_from_torch_storage(std::string_view storage_class);
// safetensors dtype names ("F32", "I64", "BF16", ...).
std::optional<DType> dtype_from_safetensors(std::string_view name);
const char* dtype_to_safetensors(DType t);

}  // namespace dmeval
