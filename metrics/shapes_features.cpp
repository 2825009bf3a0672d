#include "metrics/shapes_features.h"

#include <cstring>

#include "core/error.h"

namespace dmeval {

ShapesFeatureSink::ShapesFeatureSink(ShapesNet net, int64_t micro_batch)
    : net_(std::move(net)), micro_batch_(micro_batch), moments_(kShapesFeatureDim) {
  DMEVAL_CHECK(micro_batch_ >= 1, "micro-batch {}", micro_batch_);
  net_->eval();
}

void ShapesFeatureSink::consume(const ImageBatch& batch) {
  torch::NoGradGuard no_grad;
  const int64_t n = static_cast<int64_t>(batch.images.size());
  for (int64_t s = 0; s < n; s += micro_batch_) {
    // A full micro-batch always (the last one padded with copies), so results do not depend on the
    // batch layout: convolution kernels are chosen by shape.
    torch::Tensor x = torch::empty({micro_batch_, 32, 32, 3}, torch::kUInt8);
    const int64_t m = std::min(micro_batch_, n - s);
    for (int64_t i = 0; i < micro_batch_; ++i) {
      const Image& im = batch.images[static_cast<size_t>(s + std::min(i, m - 1))];
      DMEVAL_CHECK(im.height == 32 && im.width == 32, "shapes-net takes 32x32 images; image {} is {}x{}",
                   batch.first_index + s + i, im.width, im.height);
      std::memcpy(x[i].data_ptr<uint8_t>(), im.pixels.data(), im.pixels.size());
    }
    auto out = net_->forward(shapes_net_input(x));
    torch::Tensor f = out.features.slice(0, 0, m).contiguous(), l = out.logits.slice(0, 0, m).contiguous();
    moments_.add(batch.first_index + s, f);
    features_.push_back(f);
    logits_.push_back(l);
  }
}

torch::Tensor ShapesFeatureSink::features() const {
  return features_.empty() ? torch::empty({0, kShapesFeatureDim}) : torch::cat(features_, 0);
}

torch::Tensor ShapesFeatureSink::logits() const {
  return logits_.empty() ? torch::empty({0, net_->classes}) : torch::cat(logits_, 0);
}

}  // namespace dmeval
