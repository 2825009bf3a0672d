#include "metrics/lpips.h"

#include <torch/torch.h>

#include <map>

#include "core/error.h"
#include "core/torch_bridge.h"

namespace dmeval {

namespace {

// One step of a backbone `features` stack. Convs are always followed by ReLU (torchvision).
struct Step {
  enum Kind { kConv, kPool, kFire, kTap } kind;
  int index = 0;  // torchvision module index in `features`
  // conv: out, in, kernel, stride, padding; fire: in, squeeze, expand1x1, expand3x3
  int a = 0, b = 0, k = 0, stride = 1, pad = 0;
  bool ceil = false;  // pool ceil_mode
};

Step conv(int index, int out, int in, int k, int stride, int pad) {
  return {Step::kConv, index, out, in, k, stride, pad};
}
Step pool(int k, int stride, bool ceil) {
  return {Step::kPool, 0, 0, 0, k, stride, 0, ceil};
}
Step fire(int index, int in, int squeeze, int expand) {
  return {Step::kFire, index, in, squeeze, expand};
}
Step tap() {
  return {Step::kTap};
}

const std::vector<Step>& architecture(LpipsNet net) {
  static const std::vector<Step> kAlex = {conv(0, 64, 3, 11, 4, 2),
                                          tap(),
                                          pool(3, 2, false),
                                          conv(3, 192, 64, 5, 1, 2),
                                          tap(),
                                          pool(3, 2, false),
                                          conv(6, 384, 192, 3, 1, 1),
                                          tap(),
                                          conv(8, 256, 384, 3, 1, 1),
                                          tap(),
                                          conv(10, 256, 256, 3, 1, 1),
                                          tap()};
  static const std::vector<Step> kVgg = {conv(0, 64, 3, 3, 1, 1),
                                         conv(2, 64, 64, 3, 1, 1),
                                         tap(),
                                         pool(2, 2, false),
                                         conv(5, 128, 64, 3, 1, 1),
                                         conv(7, 128, 128, 3, 1, 1),
                                         tap(),
                                         pool(2, 2, false),
                                         conv(10, 256, 128, 3, 1, 1),
                                         conv(12, 256, 256, 3, 1, 1),
                                         conv(14, 256, 256, 3, 1, 1),
                                         tap(),
                                         pool(2, 2, false),
                                         conv(17, 512, 256, 3, 1, 1),
                                         conv(19, 512, 512, 3, 1, 1),
                                         conv(21, 512, 512, 3, 1, 1),
                                         tap(),
                                         pool(2, 2, false),
                                         conv(24, 512, 512, 3, 1, 1),
                                         conv(26, 512, 512, 3, 1, 1),
                                         conv(28, 512, 512, 3, 1, 1),
                                         tap()};
  static const std::vector<Step> kSqueeze = {conv(0, 64, 3, 3, 2, 0),
                                             tap(),
                                             pool(3, 2, true),
                                             fire(3, 64, 16, 64),
                                             fire(4, 128, 16, 64),
                                             tap(),
                                             pool(3, 2, true),
                                             fire(6, 128, 32, 128),
                                             fire(7, 256, 32, 128),
                                             tap(),
                                             pool(3, 2, true),
                                             fire(9, 256, 48, 192),
                                             tap(),
                                             fire(10, 384, 48, 192),
                                             tap(),
                                             fire(11, 384, 64, 256),
                                             tap(),
                                             fire(12, 512, 64, 256),
                                             tap()};
  switch (net) {
    case LpipsNet::kAlex: return kAlex;
    case LpipsNet::kVgg: return kVgg;
    case LpipsNet::kSqueeze: return kSqueeze;
  }
  fail("unknown LPIPS net");
}

// A conv of the backbone as loaded: where it sits and its stride/padding.
struct ConvSpec {
  std::string key;  // "features.3.squeeze"
  int64_t out, in, k;
  int stride, pad;
};

std::vector<ConvSpec> conv_specs(LpipsNet net) {
  std::vector<ConvSpec> out;
  for (const Step& s : architecture(net)) {
    const std::string base = "features." + std::to_string(s.index);
    if (s.kind == Step::kConv) out.push_back({base, s.a, s.b, s.k, s.stride, s.pad});
    if (s.kind == Step::kFire) {
      out.push_back({base + ".squeeze", s.b, s.a, 1, 1, 0});
      out.push_back({base + ".expand1x1", s.k, s.b, 1, 1, 0});
      out.push_back({base + ".expand3x3", s.k, s.b, 3, 1, 1});
    }
  }
  return out;
}

std::vector<int64_t> tap_channels(LpipsNet net) {
  switch (net) {
    case LpipsNet::kAlex: return {64, 192, 384, 256, 256};
    case LpipsNet::kVgg: return {64, 128, 256, 512, 512};
    case LpipsNet::kSqueeze: return {64, 128, 256, 384, 384, 512, 512};
  }
  return {};
}

std::string shape_str(const torch::Tensor& t) {
  std::string s = "(";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? "," : "") + std::to_string(t.size(i));
  return s + ")";
}

torch::Tensor take(std::map<std::string, torch::Tensor>& src, const std::string& key,
                   const std::vector<int64_t>& shape, const std::string& file, const std::string& what) {
  auto it = src.find(key);
  if (it == src.end()) fail("{}: tensor '{}' is missing; {}", file, key, what);
  torch::Tensor t = it->second;
  if (t.sizes().vec() != shape)
    fail("{}: tensor '{}' has shape {}, expected {}", file, key, shape_str(t),
         shape_str(torch::empty(shape)));
  if (!t.is_floating_point()) fail("{}: tensor '{}' is not floating point", file, key);
  return t.to(torch::kFloat32).contiguous();
}

torch::Tensor conv_relu(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, int stride,
                        int pad) {
  return torch::relu(torch::conv2d(x, w, b, stride, pad));
}

}  // namespace

