// Image preprocessing of each reference tool, bit-faithful (shared/spec/metrics-inception.md §2):
// decoded RGB uint8 in, the float32 3x299x299 tensor the tool feeds its network out.
#pragma once

#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

#include "core/image.h"

namespace dmeval {

enum class PreprocessMode {
  kPytorchFid,          // PyTorch bilinear (half-pixel) on u8/255, then 2x-1
  kTf,                  // TF1 legacy bilinear on 0..255, (x-128)/128: torch-fidelity and ADM
  kClean,               // clean-fid "clean": Pillow antialiased bicubic on float, clip, (x-128)/128
  kCleanLegacyPytorch,  // clean-fid "legacy_pytorch": PyTorch bilinear on 0..255, clip, 2(x/255)-1
};

const char* preprocess_mode_name(PreprocessMode m);
std::optional<PreprocessMode> preprocess_mode_from_name(const std::string& name);
const std::vector<std::string>& preprocess_mode_names();

// One image to the network input (3 x size x size float32).
torch::Tensor preprocess(const Image& image, PreprocessMode mode, int size = 299);

// Plain resizes exposed for tests (HWC float32 planes of one channel, row-major).
std::vector<float> resize_tf_legacy_bilinear(const std::vector<float>& in, int ih, int iw, int oh, int ow);
std::vector<float> resize_pillow_bicubic(const std::vector<float>& in, int ih, int iw, int oh, int ow);

}  // namespace dmeval
