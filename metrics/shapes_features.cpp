#include "metrics/shapes_features.h"

#include <fmt/format.h>

#include <cstring>

#include "core/error.h"
#include "core/hash.h"

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
  std::vector<torch::Tensor> fs, ls, ss;
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
    ss.push_back(out.spatial.slice(0, 0, m).contiguous());
  }
  if (fs.empty())
    return {{"features", torch::empty({0, kShapesFeatureDim})},
            {"spatial", torch::empty({0, kShapesSpatialDim})},
            {"logits", torch::empty({0, net->classes})}};
  return {{"features", torch::cat(fs, 0)}, {"spatial", torch::cat(ss, 0)}, {"logits", torch::cat(ls, 0)}};
}

void ShapesFeatureSink::consume(const ImageBatch& batch) {
  auto rows = shapes_net_extract(net_, batch, micro_batch_);
  moments_.add(batch.first_index, rows.at("features"));
  features_.push_back(rows.at("features"));
  logits_.push_back(rows.at("logits"));
}

ScoringNetwork shapes_scoring_network(const std::string& path, int64_t micro_batch) {
  ScoringNetwork s;
  s.name = "shapes-net";
  s.label = "shapes-net";
  s.metric_suffix = "[shapes-net]";
  s.weights_sha256 = sha256_file(path);
  s.mode = "shapes-net uint8/127.5-1";
  s.provenance = fmt::format("shapes-net {}; uint8/127.5-1; micro-batch {}", s.weights_sha256.substr(0, 16),
                             micro_batch);
  s.pool_desc = "fc1 (256)";
  s.spatial_desc = "c2 pooled [:32] (2048)";
  s.logits_desc = "fc2 logits (4)";
  s.pool_dim = kShapesFeatureDim;
  s.spatial_dim = kShapesSpatialDim;
  ShapesNet net = load_shapes_net(path);
  net->eval();
  s.extract = [net, micro_batch](const ImageBatch& b) mutable {
    auto rows = shapes_net_extract(net, b, micro_batch);
    return std::map<std::string, torch::Tensor>{
        {"pool", rows.at("features")}, {"spatial", rows.at("spatial")}, {"logits", rows.at("logits")}};
  };
  return s;
}

torch::Tensor ShapesFeatureSink::features() const {
  return features_.empty() ? torch::empty({0, kShapesFeatureDim}) : torch::cat(features_, 0);
}

torch::Tensor ShapesFeatureSink::logits() const {
  return logits_.empty() ? torch::empty({0, net_->classes}) : torch::cat(logits_, 0);
}

}  // namespace dmeval
