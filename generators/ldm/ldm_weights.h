// Weights of latent-diffusion models from the files users have: a Lightning .ckpt (weights under
// "state_dict"), a bare torch state dict or safetensors, each model part under its prefix
// (`model.diffusion_model.`, `first_stage_model.`, `cond_stage_model.`).
#pragma once

#include <torch/nn/module.h>

#include <map>
#include <string>
#include <vector>

namespace dmeval {

// Loads `prefix` + every parameter name of `module` from a torch/Lightning checkpoint or safetensors
// file (`model.diffusion_model.` for the UNet of an LDM .ckpt, `cond_stage_model.` for the class
// embedder). Every parameter must be present with its shape, and no other key under the prefix may
// exist except under the `ignored` sub-prefixes (the first stage's encoder, quant_conv and loss, which
// sampling does not use); errors name the file, the first offending key and both shapes. Returns the
// file's SHA-256.
std::string load_ldm_weights(torch::nn::Module& module, const std::string& path, const std::string& prefix,
                             const std::vector<std::string>& ignored = {});

// The model_ema.* name of a UNet parameter: "model_ema." + ("diffusion_model." + name) without dots
// (LitEma, spec ldm.md §4).
std::string ldm_ema_key(const std::string& unet_param);

// The parts of a latent-diffusion model one checkpoint holds.
struct LdmParts {
  torch::nn::Module* unet = nullptr;         // model.diffusion_model.*
  torch::nn::Module* first_stage = nullptr;  // first_stage_model.* (decode path)
  torch::nn::Module* cond_stage = nullptr;   // cond_stage_model.* (null: unconditional)
};

struct LdmCheckpointInfo {
  std::string path, sha256, format;
  int64_t size_bytes = 0, global_step = -1;
  bool ema_applied = false;
  std::string known_file;  // the public file it is ("" = not recognised)
  // The first stage's own file when it came from one (else the checkpoint's first_stage_model.*).
  std::string first_stage_path, first_stage_sha256;
};

// Writes the parts under their checkpoint prefixes to a safetensors file (with `metadata`), which
// load_ldm_checkpoint reads back (no EMA copies: the weights written are the ones sampled with).
void save_ldm_checkpoint(const LdmParts& parts, const std::string& path,
                         const std::map<std::string, std::string>& metadata = {});

// A whole LatentDiffusion checkpoint (Lightning .ckpt, bare state dict or safetensors) as the
// reference samples it: the UNet, then with `apply_ema` every model_ema.* copy on its parameter
// (CompVis ema_scope / q-diffusion copy_to; all must be present), the first stage's decode path and
// the conditioning stage, every key and shape checked (errors name the file, the first mismatching
// key and both shapes). Known files are recognised by SHA-256, or by name and size where the model zoo
// publishes no checksum (spec ldm.md §10).
// With `first_stage_path` the first stage comes from that file instead: its first_stage_model.* tensors,
// or, in a first-stage checkpoint (VQ-f4 model.ckpt), its own encoder/decoder/quantize keys.
LdmCheckpointInfo load_ldm_checkpoint(const LdmParts& parts, const std::string& path, bool apply_ema,
                                      const std::string& first_stage_path = "");

}  // namespace dmeval
