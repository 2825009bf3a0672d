// The SR3 full-precision baseline of BI-DiffSR's Table 2 (spec bi-diffsr.md §9): Janspiry's SR3 `UNet`
// (model/sr3_modules/unet.py) built with BI-DiffSR's settings — ResnetBlocks with a 1x1 shortcut where the
// width changes and an additive noise-level projection, stride-2 conv Downsample, nearest ×2 + conv
// Upsample, plain concatenated skips, single-head attention, `noise_level_mlp` — with its state-dict names.
// Its weights are not released; the network and its Params/OPs are what the table compares (checked: the
// parameter count and every MAC of the table's row). The state-dict names follow Janspiry's unet.py as read
// for the spec; no released file exists to check them against.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <vector>

#include "generators/bi_diffsr/bi_diffsr_unet.h"

namespace dmeval {

class Sr3UNetImpl : public torch::nn::Module {
 public:
  // Uses in/out/inner channels, norm_groups, channel_mults, attn_res, res_blocks and image_size.
  explicit Sr3UNetImpl(const BiDiffSrConfig& config);
  // ε for x (B, 3, H, W) on the condition c (B, 3, H, W) at timesteps t ((B,) or (B, 1)).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& c, const torch::Tensor& t);
  const BiDiffSrConfig& config() const { return config_; }
  struct Layer;

 private:
  BiDiffSrConfig config_;
  torch::nn::Linear mlp1_{nullptr}, mlp3_{nullptr};
  torch::nn::Conv2d conv_in_{nullptr};                     // downs.0
  std::vector<std::shared_ptr<Layer>> downs_, mid_, ups_;  // downs_[i] is downs.(i + 1)
  torch::nn::GroupNorm final_norm_{nullptr};
  torch::nn::Conv2d final_conv_{nullptr};
};
TORCH_MODULE(Sr3UNet);

// Params and OPs as Table 2 counts them (all float: OPs = conv/linear MACs + attention MACs + 5 × GroupNorm
// elements + 1 per nearest-upsample output element).
struct Sr3Cost {
  int64_t params = 0;
  double macs_conv = 0, macs_linear = 0, macs_attention = 0, groupnorm_elements = 0, upsample_elements = 0;
  double macs_conv_linear() const { return macs_conv + macs_linear; }
  double ops_g() const {
    return (macs_conv_linear() + macs_attention + 5.0 * groupnorm_elements + upsample_elements) / 1e9;
  }
};
Sr3Cost sr3_cost(Sr3UNetImpl& net, int64_t height, int64_t width);

}  // namespace dmeval
