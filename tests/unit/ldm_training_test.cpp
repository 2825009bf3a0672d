// Training the latent family (the embedded shapes-ldm profile's pieces): the VQ first stage (encoder,
// codebook, decoder) and the class-conditional LDM UNet on its latents with label dropout — batches
// that depend only on (seed, step), exact resume, files read back strictly, and the refusals.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/hash.h"
#include "generators/conditioning_source.h"
#include "generators/ddpm_training.h"
#include "generators/diffusion_producer.h"
#include "generators/ldm/ldm_model.h"
#include "generators/ldm/vq_training.h"
#include "generators/noise_source.h"
#include "metrics/shapes_features.h"
#include "metrics/shapes_net.h"
#include "tests/support/temp_dir.h"

namespace dmeval {
namespace {

// A tiny VQ-f2 first stage on 8x8 images and a class-conditional UNet on its 4x4x3 latents.
const char* kTinyLdm = R"({"model": {"target": "ldm.models.diffusion.ddpm.LatentDiffusion", "params": {
  "linear_start": 0.0015, "linear_end": 0.0195, "timesteps": 1000, "use_ema": false, "scale_factor": 2.0,
  "unet_config": {"params": {"image_size": 4, "in_channels": 3, "out_channels": 3, "model_channels": 32,
    "attention_resolutions": [1], "num_res_blocks": 1, "channel_mult": [1], "num_head_channels": 32,
    "use_spatial_transformer": true, "transformer_depth": 1, "context_dim": 32}},
  "first_stage_config": {"target": "ldm.models.autoencoder.VQModelInterface", "params": {
    "embed_dim": 3, "n_embed": 16, "ddconfig": {"double_z": false, "z_channels": 3, "resolution": 8,
    "in_channels": 3, "out_ch": 3, "ch": 32, "ch_mult": [1, 2], "num_res_blocks": 1,
    "attn_resolutions": [], "dropout": 0.0}}},
  "cond_stage_config": {"target": "ldm.modules.encoders.modules.ClassEmbedder",
    "params": {"embed_dim": 32, "n_classes": 4}}}}})";

torch::Tensor tiny_images(int64_t n = 12) {
  torch::manual_seed(3);
  return torch::randint(0, 256, {n, 3, 8, 8}, torch::kLong).to(torch::kUInt8);
}

std::string write_config(const test::TempDir& dir) {
  const std::string path = dir.file("tiny-ldm.json");
  std::ofstream(path) << kTinyLdm;
  return path;
}

VqTrainOptions tiny_vq_options() {
  VqTrainOptions o;
  o.steps = 4;
  o.batch = 4;
  o.warmup = 1;
  o.checkpoint_every = 2;
  o.log_every = 2;
  return o;
}

void expect_same_parameters(torch::nn::Module& a, torch::nn::Module& b) {
  auto pb = b.named_parameters();
  for (const auto& p : a.named_parameters()) EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
}

