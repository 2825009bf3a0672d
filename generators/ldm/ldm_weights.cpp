#include "generators/ldm/ldm_weights.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <map>

#include "core/checkpoint.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/torch_bridge.h"

namespace dmeval {

std::string load_ldm_weights(torch::nn::Module& module, const std::string& path, const std::string& prefix,
                             const std::vector<std::string>& ignored) {
  Checkpoint ck = Checkpoint::open(path);
  // A Lightning .ckpt nests the weights under "state_dict"; a safetensors file or a bare state dict
  // holds them at the top level.
  std::map<std::string, ValueId> found;
  for (const TensorEntry& e : ck.tensors()) {
    std::string key = e.path;
    if (key.rfind("state_dict/", 0) == 0) key = key.substr(11);
    if (key.rfind(prefix, 0) == 0) found[key.substr(prefix.size())] = e.value;
  }
  DMEVAL_CHECK(!found.empty(), "{}: no tensor under '{}' (not a checkpoint of this model part)", path,
               prefix);
  torch::NoGradGuard no_grad;
  auto params = module.named_parameters(true);
  for (const auto& p : params) {
    auto it = found.find(p.key());
    DMEVAL_CHECK(it != found.end(), "{}: '{}{}' is missing (a checkpoint of another config?)", path, prefix,
                 p.key());
    const std::vector<int64_t>& shape = ck.shape(it->second);
    DMEVAL_CHECK(shape == p.value().sizes().vec(), "{}: '{}{}' has shape [{}], this config's is [{}]", path,
                 prefix, p.key(), fmt::join(shape, ", "), fmt::join(p.value().sizes(), ", "));
    p.value().copy_(to_torch(ck.read(it->second)));
  }
  for (const auto& [key, value] : found) {
    bool skip = false;
    for (const std::string& i : ignored) skip |= key.rfind(i, 0) == 0;
    if (skip) continue;
    DMEVAL_CHECK(params.contains(key),
                 "{}: '{}{}' is not a parameter of this config (a checkpoint of another "
                 "config?)",
                 path, prefix, key);
  }
  return sha256_file(path);
}

}  // namespace dmeval
