#include "generators/ldm/vq_training.h"

#include <fmt/format.h>

#include <cmath>

#include "core/error.h"
#include "generators/ddpm_training.h"
#include "generators/ldm/ldm_weights.h"

namespace dmeval {

namespace {

class VqTask : public TrainingTask {
 public:
  VqTask(const VqDecoderConfig& config, const torch::Tensor& data, const VqTrainOptions& o)
      : config_(config), data_(data), o_(o) {
    torch::manual_seed(o.seed);
    fs_ = VqFirstStage(config, /*with_encoder=*/true);
    batch_options_.batch = o.batch;
    batch_options_.seed = o.seed;
    batch_options_.flip = o.flip;
    // The codebook starts at encoder outputs: n_embed latent vectors of the untrained encoder, drawn
    // from the images of the batches of steps -1, -2, ... (never a training step's).
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> vectors;
    int64_t have = 0;
    for (int64_t s = -1; have < config.n_embed; --s) {
      torch::Tensor h = fs_->encode(training_batch(data_, batch_options_, 1000, s).x0);
      torch::Tensor v = h.permute({0, 2, 3, 1}).reshape({-1, config.embed_dim});
      vectors.push_back(v);
      have += v.size(0);
    }
    torch::Tensor all = torch::cat(vectors);
    // Evenly spaced rows, so each code comes from a different place of the images.
    torch::Tensor pick =
        torch::linspace(0, static_cast<double>(all.size(0) - 1), config.n_embed).to(torch::kLong);
    fs_->codebook->weight.copy_(all.index_select(0, pick));
  }
  torch::nn::Module& model() override { return *fs_; }
  torch::Tensor loss(int64_t step) override {
    torch::Tensor x = training_batch(data_, batch_options_, 1000, step).x0;
    torch::Tensor h = fs_->encode(x);
    torch::Tensor idx;
    {
      torch::NoGradGuard no_grad;  // the codebook lookup of sampling; gradients flow through zq below
      idx = fs_->quantize(h).first.reshape({-1});
    }
    torch::Tensor zh = h.permute({0, 2, 3, 1});
    torch::Tensor zq = torch::embedding(fs_->codebook->weight, idx).view(zh.sizes());
    torch::Tensor codebook_loss =
        o_.beta * (zq.detach() - zh).square().mean() + (zq - zh.detach()).square().mean();
    torch::Tensor z = (zh + (zq - zh).detach()).permute({0, 3, 1, 2});
    torch::Tensor rec = fs_->decode(z, /*force_not_quantize=*/true).images;
    return (x - rec).abs().mean() + codebook_loss;
  }
  void save(const std::string& dir, int64_t step) override {
    save_atomically(
        [&](const std::string& p) {
          save_ldm_checkpoint({nullptr, fs_.get(), nullptr}, p,
                              {{"dmeval_train_step", std::to_string(step)}});
        },
        dir + "/vq.safetensors");
  }
  void load(const std::string& dir) override {
    load_ldm_weights(*fs_, dir + "/vq.safetensors", "first_stage_model.");
  }
  nlohmann::ordered_json options() const override {
    return {{"model", "VQ first stage"},
            {"embed_dim", config_.embed_dim},
            {"n_embed", config_.n_embed},
            {"ch", config_.ch},
            {"ch_mult", config_.ch_mult},
            {"num_res_blocks", config_.num_res_blocks},
            {"attn_resolutions", config_.attn_resolutions},
            {"resolution", config_.resolution},
            {"data_images", data_.size(0)},
            {"batch", o_.batch},
            {"lr", o_.lr},
            {"weight_decay", o_.weight_decay},
            {"grad_clip", o_.grad_clip},
            {"warmup", o_.warmup},
            {"beta", o_.beta},
            {"seed", o_.seed},
            {"flip", o_.flip},
            {"loss", "L1 + codebook + beta * commitment (no LPIPS, no discriminator)"}};
  }
  VqFirstStage result() { return fs_; }

