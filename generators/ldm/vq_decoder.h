// The decoding half of latent-diffusion's VQ first stage (VQModelInterface.decode; spec ldm.md §2):
// the codebook lookup of taming-transformers' VectorQuantizer2 (legacy: expanded squared distances in
// float32, first index on ties, z + (E[idx] - z)), post_quant_conv, and the Decoder (conv_in, mid
// ResnetBlock / AttnBlock / ResnetBlock, the up levels with nrb + 1 ResnetBlocks each and nearest x2
// upsampling, GroupNorm eps 1e-6, swish x*sigmoid(x), no timestep embedding, no tanh), with the
// reference's state-dict names under `first_stage_model.`. Optionally the encoding half too (taming's
// Encoder: conv_in, down levels of nrb ResnetBlocks with the asymmetrically padded stride-2 Downsample,
// mid, norm_out, conv_out to z_channels; then quant_conv; VQModelInterface.encode returns that
// pre-quantization h), which training needs and sampling does not. And the three uint8 conversions of
// the reference scripts (spec §8).
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "generators/layers.h"
#include "generators/ldm/ldm_config.h"

namespace dmeval {

struct VqDecodeResult {
  torch::Tensor indices;    // (B, h, w) int64 codebook indices (undefined without quantization)
  torch::Tensor quantized;  // z + (E[idx] - z), (B, C, h, w)
  torch::Tensor images;     // decoder output, nominally [-1, 1], not clamped
};

class VqDecoderImpl;
TORCH_MODULE(VqDecoder);
class VqEncoderImpl;
TORCH_MODULE(VqEncoder);

class VqFirstStageImpl : public torch::nn::Module {
 public:
  // with_encoder: also the encoder and quant_conv (keys first_stage_model.encoder.*, quant_conv.*).
  explicit VqFirstStageImpl(const VqDecoderConfig& config, bool with_encoder = false);
  bool has_encoder() const { return !encoder.is_empty(); }
  // VQModelInterface.encode: quant_conv(encoder(x)) for images x in [-1, 1], before quantization.
  torch::Tensor encode(const torch::Tensor& x);
  // decode_first_stage(z): quantize (unless force_not_quantize), post_quant_conv, decoder.
  VqDecodeResult decode(const torch::Tensor& z, bool force_not_quantize = false);
  // The codebook step alone: indices and z_q.
  std::pair<torch::Tensor, torch::Tensor> quantize(const torch::Tensor& z);
  torch::Tensor post_quant(const torch::Tensor& z) { return post_quant_conv->forward(z); }
  const VqDecoderConfig& config() const { return config_; }

  torch::nn::Embedding codebook{nullptr};  // key quantize.embedding
  Conv2dLayer post_quant_conv{nullptr};
  VqDecoder decoder{nullptr};
  VqEncoder encoder{nullptr};
  Conv2dLayer quant_conv{nullptr};

 private:
  VqDecoderConfig config_;
};
TORCH_MODULE(VqFirstStage);

// The reference scripts' conversions of decoded images (B, 3, H, W) to uint8 (B, H, W, 3); all
// truncate. "png": CompVis/q-diffusion custom_to_pil (clamp, (x+1)/2, *255); "np": custom_to_np
// (((x+1)*127.5).clamp(0,255)); "ptqd": PTQD's double mapping (clamp((x+1)/2, 0, 1), then the "np"
// formula: every value in 127..255) — a quirk, never a default.
torch::Tensor ldm_images_to_uint8(const torch::Tensor& images, const std::string& conversion);
const std::vector<std::string>& ldm_uint8_conversions();

}  // namespace dmeval
