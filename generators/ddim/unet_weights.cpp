#include "generators/ddim/unet_weights.h"

#include <torch/torch.h>

#include <filesystem>
#include <set>

#include "core/checkpoint.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/known_files.h"
#include "core/safetensors.h"
#include "core/torch_bridge.h"

namespace dmeval {

namespace {

struct TensorSet {
  std::map<std::string, ValueId> by_name;  // key (prefix stripped) -> tensor
  std::string prefix;                      // stripped prefix ("module." or "")
};

bool starts_with(const std::string& s, const std::string& p) {
  return s.compare(0, p.size(), p) == 0;
}

// The tensors directly under `node` (a dict of tensors); strips DataParallel's "module." when every
// key has it.
TensorSet tensor_dict(const Checkpoint& ck, ValueId node) {
  TensorSet ts;
  const Value& v = ck.doc().at(node);
  if (v.kind != ValueKind::kDict) return ts;
  bool all_module = true;
  std::vector<std::pair<std::string, ValueId>> items;
  for (size_t k = 0; k + 1 < v.items.size(); k += 2) {
    const Value& key = ck.doc().at(v.items[k]);
    const Value& val = ck.doc().at(v.items[k + 1]);
    if (key.kind != ValueKind::kString || val.kind != ValueKind::kTensor) continue;
    items.emplace_back(key.s, v.items[k + 1]);
    if (!starts_with(key.s, "module.")) all_module = false;
  }
  if (items.empty()) return ts;
  ts.prefix = all_module ? "module." : "";
  for (auto& [k, id] : items) ts.by_name[k.substr(ts.prefix.size())] = id;
  return ts;
}

std::string shape_text(c10::IntArrayRef s) {
  return fmt::format("[{}]", fmt::join(s, ", "));
}

void check_known_file(UNetWeightsInfo& info, const UNetWeightsOptions& options) {
  if (const KnownFile* k = identify_known_file(info.sha256, info.md5)) {
    info.known_file = k->description;
    return;
  }
  const std::string name = std::filesystem::path(info.path).filename().string();
  std::vector<std::string> expected;
  for (const auto& f : known_files())
    if (f.name == name && f.has_checksum())
      expected.push_back(f.md5.empty() ? "SHA-256 " + f.sha256 : "MD5 " + f.md5);
  if (!expected.empty() && !options.allow_unknown)
    fail(
        "{}: the name is that of a known public checkpoint, but its MD5 {} (SHA-256 {}) matches none of them "
        "(expected {}): a corrupt or different download? Pass --allow-unknown-weights to use it anyway",
        info.path, info.md5, info.sha256, fmt::join(expected, " or "));
}

}  // namespace

UNetWeightsInfo load_unet_weights(torch::nn::Module& model, const std::string& path,
                                  const UNetWeightsOptions& options) {
  UNetWeightsInfo info;
  info.path = path;
  if (!std::filesystem::exists(path)) fail("{}: checkpoint file not found", path);
  Checkpoint ck = Checkpoint::open(path);
  info.format = checkpoint_format_name(ck.format());
  if (options.hash) {
    info.sha256 = sha256_file(path);
    info.md5 = md5_file(path);
    check_known_file(info, options);
  }

  // Find the model state and, for training checkpoints, the EMA state.
  const Value& root = ck.doc().at(ck.root());
  TensorSet weights, ema;
  if (root.kind == ValueKind::kDict) {
    weights = tensor_dict(ck, ck.root());
    info.layout = weights.prefix.empty() ? "state dict" : "state dict (module. prefix)";
    if (weights.by_name.empty()) {
      for (const char* key : {"state_dict", "model", "model_state_dict"})
        if (ck.contains(key)) {
          weights = tensor_dict(ck, ck.find(key));
          if (!weights.by_name.empty()) {
            info.layout = std::string("dict with '") + key + "'";
            break;
          }
        }
    }
  } else if (root.kind == ValueKind::kList || root.kind == ValueKind::kTuple) {
    DMEVAL_CHECK(!root.items.empty(), "{}: the checkpoint is an empty list", path);
    weights = tensor_dict(ck, root.items[0]);
    info.layout = "ddim training checkpoint [model, optimizer, epoch, step(, ema)]";
    if (root.items.size() >= 4 && ck.doc().at(root.items[3]).kind == ValueKind::kInt)
      info.training_step = ck.doc().at(root.items[3]).i;
    if (root.items.size() >= 5) ema = tensor_dict(ck, root.items.back());
  }
  if (weights.by_name.empty())
    fail(
        "{}: no UNet state dict found (expected a dict of tensors, a ddim [model, optimizer, ...] list, or "
        "safetensors); top level is {}",
        path, value_summary(ck.doc(), ck.root()));

  // Match every parameter by name and shape; report all problems at once.
  auto params = model.named_parameters(/*recurse=*/true);
  std::vector<std::string> missing, mismatched;
  std::set<std::string> expected;
  for (const auto& p : params) {
    expected.insert(p.key());
    auto it = weights.by_name.find(p.key());
    if (it == weights.by_name.end()) {
      missing.push_back(p.key());
      continue;
    }
    const auto& shape = ck.shape(it->second);
    if (c10::IntArrayRef(shape) != p.value().sizes())
      mismatched.push_back(
          fmt::format("{}: file {} vs model {}", p.key(), shape_text(shape), shape_text(p.value().sizes())));
  }
  std::vector<std::string> unexpected;
  for (const auto& [k, id] : weights.by_name)
    if (!expected.count(k)) unexpected.push_back(weights.prefix + k);
  auto list = [](const std::vector<std::string>& v) {
    std::vector<std::string> head(v.begin(), v.begin() + std::min<size_t>(v.size(), 6));
    return fmt::format("{}{}", fmt::join(head, ", "),
                       v.size() > 6 ? fmt::format(", ... ({} in all)", v.size()) : "");
  };
  if (!mismatched.empty())
    fail(
        "{}: {} tensors have the wrong shape for this model configuration (is it the right "
        "--model/--config?): "
        "{}",
        path, mismatched.size(), list(mismatched));
  if (!missing.empty() || !unexpected.empty())
    fail("{}: the state dict does not match the model: {} missing keys{}{}; {} unexpected keys{}{}", path,
         missing.size(), missing.empty() ? "" : ": ", list(missing), unexpected.size(),
         unexpected.empty() ? "" : ": ", list(unexpected));

  torch::NoGradGuard no_grad;
  for (auto& p : params) {
    TensorData td = ck.read(weights.by_name.at(p.key()));
    if (info.source_dtype.empty()) info.source_dtype = dtype_name(td.dtype);
    torch::Tensor t = to_torch(td);
    DMEVAL_CHECK(t.is_floating_point(), "{}: tensor '{}{}' has dtype {}, not floating point", path,
                 weights.prefix, p.key(), dtype_name(td.dtype));
    DMEVAL_CHECK(torch::isfinite(t).all().item<bool>(), "{}: tensor '{}{}' holds NaN or Inf values", path,
                 weights.prefix, p.key());
    p.value().copy_(t);
    ++info.tensors;
  }

  if (!ema.by_name.empty() && options.apply_ema) {
    for (auto& p : params) {
      auto it = ema.by_name.find(p.key());
      if (it == ema.by_name.end())
        fail("{}: the EMA entry has no '{}' (pass --no-ema to use the raw weights)", path, p.key());
      const auto& shape = ck.shape(it->second);
      if (c10::IntArrayRef(shape) != p.value().sizes())
        fail("{}: EMA tensor '{}' has shape {}, the model {}", path, p.key(), shape_text(shape),
             shape_text(p.value().sizes()));
      torch::Tensor t = to_torch(ck.read(it->second));
      DMEVAL_CHECK(torch::isfinite(t).all().item<bool>(), "{}: EMA tensor '{}' holds NaN or Inf values", path,
                   p.key());
      p.value().copy_(t);
    }
    info.ema_applied = true;
  }
  return info;
}

void save_unet_weights(const torch::nn::Module& model, const std::string& path,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<std::pair<std::string, TensorData>> tensors;
  for (const auto& p : model.named_parameters(/*recurse=*/true))
    tensors.emplace_back(p.key(), from_torch(p.value().detach().contiguous()));
  write_safetensors(path, tensors, metadata);
}

}  // namespace dmeval
