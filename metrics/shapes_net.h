// The feature network of the embedded `shapes` profile: a small CNN trained by dmeval to classify the
// procedural shapes (dmeval train-classifier). Its penultimate activations (256-d) play the role of
// Inception's pool3 for the profile's Fréchet distance and precision/recall, its softmax that of the
// Inception logits for IS — reported as FID[shapes-net], never as Inception FID.
//
// Layers (state-dict names): c1 3→32, c2 32→64, c3 64→128 (3×3, padding 1, ReLU, 2×2 max-pool each),
// fc1 128·4·4→256 (ReLU: the features), fc2 256→classes (the logits). Input: RGB uint8 mapped to
// [-1, 1] as (v / 127.5 − 1), 32×32.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <map>
#include <string>

namespace dmeval {

class ShapesNetImpl : public torch::nn::Module {
 public:
  explicit ShapesNetImpl(int64_t classes = 4);
  struct Outputs {
    torch::Tensor features, logits;
    torch::Tensor spatial;  // the first 32 channels of c2's pooled map (32x8x8 = 2048), for sFID
  };
  Outputs forward(const torch::Tensor& x);  // x float (N, 3, 32, 32) in [-1, 1]
  torch::nn::Conv2d c1{nullptr}, c2{nullptr}, c3{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  int64_t classes;
};
TORCH_MODULE(ShapesNet);

constexpr int64_t kShapesFeatureDim = 256;
// As ADM's sFID takes the first 7 of Inception's 768 mixed_6/conv channels (7x17x17): an early
// layer's spatial map, here the first half of c2's channels after pooling.
constexpr int64_t kShapesSpatialChannels = 32, kShapesSpatialDim = kShapesSpatialChannels * 8 * 8;

// uint8 (N, 32, 32, 3) images -> network input.
torch::Tensor shapes_net_input(const torch::Tensor& images_nhwc_uint8);

// Weights from a safetensors (or torch) file with the names above; every key and shape checked.
ShapesNet load_shapes_net(const std::string& path);
void save_shapes_net(const ShapesNet& net, const std::string& path,
                     const std::map<std::string, std::string>& meta);

struct ClassifierTrainOptions {
  int64_t steps = 3000, batch = 64;
  double lr = 3e-4;  // 1e-3 stalls at chance level for hundreds of steps (measured)
  uint64_t seed = 0;
  int64_t log_every = 100;
};
struct ClassifierBatch {
  torch::Tensor images;  // uint8 (N, 32, 32, 3)
  torch::Tensor labels;  // int64 (N)
};
// Trains on batches from `next_batch(step)` (deterministic per step) with AdamW and cross entropy.
ShapesNet train_shapes_net(
    const ClassifierTrainOptions& options, const std::function<ClassifierBatch(int64_t step)>& next_batch,
    const std::function<void(int64_t step, double loss, double accuracy)>& on_log = {});
// Top-1 accuracy on a batch.
double shapes_net_accuracy(ShapesNet& net, const ClassifierBatch& batch);

}  // namespace dmeval
