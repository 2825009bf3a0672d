#include "metrics/shapes_features.h"

#include <cstring>

#include "core/error.h"

namespace dmeval {

ShapesFeatureSink::ShapesFeatureSink(ShapesNet net, int64_t micro_batch)
    : net_(std::move(net)), micro_batch_(micro_batch), moments_(kShapesFeatureDim) {
  DMEVAL_CHECK(micro_batch_ >= 1, "micro-batch {}", micro_batch_);
  net_->eval();
}

std::map<std::string, torch::Tensor> shapes_net_extract(ShapesNet& net, const ImageBatch& batch,
                                                        int64_t micro_batch) {
  torch::NoGradGuard no_grad;
  const int64_t n = static_cast<int64_t>(batch.images.size());
  std::vector<torch::Tensor> fs, ls;
  for (int64_t s = 0; s < n; s += micro_batch) {
    // A full micro-batch always (the last one padded with copies), so results do not depend on the
    // batch layout: convolution kernels are chosen by shape.
    torch::Tensor x = torch::empty({micro_batch, 32, 32, 3}, torch::kUInt8);
    const int64_t m = std::min(micro_batch, n - s);
    for (int64_t i = 0; i < micro_batch; ++i) {
      const Image& im = batch.images[static_cast<size_t>(s + std::min(i, m - 1))];
      DMEVAL_CHECK(im.height == 32 && im.width == 32, "shapes-net takes 32x32 images; image {} is {}x{}",
                   batch.first_index + s + std::min(i, m - 1), im.width, im.height);
      std::memcpy(x[i].data_ptr<uint8_t>(), im.pixels.data(), im.pixels.size());
    }
    auto out = net->forward(shapes_net_input(x));
    fs.push_back(out.features.slice(0, 0, m).contiguous());
    ls.push_back(out.logits.slice(0, 0, m).contiguous());
  }
  if (fs.empty())
    return {{"features", torch::empty({0, kShapesFeatureDim})}, {"logits", torch::empty({0, net->classes})}};
  return {{"features", torch::cat(fs, 0)}, {"logits", torch::cat(ls, 0)}};
}

void ShapesFeatureSink::consume(const ImageBatch& batch) {
  auto rows = shapes_net_extract(net_, batch, micro_batch_);
  moments_.add(batch.first_index, rows.at("features"));
  features_.push_back(rows.at("features"));
  logits_.push_back(rows.at("logits"));
}

torch::Tensor ShapesFeatureSink::features() const {
  return features_.empty() ? torch::empty({0, kShapesFeatureDim}) : torch::cat(features_, 0);
}

torch::Tensor ShapesFeatureSink::logits() const {
  return logits_.empty() ? torch::empty({0, net_->classes}) : torch::cat(logits_, 0);
}

}  // namespace dmeval
