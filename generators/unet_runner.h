// Runs a noise-prediction network for the samplers: on a device, optionally channels-last, in fixed-size
// evaluation micro-batches. oneDNN and BLAS choose their kernels by shape, so the same image evaluated in a
// batch of 1 and in a batch of 7 differs in the last bits (measured: up to 3e-5 per convolution);
// evaluating every image inside micro-batches of one fixed size (the last one padded) makes each
// image's result independent of the batch it is sampled in, of its position and of the other
// images, so samples are byte-identical for any --batch, shard layout or resume point.
#pragma once

#include <torch/types.h>

#include <functional>
#include <string>

#include "generators/samplers.h"

namespace dmeval {

struct UNetRunOptions {
  torch::Device device = torch::kCPU;
  int64_t micro_batch = 8;  // images per network evaluation (recorded with results)
  bool channels_last = false;
};

// One network pass on a micro-batch (x, t); `rows` (int64, one per image) are the micro-batch's rows in
// the sampler's batch, so that a conditional family takes the same rows of its conditioning.
using NetworkForward =
    std::function<torch::Tensor(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& rows)>;

// The sampler's view of `forward`: without gradients, in micro-batches of exactly options.micro_batch
// images (the last one padded with copies of its last image, whose outputs are dropped). Any family's
// eps() goes through here; the family moves its network to the device first
// (prepare_device_arithmetic below).
EpsModel micro_batched_eps(NetworkForward forward, const UNetRunOptions& options);

// On CUDA, TF32 is switched off for cuDNN and cuBLAS (float32 arithmetic as on the CPU reference path).
void prepare_device_arithmetic(const UNetRunOptions& options);

// Parses "cpu", "cuda", "cuda:1"; throws if CUDA is asked for but not available.
torch::Device parse_device(const std::string& name);

}  // namespace dmeval