TEST(VqTraining, ResumeIsExactAndTheFileReadsBack) {
  test::TempDir dir;
  const LdmConfig config = resolve_ldm_config(write_config(dir));
  const torch::Tensor data = tiny_images();
  std::vector<double> losses;
  VqFirstStage whole = train_vq(config.first_stage, data, tiny_vq_options(), dir.file("whole"),
                                [&](const TrainProgress& p) { losses.push_back(p.loss); });
  ASSERT_EQ(losses.size(), 2u);
  for (double l : losses) EXPECT_TRUE(std::isfinite(l) && l > 0);
  VqTrainOptions first = tiny_vq_options();
  first.steps = 2;
  train_vq(config.first_stage, data, first, dir.file("resumed"));
  VqFirstStage resumed = train_vq(config.first_stage, data, tiny_vq_options(), dir.file("resumed"));
  expect_same_parameters(*whole, *resumed);
  // The codebook started at encoder outputs: every code distinct.
  EXPECT_EQ(std::get<0>(torch::unique_dim(whole->codebook->weight, 0)).size(0), config.first_stage.n_embed);
  // The file holds the encoder too, and reads back strictly.
  std::string sha;
  VqFirstStage loaded = load_vq_autoencoder(config.first_stage, dir.file("whole/vq.safetensors"), &sha);
  EXPECT_EQ(sha.size(), 64u);
  expect_same_parameters(*whole, *loaded);
  torch::NoGradGuard no_grad;
  torch::Tensor x = data.slice(0, 0, 2).to(torch::kFloat32) / 127.5 - 1.0;
  torch::Tensor h = loaded->encode(x);
  EXPECT_EQ(h.sizes(), (std::vector<int64_t>{2, 3, 4, 4}));
  EXPECT_EQ(loaded->decode(h).images.sizes(), x.sizes());
  const VqQuality q = vq_quality(loaded, data);
  EXPECT_TRUE(std::isfinite(q.psnr) && q.latent_std > 0 && q.codes_used >= 1 && q.perplexity >= 1);
  // Other options on the same folder are refused; images of another size are named.
  VqTrainOptions other = tiny_vq_options();
  other.beta = 0.5;
  EXPECT_THROW(train_vq(config.first_stage, data, other, dir.file("whole")), Error);
  try {
    train_vq(config.first_stage, torch::zeros({2, 3, 16, 16}, torch::kUInt8), tiny_vq_options(),
             dir.file("big"));
    FAIL() << "16x16 images accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("do not fit the first stage"), std::string::npos) << e.what();
  }
  // A first stage loaded for sampling has no encoder.
  VqFirstStage decode_only(config.first_stage);
  EXPECT_THROW(decode_only->encode(x), Error);
}

TEST(LdmTraining, ClassConditionalTrainingWithLabelDropoutResumesExactly) {
  test::TempDir dir;
  const std::string config = write_config(dir);
  const torch::Tensor data = tiny_images();
  train_vq(resolve_ldm_config(config).first_stage, data, tiny_vq_options(), dir.file("vq"));
  ModelSpec spec;
  spec.model = config;
  spec.random_weights = 0;
  spec.first_stage = dir.file("vq/vq.safetensors");
  auto fresh = [&] { return load_diffusion_model(spec); };
  ASSERT_EQ(fresh()->family(), "ldm");
  EXPECT_FALSE(fresh()->identity().value("first_stage_weights", std::string()).empty());
  const torch::Tensor labels = torch::arange(12, torch::kLong) % 3;
  TrainOptions o;
  o.steps = 4;
  o.batch = 6;
  o.warmup = 1;
  o.checkpoint_every = 2;
  o.log_every = 2;
  o.label_dropout = 0.5;
  // Label dropout: a function of (seed, step); 0 keeps the labels, 1 drops every one to K.
  TrainBatch b = training_batch(data, o, 1000, 3, labels, 3),
             b2 = training_batch(data, o, 1000, 3, labels, 3);
  EXPECT_TRUE(torch::equal(b.y, b2.y));
  TrainOptions keep = o, drop = o;
  keep.label_dropout = 0.0, drop.label_dropout = 1.0;
  EXPECT_TRUE(torch::all(training_batch(data, drop, 1000, 3, labels, 3).y == 3).item<bool>());
  torch::Tensor kept = training_batch(data, keep, 1000, 3, labels, 3).y;
  EXPECT_TRUE(torch::all(kept < 3).item<bool>());
  // The whole run, and the same stopped at step 2 and resumed: identical weights (UNet and embedder).
  auto whole = train_ddpm(fresh(), data, o, dir.file("whole"), {}, labels);
  TrainOptions first = o;
  first.steps = 2;
  train_ddpm(fresh(), data, first, dir.file("resumed"), {}, labels);
  auto resumed = train_ddpm(fresh(), data, o, dir.file("resumed"), {}, labels);
  auto& lw = dynamic_cast<LdmModel&>(*whole);
  auto& lr = dynamic_cast<LdmModel&>(*resumed);
  expect_same_parameters(*lw.unet(), *lr.unet());
  // The EMA file loads as a checkpoint for sampling (decode path); training on it reads the encoder from
  // the same file on first use: the latents of the model that was trained.
  ModelSpec sampled;
  sampled.model = config;
  sampled.checkpoint = dir.file("whole/ema.safetensors");
  auto m = load_diffusion_model(sampled);
  expect_same_parameters(m->network(), *lw.unet());
  {
    torch::NoGradGuard no_grad;
    const torch::Tensor x = torch::rand({2, 3, 8, 8}) * 2 - 1;
    EXPECT_TRUE(torch::equal(m->encode(x), whole->encode(x)));
  }
  // Training a class-conditional model without labels is refused.
  EXPECT_THROW(train_ddpm(fresh(), data, o, dir.file("nolabels")), Error);
}

}  // namespace
}  // namespace dmeval

