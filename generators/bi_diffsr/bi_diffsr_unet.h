// BI-DiffSR's binarized SR diffusion UNet (zhengchen1999/BI-DiffSR `BIDiffSRUNet`, spec bi-diffsr.md
// §1-§4), with the reference's state-dict names: BIConv = RPReLU_g(HardBinaryConv(sign(x + TaR_g))) + x
// (per-channel mean|W|·sign(W), timestep-group shift and activation), BI/FP resnet blocks without
// shortcuts, CP_Down / CP_Up (pixel (un)shuffle around two BIConvs), CS_Fusion (channel-shuffled halves
// through two 1x1 BIConvs; the FP variant with biased plain convs, quirk Q3), single-head SelfAttention in
// mid.0, the integer-timestep sinusoid MLP, and the group index from batch element 0 (quirk Q4).
// The binarizations use the exact sign / α·sign values (spec Q2: the reference's straight-through
// expressions differ by at most one rounding, ≤ 8.6e-7 on ε).
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace dmeval {

struct BiDiffSrConfig {
  int64_t in_channel = 6, out_channel = 3, inner_channel = 64, norm_groups = 16;
  std::vector<int64_t> channel_mults = {1, 2, 4, 8};
  std::vector<int64_t> attn_res;
  int64_t res_blocks = 2;
  double dropout = 0.2;  // training only
  int64_t image_size = 256;
  std::vector<int64_t> fp_res = {256, 128};
  int64_t total_step = 2000, dynamic_group = 5;
};

// The `network_g` block of a BI-DiffSR options file (or its JSON form); unknown keys and a type other
// than BIDiffSRUNet are errors naming `source`.
BiDiffSrConfig bi_diffsr_config_from_json(const nlohmann::json& network_g, const std::string& source);

class BiDiffSrUNetImpl : public torch::nn::Module {
 public:
  explicit BiDiffSrUNetImpl(const BiDiffSrConfig& config);
  // ε for the noisy image x (B, 3, H, W), the condition c (B, 3, H, W: the upsampled LR image) and the
  // integer timesteps t ((B,) or (B, 1), int64). The timestep group is t[0]'s for the whole batch.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& c, const torch::Tensor& t);
  // The same, recording the top-level modules' outputs ("timestep_level_mlp", "downs.N", "mid.N",
  // "ups.N", "final_conv") in call order.
  torch::Tensor forward_traced(const torch::Tensor& x, const torch::Tensor& c, const torch::Tensor& t,
                               std::vector<std::pair<std::string, torch::Tensor>>* trace);
  // clamp(int(t · K / total_step), 0, K − 1).
  int64_t group_of(int64_t t) const;
  const BiDiffSrConfig& config() const { return config_; }

  struct Layer;  // one entry of downs / mid / ups

 private:
  BiDiffSrConfig config_;
  torch::nn::Linear mlp1_{nullptr}, mlp3_{nullptr};
  std::vector<std::shared_ptr<Layer>> downs_, mid_, ups_;
  torch::nn::GroupNorm final_norm_{nullptr};
  torch::nn::Conv2d final_conv_{nullptr};
};
TORCH_MODULE(BiDiffSrUNet);

// The integer-timestep sinusoid: cat[sin(t·f_j), cos(t·f_j)], f_j = exp(−ln(1e4)·j / (dim/2)), float32.
torch::Tensor bi_diffsr_timestep_embedding(const torch::Tensor& t, int64_t dim);

// Runs one inner module of a network on the given input, as the reference's forward hooks see it: a BIConv
// (timestep group g; `parts` receives "TaR", "binary_activation", "binary_conv", "TaA" and the binarised
// weight "w_ideal" = α·sign(W)) or a SelfAttention. Other modules are refused, naming their path.
torch::Tensor bi_diffsr_run_inner(torch::nn::Module& module, const torch::Tensor& x, int64_t g,
                                  std::map<std::string, torch::Tensor>* parts = nullptr);

// Params and OPs as BI-DiffSR's Table 2 counts them (spec bi-diffsr.md §8, fvcore conventions): Params =
// FP parameters + binary weights / 32; OPs = FP conv/linear MACs + binary MACs / 64 + attention matmul MACs
// + 5 × GroupNorm elements, for one network pass on a (height, width) image (batch 1).
struct BiDiffSrCost {
  int64_t params_total = 0, params_binary = 0;
  double macs_fp_conv = 0, macs_linear = 0, macs_binary = 0, macs_attention = 0, groupnorm_elements = 0;
  double params_m() const {
    return (static_cast<double>(params_total - params_binary) + static_cast<double>(params_binary) / 32.0) /
           1e6;
  }
  double macs_fp() const { return macs_fp_conv + macs_linear; }
  double ops_g() const {
    return (macs_fp() + macs_binary / 64.0 + macs_attention + 5.0 * groupnorm_elements) / 1e9;
  }
};
BiDiffSrCost bi_diffsr_cost(BiDiffSrUNetImpl& net, int64_t height, int64_t width);

// Loads a BasicSR checkpoint (`params`, or `params_ema` when asked and present; `module.` prefixes
// stripped) strictly into `net`: every key and shape checked, errors naming the file. Returns the key used.
std::string load_bi_diffsr_weights(BiDiffSrUNetImpl& net, const std::string& path, bool ema = false);

}  // namespace dmeval