const char* lpips_net_name(LpipsNet net) {
  switch (net) {
    case LpipsNet::kAlex: return "alex";
    case LpipsNet::kVgg: return "vgg";
    case LpipsNet::kSqueeze: return "squeeze";
  }
  return "?";
}

LpipsNet parse_lpips_net(const std::string& name) {
  if (name == "alex" || name == "alexnet") return LpipsNet::kAlex;
  if (name == "vgg" || name == "vgg16") return LpipsNet::kVgg;
  if (name == "squeeze" || name == "squeezenet") return LpipsNet::kSqueeze;
  fail("unknown LPIPS network '{}': choose alex (the default of the lpips package), vgg or squeeze", name);
}

const char* lpips_backbone_file_name(LpipsNet net) {
  switch (net) {
    case LpipsNet::kAlex: return "alexnet-owt-7be5be79.pth";
    case LpipsNet::kVgg: return "vgg16-397923af.pth";
    case LpipsNet::kSqueeze: return "squeezenet1_1-b8a52dc0.pth";
  }
  return "?";
}

const char* lpips_backbone_source(LpipsNet net) {
  switch (net) {
    case LpipsNet::kAlex:
      return "torchvision's ImageNet AlexNet, https://download.pytorch.org/models/alexnet-owt-7be5be79.pth; "
             "torchvision caches it in ~/.cache/torch/hub/checkpoints/";
    case LpipsNet::kVgg:
      return "torchvision's ImageNet VGG16, https://download.pytorch.org/models/vgg16-397923af.pth; "
             "torchvision caches it in ~/.cache/torch/hub/checkpoints/";
    case LpipsNet::kSqueeze:
      return "torchvision's ImageNet SqueezeNet 1.1, https://download.pytorch.org/models/"
             "squeezenet1_1-b8a52dc0.pth; torchvision caches it in ~/.cache/torch/hub/checkpoints/";
  }
  return "?";
}

const char* lpips_linear_file_name(LpipsNet net) {
  switch (net) {
    case LpipsNet::kAlex: return "alex.pth";
    case LpipsNet::kVgg: return "vgg.pth";
    case LpipsNet::kSqueeze: return "squeeze.pth";
  }
  return "?";
}

const char* lpips_linear_source(LpipsNet) {
  return "the lpips package's linear layers, lpips/weights/v0.1/ inside the installed package "
         "(site-packages/lpips/weights/v0.1/) or the richzhang/PerceptualSimilarity repository";
}

Lpips Lpips::load(LpipsNet net, const Checkpoint& backbone, const Checkpoint& linear) {
  Lpips m;
  m.net_ = net;
  auto src = load_tensors(backbone);
  const std::string expect_bb = std::string("expected torchvision's ") + lpips_backbone_file_name(net) +
                                " (or its `features.*` tensors) for LPIPS net '" + lpips_net_name(net) + "'";
  for (const ConvSpec& c : conv_specs(net)) {
    m.conv_w_.push_back(take(src, c.key + ".weight", {c.out, c.in, c.k, c.k}, backbone.path(), expect_bb));
    m.conv_b_.push_back(take(src, c.key + ".bias", {c.out}, backbone.path(), expect_bb));
  }
  auto lin = load_tensors(linear);
  const auto channels = tap_channels(net);
  const std::string expect_lin = std::string("expected the lpips v0.1 linear weights ") +
                                 lpips_linear_file_name(net) + " for net '" + lpips_net_name(net) + "'";
  for (size_t k = 0; k < channels.size(); ++k)
    m.lin_.push_back(take(lin, "lin" + std::to_string(k) + ".model.1.weight", {1, channels[k], 1, 1},
                          linear.path(), expect_lin));
  if (lin.count("lin" + std::to_string(channels.size()) + ".model.1.weight"))
    fail("{}: has more linear layers than LPIPS net '{}' uses ({}); wrong network?", linear.path(),
         lpips_net_name(net), channels.size());
  m.shift_ = torch::tensor({-.030f, -.088f, -.188f}).view({1, 3, 1, 1});
  m.scale_ = torch::tensor({.458f, .448f, .450f}).view({1, 3, 1, 1});
  return m;
}

