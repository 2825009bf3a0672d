// Conversions between dmeval's plain TensorData (what the file readers produce) and libtorch.
#pragma once

#include <torch/types.h>

#include <map>
#include <string>

#include "core/checkpoint.h"
#include "core/tensor_data.h"

namespace dmeval {

c10::ScalarType to_scalar_type(DType t);
DType from_scalar_type(c10::ScalarType t);

torch::Tensor to_torch(const TensorData& t);    // owns a copy of the bytes
TensorData from_torch(const torch::Tensor& t);  // any device/layout; copied to CPU contiguous

// All tensors of a checkpoint below `prefix` ("" = everything), keyed by their path relative to
// the prefix, e.g. prefix "state_dict/model.diffusion_model." is not a path component, so pass
// the dict path ("state_dict") and strip name prefixes separately.
std::map<std::string, torch::Tensor> load_tensors(const Checkpoint& ckpt, const std::string& prefix = "");

}  // namespace dmeval
