// The embedded profile's pieces: the procedural shapes data (deterministic per image, frozen by stored
// hashes, balanced classes, producer = renderer) and DDPM training (deterministic batches, exact resume
// from a checkpoint, option mismatch refused).
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/hash.h"
#include "core/npy.h"
#include "core/torch_bridge.h"
#include "generators/ddim/ddim_model.h"
#include "generators/ddim/unet_config.h"
#include "generators/ddim/unet_weights.h"
#include "generators/ddpm_training.h"
#include "generators/diffusion_producer.h"
#include "generators/shapes_dataset.h"
#include "generators/unet_runner.h"
#include "harness/sampling/chunk_runner.h"
#include "metrics/chunked_features.h"
#include "metrics/shapes_features.h"
#include "metrics/shapes_net.h"
#include "tests/support/temp_dir.h"

namespace dmeval {
namespace {

std::string pixels_sha(const Image& im) {
  return sha256_hex(im.pixels.data(), im.pixels.size());
}

// The frozen pixel hashes of the current data set version.
const std::string kFrozenShapes = std::string(DMEVAL_SOURCE_DIR) + "/tests/data/shapes_v2.json";

TEST(Shapes, DeterministicBalancedAndFrozen) {
  ShapesOptions o;
  std::ifstream in(kFrozenShapes);
  ASSERT_TRUE(in) << kFrozenShapes << " missing";
  auto frozen = nlohmann::json::parse(in);
  o.seed = frozen["seed"];
  o.size = frozen["size"];
  for (const auto& [idx, want] : frozen["pixels_sha256"].items()) {
    int label = -1;
    Image im = render_shape_image(o, std::stoll(idx), &label);
    EXPECT_EQ(pixels_sha(im), want.get<std::string>())
        << "image " << idx << ": the data set definition changed";
    EXPECT_EQ(shape_class_names().at(label), frozen["labels"][idx].get<std::string>());
  }
  // Same image for the same (seed, index); another seed gives other images.
  EXPECT_EQ(render_shape_image(o, 7).pixels, render_shape_image(o, 7).pixels);
  ShapesOptions other = o;
  other.seed = o.seed + 1;
  EXPECT_NE(render_shape_image(other, 7).pixels, render_shape_image(o, 7).pixels);
  // The producer is the renderer.
  ShapesProducer p(o);
  ImageBatch b = p.produce(5, 3);
  ASSERT_EQ(b.images.size(), 3u);
  EXPECT_EQ(b.images[1].pixels, render_shape_image(o, 6).pixels);
  // Classes are balanced; images vary.
  std::vector<int> count(shape_class_names().size());
  double mean = 0;
  for (int64_t i = 0; i < 400; ++i) {
    int l = 0;
    Image im = render_shape_image(o, i, &l);
    ++count[l];
    for (uint8_t v : im.pixels) mean += v;
  }
  for (int c : count) EXPECT_GT(c, 60);
  mean /= 400.0 * 32 * 32 * 3;
  EXPECT_GT(mean, 60);
  EXPECT_LT(mean, 200);
  ShapesOptions bad;
  bad.size = 4;
  EXPECT_THROW(render_shape_image(bad, 0), Error);
}

ModelConfig tiny_model() {
  ModelConfig c = resolve_model_config("shapes");
  c.unet.ch_mult = {1, 2};
  c.unet.attn_resolutions = {8};
  c.unet.resolution = 16;
  return c;
}

torch::Tensor tiny_data() {
  ShapesOptions o;
  o.size = 16;
  torch::Tensor d = torch::empty({12, 3, 16, 16}, torch::kUInt8);
  for (int64_t i = 0; i < 12; ++i) {
    Image im = render_shape_image(o, i);
    d[i] = torch::from_blob(im.pixels.data(), {16, 16, 3}, torch::kUInt8).permute({2, 0, 1}).clone();
  }
  return d;
}

// 6 steps of 4 images, checkpoints and log lines every 3 steps.
TrainOptions tiny_train_options() {
  TrainOptions o;
  o.steps = 6;
  o.batch = 4;
  o.warmup = 2;
  o.checkpoint_every = 3;
  o.log_every = 3;
  return o;
}

TEST(DdpmTraining, ResumeIsExactAndOptionsAreChecked) {
  test::TempDir dir;
  ModelConfig c = tiny_model();
  torch::Tensor data = tiny_data();
  const TrainOptions o = tiny_train_options();
  // The batch of a step depends only on (seed, step).
  TrainBatch b1 = training_batch(data, o, 1000, 4), b2 = training_batch(data, o, 1000, 4);
  EXPECT_TRUE(torch::equal(b1.x0, b2.x0) && torch::equal(b1.t, b2.t) && torch::equal(b1.e, b2.e));
  EXPECT_FALSE(torch::equal(b1.e, training_batch(data, o, 1000, 5).e));
  EXPECT_EQ(b1.t[0].item<int64_t>() + b1.t[3].item<int64_t>(), 999);  // antithetic pair (n/2 + 1 = 3)
  EXPECT_GE(b1.x0.min().item<float>(), -1.0f);

  std::vector<double> losses;
  DdimUNet whole =
      train_ddpm(c, data, o, dir.file("whole"), [&](const TrainProgress& p) { losses.push_back(p.loss); });
  ASSERT_EQ(losses.size(), 2u);
  for (double l : losses) EXPECT_TRUE(std::isfinite(l));
  // Stopped at step 3 (a run of 3 steps), then extended to 6 in the same folder: identical weights.
  TrainOptions first = o;
  first.steps = 3;
  train_ddpm(c, data, first, dir.file("resumed"));
  DdimUNet resumed = train_ddpm(c, data, o, dir.file("resumed"));
  auto a = whole->named_parameters(), b = resumed->named_parameters();
  for (const auto& p : a) EXPECT_TRUE(torch::equal(p.value(), b[p.key()])) << p.key();
  // The EMA moved away from the initialisation.
  torch::manual_seed(o.seed);
  DdimUNet init(c.unet);
  EXPECT_FALSE(torch::equal(init->named_parameters()["conv_in.weight"], a["conv_in.weight"]));
  EXPECT_TRUE(std::filesystem::exists(dir.file("whole/ema.safetensors")));
  // Another learning rate on the same folder is refused.
  TrainOptions other = o;
  other.lr = 1e-3;
  EXPECT_THROW(train_ddpm(c, data, other, dir.file("whole")), Error);
}

// A run may be extended, annealed (linear decay to 0) and have its dropout changed when resumed; each
// change is logged as a phase, also on a record written before phases were kept (its first phase is
// rebuilt from its options). Annealing changes the steps after it starts.
TEST(DdpmTraining, AnnealingAndDropoutChangesAreLoggedPhases) {
  test::TempDir dir;
  ModelConfig c = tiny_model();
  torch::Tensor data = tiny_data();
  const TrainOptions o = tiny_train_options();
  TrainOptions first = o, anneal = o;
  first.steps = 3;
  anneal.decay_from = 3;  // learning rates 1, 2/3, 1/3 of lr at steps 3, 4, 5
  train_ddpm(c, data, first, dir.file("constant"));
  DdimUNet constant = train_ddpm(c, data, o, dir.file("constant"));
  train_ddpm(c, data, first, dir.file("annealed"));
  DdimUNet annealed = train_ddpm(c, data, anneal, dir.file("annealed"));
  EXPECT_FALSE(torch::equal(constant->named_parameters()["conv_in.weight"],
                            annealed->named_parameters()["conv_in.weight"]));

  train_ddpm(c, data, first, dir.file("run"));
  {  // as an older dmeval wrote it
    std::ifstream in(dir.file("run/train.json"));
    nlohmann::ordered_json state = nlohmann::ordered_json::parse(in);
    state.erase("phases");
    std::ofstream(dir.file("run/train.json")) << state.dump(1);
  }
  ModelConfig no_dropout = c;
  no_dropout.unet.dropout = 0.0;
  train_ddpm(no_dropout, data, anneal, dir.file("run"));
  train_ddpm(no_dropout, data, anneal, dir.file("run"));  // finished, same settings: no new phase
  std::ifstream in(dir.file("run/train.json"));
  const nlohmann::json state = nlohmann::json::parse(in);
  ASSERT_EQ(state["phases"].size(), 2u) << state["phases"].dump();
  EXPECT_EQ(state["phases"][0]["from_step"], 0);
  EXPECT_EQ(state["phases"][0]["steps"], 3);
  EXPECT_EQ(state["phases"][0]["decay_from"], -1);
  EXPECT_DOUBLE_EQ(state["phases"][0]["dropout"].get<double>(), c.unet.dropout);
  EXPECT_EQ(state["phases"][1]["from_step"], 3);
  EXPECT_EQ(state["phases"][1]["steps"], 6);
  EXPECT_EQ(state["phases"][1]["decay_from"], 3);
  EXPECT_EQ(state["phases"][1]["dropout"], 0.0);
  EXPECT_EQ(state["step"], 6);
  // Another change of architecture is still refused.
  ModelConfig wider = c;
  wider.unet.ch *= 2;
  EXPECT_THROW(train_ddpm(wider, data, anneal, dir.file("run")), Error);
}

// The shapes-net sink: features independent of how batches arrive (fixed micro-batches), exact
// moments equal to the features' mean and covariance, logits kept, wrong image sizes refused; weights
// round-trip through safetensors.
TEST(ShapesNet, SinkIsBatchInvariantAndWeightsRoundTrip) {
  test::TempDir dir;
  torch::manual_seed(3);
  ShapesNet net(4);
  save_shapes_net(net, dir.file("net.safetensors"), {{"dmeval_network", "shapes-net"}});
  ShapesNet loaded = load_shapes_net(dir.file("net.safetensors"));
  ShapesProducer p(ShapesOptions{});
  ImageBatch all = p.produce(0, 10);
  ShapesFeatureSink one(net, 4), split(loaded, 4);
  one.consume(all);
  split.consume(p.produce(0, 3));
  split.consume(p.produce(3, 7));
  EXPECT_TRUE(torch::equal(one.features(), split.features()));
  EXPECT_TRUE(torch::equal(one.logits(), split.logits()));
  FeatureStats a = one.stats(), b = split.stats();
  EXPECT_TRUE(torch::equal(a.mu, b.mu) && torch::equal(a.sigma, b.sigma));
  EXPECT_EQ(a.count, 10);
  torch::Tensor f = one.features().to(torch::kFloat64);
  EXPECT_LT((a.mu - f.mean(0)).abs().max().item<double>(), 1e-9);
  torch::Tensor c = f - f.mean(0);
  EXPECT_LT((a.sigma - c.t().mm(c) / 9).abs().max().item<double>(), 1e-9);
  EXPECT_EQ(one.logits().size(1), 4);
  ShapesOptions big;
  big.size = 48;
  ShapesProducer q(big);
  EXPECT_THROW(one.consume(q.produce(0, 1)), Error);
  EXPECT_THROW(load_shapes_net(kFrozenShapes), Error);
}

// The committed shapes-net (profiles/shapes, made by the command in profiles/shapes/README.md)
// classifies held-out shapes it never saw (shapes seed 2) with at least 95 % accuracy.
TEST(ShapesNet, CommittedWeightsClassifyHeldOutShapes) {
  const std::string path = std::string(DMEVAL_SOURCE_DIR) + "/profiles/shapes/shapes-net.safetensors";
  ASSERT_TRUE(std::filesystem::exists(path)) << path << " is part of the repository";
  ShapesNet net = load_shapes_net(path);
  ShapesOptions so;
  so.seed = 2;
  ShapesProducer p(so);
  ImageBatch b = p.produce(0, 512);
  auto rows = shapes_net_extract(net, b, 64);
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < 512; ++i) {
    int l = 0;
    render_shape_image(so, i, &l);
    labels.push_back(l);
  }
  const double acc =
      (rows.at("logits").argmax(1) == torch::tensor(labels)).to(torch::kFloat64).mean().item<double>();
  std::printf("shapes-net held-out accuracy: %.4f\n", acc);
  EXPECT_GE(acc, 0.95);
}

// Features persisted chunk by chunk: a run stopped after two chunks (and killed inside the third)
// and resumed, and three shards into one folder, give exactly the features — and so the moments —
// of one pass; another network's chunks are refused.
TEST(ShapesNet, ChunkedFeaturesResumeAndShardsEqualOnePass) {
  test::TempDir d;
  torch::manual_seed(5);
  ShapesNet net(4);
  ShapesProducer prod(ShapesOptions{});
  const int64_t N = 22;
  ShapesFeatureSink one(net, 4);
  one.consume(prod.produce(0, N));
  FeatureExtractor extract = [&](const ImageBatch& b) { return shapes_net_extract(net, b, 4); };
  const std::string prov = "shapes-net (random, seed 5)";
  ChunkPlan plan;
  plan.total = N;
  plan.chunk_size = 6;
  const nlohmann::ordered_json id = {{"test", "chunked features"}};
  ChunkRunOptions o;
  o.batch = 3;
  o.progress = false;
  {
    ChunkLedger ledger(d.file("a/.dmeval"), id);
    ChunkedFeatureSink sink(d.file("a/features"), extract, prov);
    o.max_chunks = 2;
    ChunkRunResult r = run_chunks(prod, plan, ledger, {&sink}, o);
    EXPECT_FALSE(r.complete);
    sink.begin_chunk(plan.chunk(2));  // killed inside the third chunk
    sink.consume(prod.produce(plan.chunk(2).first, 3));
    EXPECT_THROW(load_chunked_features(d.file("a/features"), "features", N, prov), Error);
  }
  {
    ChunkLedger ledger(d.file("a/.dmeval"), id);
    ChunkedFeatureSink sink(d.file("a/features"), extract, prov);
    o.max_chunks = 0;
    ChunkRunResult r = run_chunks(prod, plan, ledger, {&sink}, o);
    EXPECT_TRUE(r.complete);
    EXPECT_EQ(r.chunks_skipped, 2);
  }
  torch::Tensor resumed = load_chunked_features(d.file("a/features"), "features", N, prov);
  EXPECT_TRUE(torch::equal(resumed, one.features()));
  EXPECT_TRUE(torch::equal(load_chunked_features(d.file("a/features"), "logits", N, prov), one.logits()));
  for (int64_t k : {2, 0, 1}) {
    ChunkPlan sp = plan;
    sp.shard.index = k;
    sp.shard.count = 3;
    ChunkLedger ledger(d.file("s/.dmeval"), id);
    ChunkedFeatureSink sink(d.file("s/features"), extract, prov);
    run_chunks(prod, sp, ledger, {&sink}, o);
  }
  torch::Tensor sharded = load_chunked_features(d.file("s/features"), "features", N, prov);
  EXPECT_TRUE(torch::equal(sharded, one.features()));
  MomentAccumulator m(kShapesFeatureDim);
  m.add(0, sharded);
  FeatureStats a = m.finalize(), b = one.stats();
  EXPECT_TRUE(torch::equal(a.mu, b.mu) && torch::equal(a.sigma, b.sigma));
  EXPECT_THROW(load_chunked_features(d.file("s/features"), "features", N, "another network"), Error);
}

}  // namespace
}  // namespace dmeval

