// Loading UNet weights from the files users have (spec generators.md §2):
//   * pesser/pytorch_diffusion checkpoints (`model-790000.ckpt`, EMA and raw): a plain state dict;
//   * ddim training checkpoints (`ckpt.pth`): a list [model, optimizer, epoch, step, ema] whose
//     model keys carry DataParallel's `module.` prefix; the EMA entry is applied (as ddim does
//     when `model.ema` is set) unless disabled;
//   * safetensors files with the same key names.
// Every key and shape is checked; errors name the file, the key and both shapes. The file's
// SHA-256 and MD5 are computed and matched against the known public files.
#pragma once

#include <torch/nn/module.h>

#include <map>
#include <string>

namespace dmeval {

struct UNetWeightsOptions {
  bool apply_ema = true;  // ddim training checkpoints: copy the EMA entry into the parameters
  // A file whose name is a known public file's but whose checksum matches none of them is
  // refused (a corrupt or different download) unless this is set.
  bool allow_unknown = false;
  bool hash = true;  // compute SHA-256/MD5 (tests may skip for speed)
};

struct UNetWeightsInfo {
  std::string path;
  std::string format;  // "torch.save zip", "torch.save legacy", "safetensors"
  std::string layout;  // "state dict", "ddim training checkpoint", ...
  std::string sha256, md5;
  std::string known_file;  // description of the recognised public file, or ""
  bool ema_applied = false;
  int64_t training_step = -1;  // ddim training checkpoints
  int64_t tensors = 0;
  std::string source_dtype;  // dtype of the stored weights (converted to the model's)
};

// Loads into `model` (whose named_parameters() define the expected keys and shapes).
UNetWeightsInfo load_unet_weights(torch::nn::Module& model, const std::string& path,
                                  const UNetWeightsOptions& options = {});

// Writes the parameters as safetensors with the same key names (and optional metadata).
void save_unet_weights(const torch::nn::Module& model, const std::string& path,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace dmeval