namespace dmeval {
namespace {

// The committed shapes-ldm model (profiles/shapes-ldm/shapes-ldm.safetensors, scripts/train-shapes-ldm.sh):
// the recorded file (SHA-256), and it draws the class it is asked for — 8 guided samples of each of the
// four classes (the profile's sampler: 50-step LDM DDIM, eta 1, guidance 3), classified by shapes-net.
// The VQ decode's nearest-code lookup can flip codes between CPUs that sum in another order, so images
// are compared by class, not by pixel. Measured on the recording machine: 18 of 32 (circles 8 of 8,
// squares drawn round and taken for circles; chance is 8); the test requires 13, about 1.8 binomial
// standard deviations below the measurement and 1.6 times chance.
const char* kShapesLdmSha256 = "34a23f2febb3b75ba8f57b4dce9114030b3807b9b4745fb7377a2e2dd176c11f";

TEST(ShapesLdm, CommittedWeightsDrawTheClassesAskedFor) {
  const std::string root = DMEVAL_SOURCE_DIR;
  const std::string weights = root + "/profiles/shapes-ldm/shapes-ldm.safetensors";
  ASSERT_TRUE(std::filesystem::exists(weights))
      << weights << " missing (made by scripts/train-shapes-ldm.sh)";
  EXPECT_EQ(sha256_file(weights), kShapesLdmSha256) << "the committed weights changed";
  ModelSpec spec;
  spec.model = "shapes-ldm";
  spec.checkpoint = weights;
  std::shared_ptr<DiffusionModel> model = load_diffusion_model(spec);
  SamplerSpec sampler;
  sampler.sampler = "ddim";
  sampler.skip_type = "uniform";
  sampler.steps = 50;
  sampler.eta = 1.0;
  UNetRunOptions run;
  Conditioning first;
  first.class_labels = torch::zeros({1}, torch::kLong);
  DiffusionImageProducer producer(model, model->eps(run, first), sampler, make_noise_source("per-image", 0),
                                  torch::kCPU, false);
  auto classes = std::shared_ptr<const ConditioningSource>(make_conditioning_source("per-class=8", 0, 4));
  producer.set_conditioning(classes, [&](Conditioning c) {
    c.guidance = 3.0;
    return model->eps(run, c);
  });
  ImageBatch b = producer.produce(0, 32);
  ShapesNet net = load_shapes_net(root + "/profiles/shapes/shapes-net.safetensors");
  torch::Tensor predicted = shapes_net_extract(net, b, 64).at("logits").argmax(1);
  const int64_t right =
      (predicted == torch::div(torch::arange(32, torch::kLong), 8, "floor")).sum().item<int64_t>();
  std::printf("shapes-ldm: %lld of 32 guided samples classified as the class asked for\n",
              static_cast<long long>(right));
  EXPECT_GE(right, 13);
}

}  // namespace
}  // namespace dmeval
