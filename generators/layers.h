// The convolution and linear layers of the diffusion UNets. They register `weight` and `bias`
// directly (so state-dict names match PyTorch's nn.Conv2d / nn.Linear), carry the role the
// size accounting and the quantization methods select layers by, and can be listed.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace dmeval {

// What a quantization method sees of one layer call: the float weight and bias, the layer's own
// operation (conv2d with its stride/padding, or linear), and the input-channel split point a block
// asked for (q-diffusion's shortcut split; 0 = none).
struct LayerCall {
  const torch::Tensor& weight;
  const torch::Tensor& bias;
  const std::function<torch::Tensor(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b)>&
      op;
  int64_t split = 0;
};

// Put around a layer by a quantization method: computes the layer's output from its input (fake-
// quantizing the input, weight or output as that method does). Without one a layer is plain float.
class LayerQuantizer {
 public:
  virtual ~LayerQuantizer() = default;
  virtual torch::Tensor forward(const torch::Tensor& x, const LayerCall& call) = 0;
};

// Put into an attention block by a quantization method: fake-quantizes the inputs of the two matrix
// products (q after reshape/permute, k, v, and the permuted softmax w), as q-diffusion's
// QuantAttnBlock does. Any family's attention blocks expose a slot for one (AttentionHook).
class AttentionQuantizer {
 public:
  virtual ~AttentionQuantizer() = default;
  virtual torch::Tensor q(const torch::Tensor& x) = 0;
  virtual torch::Tensor k(const torch::Tensor& x) = 0;
  virtual torch::Tensor v(const torch::Tensor& x) = 0;
  virtual torch::Tensor w(const torch::Tensor& x) = 0;
};

// How an attention block's softmax-output quantizer (w) is set up from the activation settings at
// sm_abit bits: as they are (the ddim UNet's QuantAttnBlock), asymmetric with z = 0 (q-diffusion's
// QuantSMVMatMul in LDM's AttentionBlock), or with z = 0 and the settings' symmetry
// (QuantBasicTransformerBlock).
enum class SoftmaxQuant { kActCopy, kAsymmetricZero, kAlwaysZero };

// An attention block's quantizer slot, with the block's module path and how its quantizers are named
// and set up.
struct AttentionHook {
  std::string name;
  std::shared_ptr<AttentionQuantizer>* quantizer = nullptr;
  // Prefixes of the q/k and v/w quantizer names ("" = `name`): `<prefix>.act_quantizer_q` etc.
  std::string qk_prefix, vw_prefix;
  SoftmaxQuant softmax = SoftmaxQuant::kActCopy;
  bool running_stat = false;  // whether set_running_stat reaches these quantizers
};

// A block that BRECQ reconstruction (generators/quant/reconstruction) treats as one unit, as the
// references do for the blocks they replace by quantized blocks (LDM's ResBlock and
// BasicTransformerBlock): while `probe` is set the block reports its inputs and output on every call,
// and `run` evaluates it on such inputs.
class ReconBlock {
 public:
  virtual ~ReconBlock() = default;
  virtual torch::Tensor run(const std::vector<torch::Tensor>& inputs) = 0;
  std::function<void(const std::vector<torch::Tensor>& inputs, const torch::Tensor& output)> probe;
};

// What a layer is for, which the size accounting and the quantization methods select layers by. The
// ddim roles are named as the model-facts golden names them (generators/model_facts/ddim_*_layers.json);
// the transformer, conditioning and autoencoder roles are those of the latent and text-conditioned
// families (LDM's SpatialTransformer, class embedder, first stage).
enum class LayerRole {
  kTimestepMlp,
  kFirstConv,
  kLastConv,
  kResblockConv,
  kResblockShortcut,
  kResblockTembProj,
  kAttention1x1,
  kDownsampleConv,
  kUpsampleConv,
  kSelfAttnQ,  // transformer self-attention projections (Linear)
  kSelfAttnK,
  kSelfAttnV,
  kSelfAttnOut,
  kCrossAttnQ,  // cross-attention: q from the image tokens, k/v from the context
  kCrossAttnK,
  kCrossAttnV,
  kCrossAttnOut,
  kFeedForward,      // transformer feed-forward (GEGLU projection and output)
  kTransformerProj,  // proj_in / proj_out around a transformer block
  kConditioning,     // class or text embedding layers of the conditioning stage
  kAutoencoder,      // the first stage (VQ/KL encoder and decoder)
};
const char* layer_role_name(LayerRole role);

