// Weights of latent-diffusion models from the files users have: a Lightning .ckpt (weights under
// "state_dict"), a bare torch state dict or safetensors, each model part under its prefix
// (`model.diffusion_model.`, `first_stage_model.`, `cond_stage_model.`).
#pragma once

#include <torch/nn/module.h>

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

}  // namespace dmeval