namespace dmeval {
namespace {

// The committed shapes UNet (profiles/shapes/shapes-unet.safetensors, trained by
// scripts/train-shapes.sh) regenerates the samples recorded in tests/data/shapes_unet_v1.json: the
// same file (SHA-256), and the same images (the profile's sampler: 50-step quad DDIM, eta 1) — pixel-hash
// equal on a CPU that sums like the recording one; elsewhere every pixel within 2 of the stored ones (the
// UNet's float sums run in another order on other SIMD widths; tolerance stated here, hashes compared and
// reported either way). shapes-net recognises the samples as shapes. DMEVAL_REGENERATE_SHAPES_UNET_SAMPLES=1
// rewrites the record (only when the weights change on purpose).
TEST(ShapesUNet, CommittedWeightsReproduceTheirSamples) {
  const std::string root = DMEVAL_SOURCE_DIR;
  const std::string weights = root + "/profiles/shapes/shapes-unet.safetensors";
  const std::string record = root + "/tests/data/shapes_unet_v1.json";
  const std::string pixels_file = root + "/tests/data/shapes_unet_v1_samples.npy";
  ASSERT_TRUE(std::filesystem::exists(weights)) << weights << " missing (made by scripts/train-shapes.sh)";
  const bool regenerate = std::getenv("DMEVAL_REGENERATE_SHAPES_UNET_SAMPLES") != nullptr;
  nlohmann::json rec;
  if (!regenerate) {
    std::ifstream in(record);
    ASSERT_TRUE(in) << record << " missing";
    rec = nlohmann::json::parse(in);
  } else {
    rec = {
        {"comment",
         "samples of the committed shapes UNet: DDIM quad 50 steps, eta 1 (the profile's sampler), per-image "
         "noise, micro-batch 8, CPU; SHA-256 of each image's RGB pixels (H x W x 3); pixels in "
         "shapes_unet_v1_samples.npy"},
        {"steps", 50},
        {"skip_type", "quad"},
        {"eta", 1.0},
        {"seed", 0},
        {"images", 8},
        {"micro_batch", 8}};
  }
  const std::string sha = sha256_file(weights);
  if (regenerate) rec["weights_sha256"] = sha;
  EXPECT_EQ(sha, rec["weights_sha256"].get<std::string>()) << "the committed weights changed";

  const ModelConfig config = resolve_model_config("shapes");
  DdimUNet unet(config.unet);
  load_unet_weights(*unet, weights);
  unet->eval();
  UNetRunOptions ro;
  ro.micro_batch = rec["micro_batch"];
  SamplerSpec spec;
  spec.skip_type = rec["skip_type"];
  spec.steps = rec["steps"];
  spec.eta = rec["eta"];
  const int64_t n = rec["images"];
  DiffusionImageProducer producer(make_unet_eps(unet, ro), make_schedule(config.diffusion), spec,
                                  make_noise_source("per-image", rec["seed"].get<uint64_t>()), {3, 32, 32},
                                  torch::kCPU, false);
  ImageBatch b = producer.produce(0, n);
  torch::Tensor got = torch::empty({n, 32, 32, 3}, torch::kUInt8);
  for (int64_t i = 0; i < n; ++i)
    std::memcpy(got[i].data_ptr<uint8_t>(), b.images[i].pixels.data(), b.images[i].pixels.size());
  if (regenerate) {
    for (int64_t i = 0; i < n; ++i) rec["pixels_sha256"][std::to_string(i)] = pixels_sha(b.images[i]);
    write_npy(pixels_file, from_torch(got));
    std::ofstream(record) << rec.dump(1) << "\n";
    GTEST_SKIP() << "regenerated " << record;
  }
  int equal = 0;
  for (int64_t i = 0; i < n; ++i) equal += pixels_sha(b.images[i]) == rec["pixels_sha256"][std::to_string(i)];
  torch::Tensor want = to_torch(read_npy_file(pixels_file));
  const int64_t max_diff = (got.to(torch::kInt32) - want.to(torch::kInt32)).abs().max().item<int64_t>();
  std::printf("shapes UNet samples: %d of %lld pixel hashes equal, largest pixel difference %lld\n", equal,
              static_cast<long long>(n), static_cast<long long>(max_diff));
  EXPECT_LE(max_diff, 2) << "the samples of the committed weights changed";
  // They are shapes: the profile's classifier is confident on at least 3 of the 8 (the committed
  // 20,000-step weights: 3, with 5 above p = 0.8; the earlier 11,000-step weights: 4; weights that drew
  // blobs scored 1–2 of 8).
  ShapesNet net = load_shapes_net(root + "/profiles/shapes/shapes-net.safetensors");
  auto rows = shapes_net_extract(net, b, 64);
  const double confident = (std::get<0>(torch::softmax(rows.at("logits"), 1).max(1)) > 0.9)
                               .to(torch::kFloat64)
                               .mean()
                               .item<double>();
  std::printf("shapes-net confident (p > 0.9) on %.0f %% of them\n", 100 * confident);
  EXPECT_GE(confident, 3.0 / 8.0);
}

}  // namespace
}  // namespace dmeval