// A 2-D convolution, or with dims = 1 a 1-D one (nn.Conv1d: weight (out, in, k); LDM's AttentionBlock
// projections), quantized the same way.
class Conv2dLayerImpl : public torch::nn::Module {
 public:
  Conv2dLayerImpl(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride, int64_t padding,
                  LayerRole role, int64_t dims = 2);
  torch::Tensor forward(const torch::Tensor& x, int64_t split = 0);
  // PyTorch's default initialisation (kaiming_uniform with a = sqrt(5), bias U(±1/sqrt(fan_in))).
  void reset_parameters();

  torch::Tensor weight, bias;
  int64_t in_channels, out_channels, kernel, stride, padding;
  LayerRole role;
  int64_t dims = 2;
  std::shared_ptr<LayerQuantizer> quantizer;
};
TORCH_MODULE(Conv2dLayer);

class LinearLayerImpl : public torch::nn::Module {
 public:
  // with_bias = false: no bias parameter (LDM's attention projections to_q/to_k/to_v).
  LinearLayerImpl(int64_t in_features, int64_t out_features, LayerRole role, bool with_bias = true);
  torch::Tensor forward(const torch::Tensor& x);
  void reset_parameters();

  torch::Tensor weight, bias;  // bias undefined without one
  int64_t in_features, out_features;
  LayerRole role;
  std::shared_ptr<LayerQuantizer> quantizer;
};
TORCH_MODULE(LinearLayer);

// One quantizable layer of a model, in module order.
struct LayerInfo {
  std::string name;  // module path, e.g. "down.0.block.1.conv2"
  std::string type;  // "Conv2d", "Conv1d" or "Linear"
  LayerRole role;
  std::vector<int64_t> weight_shape;
  int64_t out_channels = 0;
  int64_t kernel = 1, stride = 1, padding = 0;  // convolutions only
  int64_t macs_per_output = 0;                  // in_channels * kernel^dims (Conv) or in_features
};

// Counts multiply-accumulates while it is alive (on this thread): every Conv2dLayer / LinearLayer
// call adds out_elements x (in_channels x kernel^2 | in_features), attention blocks add their two
// bmm products. The convention of shared/design/anchors-performance.md §2 (conv + matmul + bmm).
class MacCounter {
 public:
  MacCounter();
  ~MacCounter();
  MacCounter(const MacCounter&) = delete;
  MacCounter& operator=(const MacCounter&) = delete;
  int64_t layers = 0;     // Conv2d and Linear
  int64_t attention = 0;  // q·k and v·w bmm
  int64_t total() const { return layers + attention; }
  static MacCounter* active();

 private:
  MacCounter* previous_;
};

// Every Conv2dLayer / LinearLayer below `root`, in module (registration) order.
std::vector<LayerInfo> list_layers(const torch::nn::Module& root);

// The same layers for attaching quantizers: path, and exactly one of conv / linear set.
struct LayerHandle {
  std::string name;
  Conv2dLayerImpl* conv = nullptr;
  LinearLayerImpl* linear = nullptr;
  LayerRole role() const { return conv ? conv->role : linear->role; }
  std::shared_ptr<LayerQuantizer>& quantizer() { return conv ? conv->quantizer : linear->quantizer; }
  const torch::Tensor& weight() const { return conv ? conv->weight : linear->weight; }
};
std::vector<LayerHandle> layer_handles(torch::nn::Module& root);

}  // namespace dmeval
