#include "metrics/shapes_net.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <set>

#include "core/checkpoint.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "core/torch_bridge.h"

namespace dmeval {

namespace {
torch::nn::Conv2d conv(int64_t in, int64_t out) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).padding(1));
}
}  // namespace

ShapesNetImpl::ShapesNetImpl(int64_t n) : classes(n) {
  c1 = register_module("c1", conv(3, 32));
  c2 = register_module("c2", conv(32, 64));
  c3 = register_module("c3", conv(64, 128));
  fc1 = register_module("fc1", torch::nn::Linear(128 * 4 * 4, kShapesFeatureDim));
  fc2 = register_module("fc2", torch::nn::Linear(kShapesFeatureDim, n));
}

ShapesNetImpl::Outputs ShapesNetImpl::forward(const torch::Tensor& x) {
  DMEVAL_CHECK(x.dim() == 4 && x.size(1) == 3 && x.size(2) == 32 && x.size(3) == 32,
               "shapes-net takes (N, 3, 32, 32) images");
  torch::Tensor h = torch::max_pool2d(torch::relu(c1(x)), 2);
  h = torch::max_pool2d(torch::relu(c2(h)), 2);
  Outputs o;
  o.spatial = h.slice(1, 0, kShapesSpatialChannels).flatten(1);
  h = torch::max_pool2d(torch::relu(c3(h)), 2);
  o.features = torch::relu(fc1(h.flatten(1)));
  o.logits = fc2(o.features);
  return o;
}

torch::Tensor shapes_net_input(const torch::Tensor& images) {
  DMEVAL_CHECK(images.dim() == 4 && images.size(3) == 3 && images.scalar_type() == torch::kUInt8,
               "shapes-net input must be N x H x W x 3 uint8");
  return images.permute({0, 3, 1, 2}).to(torch::kFloat32) / 127.5 - 1.0;
}

ShapesNet load_shapes_net(const std::string& path) {
  Checkpoint ck = Checkpoint::open(path);
  std::map<std::string, torch::Tensor> found = load_tensors(ck);
  int64_t classes = 4;
  if (auto it = found.find("fc2.bias"); it != found.end() && it->second.dim() == 1)
    classes = it->second.size(0);
  ShapesNet net(classes);
  torch::NoGradGuard no_grad;
  std::set<std::string> used;
  for (auto& p : net->named_parameters()) {
    auto it = found.find(p.key());
    DMEVAL_CHECK(it != found.end(), "{}: no tensor '{}' (not a shapes-net file?)", path, p.key());
    torch::Tensor t = it->second.to(torch::kFloat32);
    DMEVAL_CHECK(t.sizes() == p.value().sizes(), "{}: '{}' has shape [{}], shapes-net needs [{}]", path,
                 p.key(), fmt::join(t.sizes(), ", "), fmt::join(p.value().sizes(), ", "));
    p.value().copy_(t);
    used.insert(p.key());
  }
  for (const auto& [k, v] : found) DMEVAL_CHECK(used.count(k), "{}: unexpected tensor '{}'", path, k);
  net->eval();
  return net;
}

void save_shapes_net(const ShapesNet& net, const std::string& path,
                     const std::map<std::string, std::string>& meta) {
  std::vector<std::pair<std::string, TensorData>> t;
  for (const auto& p : net->named_parameters())
    t.emplace_back(p.key(), from_torch(p.value().detach().contiguous()));
  write_safetensors(path, t, meta);
}

double shapes_net_accuracy(ShapesNet& net, const ClassifierBatch& b) {
  torch::NoGradGuard no_grad;
  net->eval();
  torch::Tensor pred = net->forward(shapes_net_input(b.images)).logits.argmax(1);
  return (pred == b.labels).to(torch::kFloat64).mean().item<double>();
}

ShapesNet train_shapes_net(const ClassifierTrainOptions& o,
                           const std::function<ClassifierBatch(int64_t)>& next,
                           const std::function<void(int64_t, double, double)>& on_log) {
  torch::manual_seed(o.seed);
  ShapesNet net(4);
  torch::optim::AdamW opt(net->parameters(), torch::optim::AdamWOptions(o.lr).weight_decay(1e-4));
  double loss_acc = 0, acc_acc = 0;
  int64_t n = 0;
  for (int64_t step = 0; step < o.steps; ++step) {
    net->train();
    ClassifierBatch b = next(step);
    auto out = net->forward(shapes_net_input(b.images));
    torch::Tensor loss = torch::nn::functional::cross_entropy(out.logits, b.labels);
    opt.zero_grad();
    loss.backward();
    opt.step();
    loss_acc += loss.item<double>();
    acc_acc += (out.logits.argmax(1) == b.labels).to(torch::kFloat64).mean().item<double>();
    ++n;
    if ((step + 1) % o.log_every == 0 || step + 1 == o.steps) {
      if (on_log) on_log(step + 1, loss_acc / n, acc_acc / n);
      loss_acc = acc_acc = 0, n = 0;
    }
  }
  net->eval();
  return net;
}

}  // namespace dmeval
