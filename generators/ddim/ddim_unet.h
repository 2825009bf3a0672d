// The ermongroup/ddim `Model` UNet (also pesser/pytorch_diffusion's and q-diffusion's copy) in
// libtorch, with identical state-dict names and the reference's operations in the same order, so
// that on one CPU thread it reproduces the reference bit for bit (spec generators.md §1).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <functional>
#include <string>

#include "generators/ddim/unet_config.h"
#include "generators/layers.h"

namespace dmeval {

// get_timestep_embedding(t, dim): float32 sinusoids, sin first, denominator half - 1.
torch::Tensor ddim_timestep_embedding(const torch::Tensor& t, int64_t dim);

// Receives named intermediate outputs during a forward pass (tests, calibration).
using ForwardObserver = std::function<void(const std::string& name, const torch::Tensor& value)>;

class ResnetBlockImpl : public torch::nn::Module {
 public:
  ResnetBlockImpl(int64_t in_channels, int64_t out_channels, int64_t temb_channels, double dropout);
  // `split` > 0: the input is cat([h, skip]) with h's channel count = split, passed to the 1x1
  // shortcut (q-diffusion's split quantization); conv1 sees the whole concatenation.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& temb, int64_t split = 0);

  int64_t in_channels, out_channels;
  double dropout;
  torch::nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  Conv2dLayer conv1{nullptr}, conv2{nullptr}, nin_shortcut{nullptr};
  LinearLayer temb_proj{nullptr};
  // While set, receives the block's inputs (x, temb) and output of every call (calibration caches).
  std::function<void(const torch::Tensor& x, const torch::Tensor& temb, const torch::Tensor& out)> probe;
};
TORCH_MODULE(ResnetBlock);

class AttnBlockImpl : public torch::nn::Module {
 public:
  explicit AttnBlockImpl(int64_t channels);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::GroupNorm norm{nullptr};
  Conv2dLayer q{nullptr}, k{nullptr}, v{nullptr}, proj_out{nullptr};
  std::shared_ptr<AttentionQuantizer> quantizer;
  std::function<void(const torch::Tensor& x, const torch::Tensor& out)> probe;
};

// Thrown by a probe to end a forward pass early once it has what it needs.
struct StopForward {};
TORCH_MODULE(AttnBlock);

class DdimUNetImpl : public torch::nn::Module {
 public:
  explicit DdimUNetImpl(const UNetConfig& config);

  // eps = model(x, t); x (B, in_channels, res, res) float, t (B,) of any numeric dtype.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t);
  // The same computation, reporting the intermediates the golden data stores (temb_sinusoid,
  // temb.dense.0/1, conv_in, down.i.block.j, down.i.attn.j, down.i.downsample, mid.*, up.*,
  // norm_out (before swish), conv_out).
  torch::Tensor forward_observed(const torch::Tensor& x, const torch::Tensor& t,
                                 const ForwardObserver& observer);

  // Runs the convolutions in channels-last layout (weights converted now, inputs per call). Not
  // bit-identical to the reference path; checked against it within the golden tolerance.
  void set_channels_last(bool on);
  bool channels_last() const { return channels_last_; }
  // q-diffusion's split shortcut: decoder blocks pass their first input's channel count to the
  // 1x1 shortcut (levels < 4). No effect on a float model.
  void set_split_shortcut(bool on) { split_shortcut_ = on; }
  bool split_shortcut() const { return split_shortcut_; }
  // Every attention block with its module path.
  std::vector<std::pair<std::string, AttnBlockImpl*>> attention_blocks();

  const UNetConfig& config() const { return config_; }

  struct Level : torch::nn::Module {
    torch::nn::ModuleList block, attn;
    std::shared_ptr<torch::nn::Module> resample;  // down.i.downsample / up.i.upsample (holds "conv")
    Conv2dLayer resample_conv{nullptr};
  };

 private:
  torch::Tensor run(const torch::Tensor& x, const torch::Tensor& t, const ForwardObserver* observer);

  UNetConfig config_;
  bool channels_last_ = false, split_shortcut_ = false;
  std::shared_ptr<torch::nn::Module> temb_;
  LinearLayer dense0_{nullptr}, dense1_{nullptr};
  Conv2dLayer conv_in_{nullptr}, conv_out_{nullptr};
  std::vector<std::shared_ptr<Level>> down_, up_;
  ResnetBlock mid_block_1_{nullptr}, mid_block_2_{nullptr};
  AttnBlock mid_attn_1_{nullptr};
  torch::nn::GroupNorm norm_out_{nullptr};
  torch::Tensor logvar_;
};
TORCH_MODULE(DdimUNet);

}  // namespace dmeval