void Lpips::to(torch::Device device, torch::ScalarType dtype) {
  auto mv = [&](torch::Tensor& t) { t = t.to(device, dtype).contiguous(); };
  for (auto& t : conv_w_) mv(t);
  for (auto& t : conv_b_) mv(t);
  for (auto& t : lin_) mv(t);
  mv(shift_);
  mv(scale_);
  device_ = device;
  dtype_ = dtype;
}

torch::Tensor Lpips::scale_input(const torch::Tensor& unit) const {
  if (unit.dim() != 4 || unit.size(1) != 3)
    fail("LPIPS expects (N,3,H,W) RGB inputs, got {}", shape_str(unit));
  auto x = unit.to(device_, dtype_);
  x = 2 * x - 1;  // the package's normalize=True: [0,1] -> [-1,1]
  return (x - shift_) / scale_;
}

std::vector<torch::Tensor> Lpips::backbone_taps(const torch::Tensor& input) const {
  std::vector<torch::Tensor> taps;
  torch::Tensor x = input;
  size_t c = 0;
  for (const Step& s : architecture(net_)) {
    switch (s.kind) {
      case Step::kConv:
        x = conv_relu(x, conv_w_[c], conv_b_[c], s.stride, s.pad);
        ++c;
        break;
      case Step::kPool: x = torch::max_pool2d(x, s.k, s.stride, 0, 1, s.ceil); break;
      case Step::kFire: {
        auto sq = conv_relu(x, conv_w_[c], conv_b_[c], 1, 0);
        auto e1 = conv_relu(sq, conv_w_[c + 1], conv_b_[c + 1], 1, 0);
        auto e3 = conv_relu(sq, conv_w_[c + 2], conv_b_[c + 2], 1, 1);
        x = torch::cat({e1, e3}, 1);
        c += 3;
        break;
      }
      case Step::kTap: taps.push_back(x); break;
    }
  }
  return taps;
}

namespace {
torch::Tensor normalize_channels(const torch::Tensor& f) {
  auto norm = torch::sqrt(torch::sum(f * f, 1, /*keepdim=*/true));
  return f / (norm + 1e-10);
}

// One tap's contribution: the squared difference of the channel-normalised features and the linear
// layer's 1-channel map (N,1,H,W); its spatial mean is the tap's share of the distance.
struct TapTerm {
  torch::Tensor normdiff, lin_map;
};
TapTerm tap_term(const torch::Tensor& f0, const torch::Tensor& f1, const torch::Tensor& lin) {
  TapTerm t;
  t.normdiff = (normalize_channels(f0) - normalize_channels(f1)).pow(2);
  t.lin_map = torch::conv2d(t.normdiff, lin);
  return t;
}

void check_pair(const torch::Tensor& in0, const torch::Tensor& in1) {
  if (in0.sizes() != in1.sizes())
    fail("LPIPS inputs differ in shape: {} vs {}", shape_str(in0), shape_str(in1));
}
}  // namespace

torch::Tensor Lpips::distance(const torch::Tensor& in0, const torch::Tensor& in1) const {
  torch::NoGradGuard no_grad;
  check_pair(in0, in1);
  auto t0 = backbone_taps(scale_input(in0));
  auto t1 = backbone_taps(scale_input(in1));
  torch::Tensor val;
  for (size_t k = 0; k < t0.size(); ++k) {
    auto res = tap_term(t0[k], t1[k], lin_[k]).lin_map.mean({2, 3}, /*keepdim=*/true);
    val = k == 0 ? res : val + res;  // summed in tap order, as the package does
  }
  return val.view({-1}).to(torch::kCPU, torch::kFloat64);
}

LpipsLayers Lpips::layers(const torch::Tensor& in0, const torch::Tensor& in1) const {
  torch::NoGradGuard no_grad;
  check_pair(in0, in1);
  auto t0 = backbone_taps(scale_input(in0.narrow(0, 0, 1)));
  auto t1 = backbone_taps(scale_input(in1.narrow(0, 0, 1)));
  LpipsLayers out;
  torch::Tensor val;
  for (size_t k = 0; k < t0.size(); ++k) {
    TapTerm term = tap_term(t0[k], t1[k], lin_[k]);
    auto res = term.lin_map.mean({2, 3}, true);
    val = k == 0 ? res : val + res;
    out.feat0.push_back(t0[k][0].cpu());
    out.feat1.push_back(t1[k][0].cpu());
    out.normdiff.push_back(term.normdiff[0].cpu());
    out.lin_map.push_back(term.lin_map[0][0].cpu());
    out.layer_mean.push_back(res.item<double>());
  }
  out.total = val.item<double>();
  return out;
}

}  // namespace dmeval
