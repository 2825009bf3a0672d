// Runs a UNet for the samplers: on a device, optionally channels-last, in fixed-size evaluation
// micro-batches. oneDNN and BLAS choose their kernels by shape, so the same image evaluated in a
// batch of 1 and in a batch of 7 differs in the last bits (measured: up to 3e-5 per convolution);
// evaluating every image inside micro-batches of one fixed size (the last one padded) makes each
// image's result independent of the batch it is sampled in, of its position and of the other
// images, so samples are byte-identical for any --batch, shard layout or resume point.
#pragma once

#include <torch/types.h>

#include <string>

#include "generators/ddim/ddim_unet.h"
#include "generators/samplers.h"

namespace dmeval {

struct UNetRunOptions {
  torch::Device device = torch::kCPU;
  int64_t micro_batch = 8;  // images per network evaluation (recorded with results)
  bool channels_last = false;
};

// Moves the model to the device (and layout) and returns the sampler's view of it. On CUDA, TF32 is
// switched off for cuDNN and cuBLAS (float32 arithmetic as on the CPU reference path).
EpsModel make_unet_eps(DdimUNet model, const UNetRunOptions& options);

// Parses "cpu", "cuda", "cuda:1"; throws if CUDA is asked for but not available.
torch::Device parse_device(const std::string& name);

}  // namespace dmeval
