#include "core/torch_bridge.h"

#include <cstring>

#include "core/error.h"

namespace dmeval {

c10::ScalarType to_scalar_type(DType t) {
  switch (t) {
    case DType::kBool: return torch::kBool;
    case DType::kUInt8: return torch::kUInt8;
    case DType::kInt8: return torch::kInt8;
    case DType::kInt16: return torch::kInt16;
    case DType::kInt32: return torch::kInt32;
    case DType::kInt64: return torch::kInt64;
    case DType::kFloat16: return torch::kFloat16;
    case DType::kBFloat16: return torch::kBFloat16;
    case DType::kFloat32: return torch::kFloat32;
    case DType::kFloat64: return torch::kFloat64;
  }
  fail("unknown dtype");
}

DType from_scalar_type(c10::ScalarType t) {
  switch (t) {
    case torch::kBool: return DType::kBool;
    case torch::kUInt8: return DType::kUInt8;
    case torch::kInt8: return DType::kInt8;
    case torch::kInt16: return DType::kInt16;
    case torch::kInt32: return DType::kInt32;
    case torch::kInt64: return DType::kInt64;
    case torch::kFloat16: return DType::kFloat16;
    case torch::kBFloat16: return DType::kBFloat16;
    case torch::kFloat32: return DType::kFloat32;
    case torch::kFloat64: return DType::kFloat64;
    default: fail("tensor dtype {} has no file representation in dmeval", c10::toString(t));
  }
}

torch::Tensor to_torch(const TensorData& t) {
  torch::Tensor out = torch::empty(t.shape, torch::TensorOptions().dtype(to_scalar_type(t.dtype)));
  if (static_cast<size_t>(out.nbytes()) != t.bytes.size())
    fail("to_torch: {} bytes do not fit shape {}", t.bytes.size(), shape_str(t.shape));
  if (!t.bytes.empty()) std::memcpy(out.data_ptr(), t.bytes.data(), t.bytes.size());
  return out;
}

TensorData from_torch(const torch::Tensor& t) {
  torch::Tensor c = t.detach().to(torch::kCPU).contiguous();
  TensorData out;
  out.dtype = from_scalar_type(c.scalar_type());
  out.shape.assign(c.sizes().begin(), c.sizes().end());
  out.bytes.resize(c.nbytes());
  if (!out.bytes.empty()) std::memcpy(out.bytes.data(), c.data_ptr(), out.bytes.size());
  return out;
}

std::map<std::string, torch::Tensor> load_tensors(const Checkpoint& ckpt, const std::string& prefix) {
  std::map<std::string, torch::Tensor> out;
  ValueId node = prefix.empty() ? ckpt.root() : ckpt.find(prefix);
  for (const auto& e : ckpt.tensors_under(node, "")) out[e.path] = to_torch(ckpt.read(e.value));
  return out;
}

}  // namespace dmeval
