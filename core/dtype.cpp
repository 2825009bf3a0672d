#include "core/dtype.h"

namespace dmeval {

namespace {
struct DTypeInfo {
  DType type;
  size_t size;
  const char* name;
  const char* torch_storage;
  const char* safetensors;
};

constexpr DTypeInfo kDTypes[] = {
    {DType::kBool, 1, "bool", "BoolStorage", "BOOL"},
    {DType::kUInt8, 1, "uint8", "ByteStorage", "U8"},
    {DType::kInt8, 1, "int8", "CharStorage", "I8"},
    {DType::kInt16, 2, "int16", "ShortStorage", "I16"},
    {DType::kInt32, 4, "int32", "IntStorage", "I32"},
    {DType::kInt64, 8, "int64", "LongStorage", "I64"},
    {DType::kFloat16, 2, "float16", "HalfStorage", "F16"},
    {DType::kBFloat16, 2, "bfloat16", "BFloat16Storage", "BF16"},
    {DType::kFloat32, 4, "float32", "FloatStorage", "F32"},
    {DType::kFloat64, 8, "float64", "DoubleStorage", "F64"},
};

const DTypeInfo& info(DType t) {
  return kDTypes[static_cast<size_t>(t)];
}
}  // namespace

size_t dtype_size(DType t) {
  return info(t).size;
}
const char* dtype_name(DType t) {
  return info(t).name;
}
const char* dtype_to_safetensors(DType t) {
  return info(t).safetensors;
}

std::optional<DType> dtype_from_torch_storage(std::string_view storage_class) {
  for (const auto& d : kDTypes)
    if (storage_class == d.torch_storage) return d.type;
  return std::nullopt;
}

std::optional<DType> dtype_from_safetensors(std::string_view name) {
  for (const auto& d : kDTypes)
    if (name == d.safetensors) return d.type;
  return std::nullopt;
}

}  // namespace dmeval
