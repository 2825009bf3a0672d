#include "generators/ldm/ldm_weights.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <filesystem>
#include <map>

#include "core/checkpoint.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/known_files.h"
#include "core/safetensors.h"
#include "core/torch_bridge.h"

namespace dmeval {

namespace {

// Every tensor of the file by its state-dict key: a Lightning .ckpt nests them under "state_dict", a
// safetensors file or a bare state dict holds them at the top level.
std::map<std::string, ValueId> state_dict_keys(const Checkpoint& ck) {
  std::map<std::string, ValueId> keys;
  for (const TensorEntry& e : ck.tensors()) {
    std::string key = e.path;
    if (key.rfind("state_dict/", 0) == 0) key = key.substr(11);
    keys[key] = e.value;
  }
  return keys;
}

void copy_checked(const Checkpoint& ck, ValueId v, torch::Tensor& param, const std::string& key) {
  const std::vector<int64_t>& shape = ck.shape(v);
  DMEVAL_CHECK(shape == param.sizes().vec(),
               "{}: '{}' has shape [{}], this config's is [{}] (a checkpoint of another config?)", ck.path(),
               key, fmt::join(shape, ", "), fmt::join(param.sizes(), ", "));
  param.copy_(to_torch(ck.read(v)));
}

void load_part(const Checkpoint& ck, const std::map<std::string, ValueId>& keys, torch::nn::Module& module,
               const std::string& prefix, const std::vector<std::string>& ignored) {
  bool any = false;
  for (const auto& [key, value] : keys) any |= key.rfind(prefix, 0) == 0;
  DMEVAL_CHECK(any, "{}: no tensor under '{}' (not a checkpoint of this model part)", ck.path(), prefix);
  torch::NoGradGuard no_grad;
  auto params = module.named_parameters(true);
  for (auto& p : params) {
    auto it = keys.find(prefix + p.key());
    DMEVAL_CHECK(it != keys.end(), "{}: '{}{}' is missing (a checkpoint of another config?)", ck.path(),
                 prefix, p.key());
    copy_checked(ck, it->second, p.value(), it->first);
  }
  for (const auto& [key, value] : keys) {
    if (key.rfind(prefix, 0) != 0) continue;
    const std::string name = key.substr(prefix.size());
    bool skip = false;
    for (const std::string& i : ignored) skip |= name.rfind(i, 0) == 0;
    DMEVAL_CHECK(skip || params.contains(name),
                 "{}: '{}' is not a parameter of this config (a checkpoint of another config?)", ck.path(),
                 key);
  }
}

}  // namespace

std::string load_ldm_weights(torch::nn::Module& module, const std::string& path, const std::string& prefix,
                             const std::vector<std::string>& ignored) {
  Checkpoint ck = Checkpoint::open(path);
  load_part(ck, state_dict_keys(ck), module, prefix, ignored);
  return sha256_file(path);
}

void save_ldm_checkpoint(const LdmParts& parts, const std::string& path,
                         const std::map<std::string, std::string>& metadata) {
  std::vector<std::pair<std::string, TensorData>> tensors;
  auto add = [&](const torch::nn::Module* m, const std::string& prefix) {
    if (!m) return;
    for (const auto& p : m->named_parameters(/*recurse=*/true))
      tensors.emplace_back(prefix + p.key(), from_torch(p.value().detach().contiguous()));
  };
  add(parts.unet, "model.diffusion_model.");
  add(parts.first_stage, "first_stage_model.");
  add(parts.cond_stage, "cond_stage_model.");
  write_safetensors(path, tensors, metadata);
}

std::string ldm_ema_key(const std::string& unet_param) {
  std::string name = "diffusion_model." + unet_param;
  std::string out = "model_ema.";
  for (char c : name)
    if (c != '.') out += c;
  return out;
}

LdmCheckpointInfo load_ldm_checkpoint(const LdmParts& parts, const std::string& path, bool apply_ema,
                                      const std::string& first_stage_path) {
  CheckpointOptions co;
  co.opaque_objects = true;  // Lightning's callback and hyper-parameter objects are not needed
  Checkpoint ck = Checkpoint::open(path, co);
  const std::map<std::string, ValueId> keys = state_dict_keys(ck);
  LdmCheckpointInfo info;
  info.path = path;
  info.format = checkpoint_format_name(ck.format());
  info.size_bytes = static_cast<int64_t>(std::filesystem::file_size(path));
  if (ck.contains("global_step")) {
    const Value& v = ck.doc().at(ck.find("global_step"));
    if (v.kind == ValueKind::kInt) info.global_step = v.i;
  }
  load_part(ck, keys, *parts.unet, "model.diffusion_model.", {});
  if (apply_ema) {
    bool any = false;
    for (const auto& [key, value] : keys) any |= key.rfind("model_ema.", 0) == 0;
    DMEVAL_CHECK(
        any,
        "{}: the config samples with EMA weights (use_ema) but the file holds no model_ema.* tensors; "
        "pass --no-ema to sample with model.diffusion_model.* as they are",
        path);
    torch::NoGradGuard no_grad;
    for (auto& p : parts.unet->named_parameters(true)) {
      const std::string key = ldm_ema_key(p.key());
      auto it = keys.find(key);
      DMEVAL_CHECK(it != keys.end(), "{}: '{}' (the EMA copy of model.diffusion_model.{}) is missing", path,
                   key, p.key());
      copy_checked(ck, it->second, p.value(), key);
    }
    info.ema_applied = true;
  }
  // The decode path only: the encoder, quant_conv and the training loss are not used for sampling.
  const std::vector<std::string> unused = {"encoder.", "quant_conv.", "loss."};
  if (first_stage_path.empty()) {
    load_part(ck, keys, *parts.first_stage, "first_stage_model.", unused);
  } else {
    Checkpoint fs = Checkpoint::open(first_stage_path, co);
    const std::map<std::string, ValueId> fs_keys = state_dict_keys(fs);
    bool prefixed = false;
    for (const auto& [key, value] : fs_keys) prefixed |= key.rfind("first_stage_model.", 0) == 0;
    if (prefixed) {
      load_part(fs, fs_keys, *parts.first_stage, "first_stage_model.", unused);
    } else {
      // A first-stage model's own checkpoint: every key is the first stage's, at the top level.
      std::map<std::string, ValueId> own;
      for (const auto& [key, value] : fs_keys) own["first_stage_model." + key] = value;
      load_part(fs, own, *parts.first_stage, "first_stage_model.", unused);
    }
    info.first_stage_path = first_stage_path;
    info.first_stage_sha256 = sha256_file(first_stage_path);
  }
  if (parts.cond_stage) load_part(ck, keys, *parts.cond_stage, "cond_stage_model.", {});
  info.sha256 = sha256_file(path);
  if (const KnownFile* k = identify_known_file(info.sha256, "")) {
    info.known_file = k->description;
  } else {
    const std::string name = std::filesystem::path(path).filename().string();
    for (const KnownFile& k : known_files())
      if (k.name == name && !k.has_checksum() && k.size_bytes == info.size_bytes)
        info.known_file = fmt::format("{} (recognised by name and size only)", k.description);
  }
  return info;
}

}  // namespace dmeval
