// CompVis/latent-diffusion's UNetModel (ldm/modules/diffusionmodules/openaimodel.py) and the
// ClassEmbedder of cin256-v2, in libtorch with the reference's state-dict names (spec ldm.md §1, §3):
// cos-first timestep embedding, GroupNorm32 (eps 1e-5), ResBlocks with an additive timestep
// embedding, symmetric-padding downsampling, multi-head AttentionBlock (legacy QKV order: the qkv
// channels grouped per head) or SpatialTransformer (self-attention, cross-attention to a context,
// GEGLU feed-forward; GroupNorm eps 1e-6, LayerNorm eps 1e-5), the skip stack concatenated as
// cat([h, skip]). The configurations used by the LSUN-Bedrooms LDM-4 and cin256-v2 models are
// supported; the options neither uses (scale-shift norm, up/down ResBlocks, ADM label embedding,
// the new attention order) are refused when a config asks for them.
//
// Quantizable layers are Conv2dLayer/LinearLayer with roles (generators/layers.h); the AttentionBlock
// projections are the 1-D form of Conv2dLayer (nn.Conv1d's weight shape). Attention blocks expose
// quantizer slots for the matrix products (attention_hooks).
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "generators/layers.h"
#include "generators/ldm/ldm_config.h"

namespace dmeval {

// One TimestepEmbedSequential: its children "0", "1", "2" in order, each a ResBlock, an attention
// block, a transformer, a down/upsample or a plain conv.
class LdmBlockImpl;
TORCH_MODULE(LdmBlock);

class LdmUNetImpl : public torch::nn::Module {
 public:
  explicit LdmUNetImpl(const LdmUNetConfig& config);
  // x: (B, C, H, W) latents; t: (B,) timesteps (int64 or float); context: (B, L, context_dim) for
  // SpatialTransformer models, undefined otherwise.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& context = {});
  // The same pass, recording the time-MLP output and every input/middle/output block's output
  // ("time_embed", "input_blocks.<i>", "middle_block", "output_blocks.<i>", "out.0_groupnorm").
  torch::Tensor forward_traced(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& context,
                               std::vector<std::pair<std::string, torch::Tensor>>* trace);
  const LdmUNetConfig& config() const { return config_; }
  // The quantizer slots of every AttentionBlock (q-diffusion's qkv_matmul / smv_matmul names) and of
  // every transformer attention (attn1, attn2), in module order.
  std::vector<AttentionHook> attention_hooks();
  // q-diffusion's split shortcut on the output blocks' 1x1 skip convolutions (spec ldm.md §11.1).
  void set_split_shortcut(bool on);

 private:
  LdmUNetConfig config_;
  LinearLayer time_embed_0_{nullptr}, time_embed_2_{nullptr};
  std::vector<LdmBlock> input_blocks_, output_blocks_;
  LdmBlock middle_block_{nullptr};
  torch::nn::GroupNorm out_norm_{nullptr};
  Conv2dLayer out_conv_{nullptr};
};
TORCH_MODULE(LdmUNet);

// The reference's timestep_embedding(t, dim): cat([cos(t f), sin(t f)]) with
// f_i = exp(-ln(10000) i / half) in float32.
torch::Tensor ldm_timestep_embedding(const torch::Tensor& t, int64_t dim);

// cin256-v2's ClassEmbedder: `embedding` (n_classes, embed_dim); a batch of labels becomes a
// one-token context (B, 1, embed_dim). The last class is the unconditional one of classifier-free
// guidance in the released model (index 1000 of 1001).
class ClassEmbedderImpl : public torch::nn::Module {
 public:
  ClassEmbedderImpl(int64_t n_classes, int64_t embed_dim);
  torch::Tensor forward(const torch::Tensor& labels);
  int64_t n_classes, embed_dim;
  torch::nn::Embedding embedding{nullptr};
};
TORCH_MODULE(ClassEmbedder);

}  // namespace dmeval