 private:
  VqDecoderConfig config_;
  torch::Tensor data_;
  VqTrainOptions o_;
  TrainOptions batch_options_;
  VqFirstStage fs_{nullptr};
};

}  // namespace

VqQuality vq_quality(VqFirstStage& fs, const torch::Tensor& images, int64_t batch) {
  DMEVAL_CHECK(images.dim() == 4 && images.scalar_type() == torch::kUInt8,
               "images must be (N, C, H, W) uint8");
  torch::NoGradGuard no_grad;
  fs->eval();
  const int64_t n = images.size(0), K = fs->config().n_embed;
  torch::Tensor counts = torch::zeros({K}, torch::kLong);
  double l1 = 0, se = 0, sum = 0, sum2 = 0;
  int64_t values = 0, latent_values = 0;
  for (int64_t i = 0; i < n; i += batch) {
    torch::Tensor x = images.slice(0, i, std::min(n, i + batch)).to(torch::kFloat32) / 127.5 - 1.0;
    torch::Tensor h = fs->encode(x);
    VqDecodeResult r = fs->decode(h);
    counts += torch::bincount(r.indices.reshape({-1}), {}, K);
    torch::Tensor diff = (r.images.clamp(-1, 1) - x) / 2.0;
    l1 += diff.abs().sum().item<double>();
    se += diff.square().sum().item<double>();
    values += x.numel();
    sum += h.to(torch::kFloat64).sum().item<double>();
    sum2 += h.to(torch::kFloat64).square().sum().item<double>();
    latent_values += h.numel();
  }
  VqQuality q;
  q.l1 = l1 / static_cast<double>(values);
  q.psnr = -10.0 * std::log10(se / static_cast<double>(values));
  torch::Tensor p = counts.to(torch::kFloat64) / counts.sum().item<double>();
  torch::Tensor nz = p.masked_select(p > 0);
  q.perplexity = std::exp(-(nz * nz.log()).sum().item<double>());
  q.codes_used = (counts > 0).sum().item<int64_t>();
  const double mean = sum / static_cast<double>(latent_values);
  q.latent_std = std::sqrt(sum2 / static_cast<double>(latent_values) - mean * mean);
  return q;
}

VqFirstStage train_vq(const VqDecoderConfig& config, const torch::Tensor& data, const VqTrainOptions& o,
                      const std::string& dir, const std::function<void(const TrainProgress&)>& on_log) {
  DMEVAL_CHECK(data.dim() == 4 && data.scalar_type() == torch::kUInt8 && data.size(0) > 0,
               "training data must be (N, C, H, W) uint8");
  DMEVAL_CHECK(data.size(1) == config.in_channels && data.size(2) == config.resolution &&
                   data.size(3) == config.resolution,
               "training images of shape [{}, {}, {}] do not fit the first stage ({} channels, {}x{})",
               data.size(1), data.size(2), data.size(3), config.in_channels, config.resolution,
               config.resolution);
  DMEVAL_CHECK(o.batch >= 1 && o.beta >= 0, "bad VQ training options (batch {}, beta {})", o.batch, o.beta);
  VqTask task(config, data, o);
  TrainLoopOptions lo;
  lo.steps = o.steps;
  lo.lr = o.lr;
  lo.weight_decay = o.weight_decay;
  lo.grad_clip = o.grad_clip;
  lo.warmup = o.warmup;
  lo.decay_from = o.decay_from;
  lo.seed = o.seed;
  lo.checkpoint_every = o.checkpoint_every;
  lo.log_every = o.log_every;
  run_training(task, lo, dir, on_log);
  VqFirstStage fs = task.result();
  fs->eval();
  return fs;
}

VqFirstStage load_vq_autoencoder(const VqDecoderConfig& config, const std::string& path,
                                 std::string* sha256) {
  VqFirstStage fs(config, /*with_encoder=*/true);
  const std::string h = load_ldm_weights(*fs, path, "first_stage_model.", {"loss."});
  if (sha256) *sha256 = h;
  fs->eval();
  return fs;
}

}  // namespace dmeval
