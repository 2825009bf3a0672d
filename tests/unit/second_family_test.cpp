// A second model family, written in this test only, through the seams a new family uses: the
// quantization methods calibrate, save and restore it through the DiffusionModel interface (no ddim
// type anywhere), DDPM training trains and resumes it exactly, and class-conditional generation takes
// each image's label from a ConditioningSource so that samples do not depend on the batch layout or
// the evaluation micro-batch. The family is a toy (two convolutions and a class embedding, with
// classifier-free guidance through an extra "unconditional" class) of the size that keeps this fast.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "core/error.h"
#include "core/torch_bridge.h"
#include "generators/conditioning_source.h"
#include "generators/ddpm_training.h"
#include "generators/diffusion_model.h"
#include "generators/diffusion_producer.h"
#include "generators/noise_source.h"
#include "generators/quant/calibration_data.h"
#include "generators/quant/calibration_file.h"
#include "generators/quant/quant_method.h"
#include "tests/support/temp_dir.h"

namespace dmeval {
namespace {

constexpr int64_t kClasses = 3, kRes = 8, kWidth = 8;

class ToyNetImpl : public torch::nn::Module {
 public:
  ToyNetImpl()
      : conv_in(register_module("conv_in", Conv2dLayer(3, kWidth, 3, 1, 1, LayerRole::kFirstConv))),
        embed(register_module("embed", LinearLayer(kClasses + 1, kWidth, LayerRole::kConditioning))),
        conv_out(register_module("conv_out", Conv2dLayer(kWidth, 3, 3, 1, 1, LayerRole::kLastConv))) {}
  // y: class labels 0..K (K = unconditional)
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& y) {
    torch::Tensor onehot = torch::one_hot(y.to(x.device()), kClasses + 1).to(torch::kFloat32);
    torch::Tensor h = conv_in(x) + embed(onehot).view({-1, kWidth, 1, 1}) +
                      (t.to(torch::kFloat32) / 1000.0).view({-1, 1, 1, 1});
    return conv_out(torch::silu(h));
  }
  Conv2dLayer conv_in;
  LinearLayer embed;
  Conv2dLayer conv_out;
};
TORCH_MODULE(ToyNet);

class ToyModel : public DiffusionModel {
 public:
  explicit ToyModel(uint64_t seed) {
    torch::manual_seed(seed);
    net_ = ToyNet();
    net_->eval();
  }
  explicit ToyModel(ToyNet net) : net_(std::move(net)) { net_->eval(); }
  std::string family() const override { return "toy-class"; }
  std::string name() const override { return "toy"; }
  std::string dataset() const override { return "none"; }
  nlohmann::ordered_json identity() const override { return {{"architecture", "toy"}}; }
  nlohmann::ordered_json describe() const override { return identity(); }
  std::string describe_line() const override { return "toy class-conditional net"; }
  std::string weights_id() const override { return "random"; }
  std::string weights_sha256() const override { return ""; }
  const DiffusionConfig& diffusion() const override { return diffusion_; }
  std::vector<int64_t> sample_shape() const override { return {3, kRes, kRes}; }
  std::vector<std::string> conditioning() const override { return {"class"}; }
  int64_t num_classes() const override { return kClasses; }

  // Unconditional when no labels are given (calibration trajectories of the methods).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const Conditioning& c = {}) override {
    torch::Tensor uncond = torch::full({x.size(0)}, kClasses, torch::kLong);
    if (!c.class_labels.defined()) return net_->forward(x, t, uncond);
    torch::Tensor e_c = net_->forward(x, t, c.class_labels);
    if (c.guidance == 1.0) return e_c;
    torch::Tensor e_u = net_->forward(x, t, uncond);
    return e_u + c.guidance * (e_c - e_u);
  }
  EpsModel eps(const UNetRunOptions& run, const Conditioning& c = {}) override {
    prepare_device_arithmetic(run);
    net_->to(run.device);
    ToyModel* self = this;
    return micro_batched_eps(
        [self, c](const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& rows) {
          return self->forward(x, t, c.empty() ? c : c.rows(rows));
        },
        run);
  }
  torch::nn::Module& network() override { return *net_; }
  std::shared_ptr<DiffusionModel> clone() const override {
    auto c = std::make_shared<ToyModel>(ToyNet());
    torch::NoGradGuard no_grad;
    auto src = net_->named_parameters();
    for (auto& p : c->net_->named_parameters()) p.value().copy_(src[p.key()]);
    return c;
  }
  void to(torch::Device device) override { net_->to(device); }
  void save_weights(const std::string& path, const std::map<std::string, std::string>&) override {
    torch::serialize::OutputArchive a;
    net_->save(a);
    a.save_to(path);
  }
  void load_weights(const std::string& path) override {
    torch::serialize::InputArchive a;
    a.load_from(path);
    net_->load(a);
  }

 private:
  ToyNet net_{nullptr};
  DiffusionConfig diffusion_;
};

QuantContext toy_context(std::shared_ptr<DiffusionModel> m, const std::string& method,
                         const std::string& bits, const std::vector<std::string>& overrides) {
  QuantContext ctx;
  ctx.model = std::move(m);
  ctx.schedule = make_schedule(ctx.model->diffusion());
  ctx.model_id = "toy";
  ctx.bits = parse_bits(bits);
  ctx.settings = merge_settings(quant_method(method), overrides);
  ctx.run.micro_batch = 4;
  return ctx;
}

std::vector<std::string> small(const std::vector<std::string>& more) {
  std::vector<std::string> s = {"traj_images=8", "traj_steps=5", "traj_batch=4", "cali_n=8", "cali_st=5"};
  s.insert(s.end(), more.begin(), more.end());
  return s;
}

TEST(SecondFamily, MethodsCalibrateSaveAndRestoreThroughTheInterface) {
  test::TempDir dir;
  // Held-out inputs: the FP model's own trajectories from other noise than the calibration's.
  ToyModel fp_ref(1);
  SamplerSpec traj;
  traj.steps = 5;
  auto held_out_noise = make_noise_source("per-image", 99);
  Trajectories tr = record_trajectories(fp_ref.eps({}), make_schedule(fp_ref.diffusion()), traj,
                                        *held_out_noise, 4, 4, fp_ref.sample_shape(), torch::kCPU);
  torch::Tensor x = torch::cat(tr.xs, 0), t = torch::cat(tr.ts, 0);
  torch::Tensor eps_fp;
  {
    torch::NoGradGuard no_grad;
    eps_fp = fp_ref.forward(x, t, {});
  }
  const std::map<std::string, std::vector<std::string>> methods = {
      {"fp", {}},
      {"baseline", small({"act_init_batch=8"})},
      {"qdiffusion", small({"iters_w=5", "iters_a=5", "batch_size=4", "act_init_batch=8", "split=false"})},
  };
  for (const auto& [method, o] : methods) {
    SCOPED_TRACE(method);
    const std::string bits = method == "fp" ? "32/32" : "8/8";
    QuantContext ctx = toy_context(std::make_shared<ToyModel>(1), method, bits, o);
    auto q = quant_method(method).calibrate(ctx);
    torch::NoGradGuard no_grad;
    torch::Tensor e = q->eps()(x, t, 0);
    const double err = (e - eps_fp).abs().mean().item<double>(), scale = eps_fp.abs().mean().item<double>();
    if (method == "fp") {
      EXPECT_TRUE(torch::equal(e, eps_fp));
      continue;
    }
    std::printf("%s W8A8 on the toy family: mean |eps_q - eps_fp| %.4g of mean |eps_fp| %.4g\n",
                method.c_str(), err, scale);
    // 8-bit weights and activations of a two-layer net: close to FP, and not FP.
    EXPECT_GT(err, 0.0);
    EXPECT_LT(err, 0.1 * scale);
    // Quantizers sit on the toy's own layers, named by its module paths.
    bool conv_in = false, conv_out = false;
    for (const auto& [name, tensor] : q->state()) {
      conv_in |= name.rfind("conv_in.weight_quantizer", 0) == 0;
      conv_out |= name.rfind("conv_out.act_quantizer", 0) == 0;
    }
    EXPECT_TRUE(conv_in && conv_out);
    // Saved and restored into a fresh model of the family: identical outputs.
    CalibrationRecord rec;
    rec.method = method;
    rec.bits = ctx.bits;
    rec.model = {{"weights", ctx.model_id}};
    rec.settings = ctx.settings;
    const std::string path = dir.file(method + ".safetensors");
    save_calibration(path, rec, q->state());
    QuantContext ctx2 = toy_context(std::make_shared<ToyModel>(1), method, bits, o);
    auto r = quant_method(method).restore(ctx2, load_calibration(path).tensors);
    EXPECT_TRUE(torch::equal(r->eps()(x, t, 0), e));
  }
  // q-diffusion's split shortcut needs concatenating layers; this family has none and says so.
  QuantContext split = toy_context(std::make_shared<ToyModel>(1), "qdiffusion", "8/8", small({"split=true"}));
  try {
    quant_method("qdiffusion").calibrate(split);
    ADD_FAILURE() << "split=true calibrated on a family without split layers";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("toy-class"), std::string::npos) << e.what();
  }
}

TEST(SecondFamily, DdpmTrainingResumesExactly) {
  test::TempDir dir;
  torch::Tensor data = torch::randint(0, 256, {16, 3, kRes, kRes}, torch::kUInt8);
  TrainOptions o;
  o.steps = 6;
  o.batch = 4;
  o.warmup = 2;
  o.checkpoint_every = 3;
  o.log_every = 3;
  o.ema_rate = 0.9;
  auto whole = train_ddpm(std::make_shared<ToyModel>(7), data, o, dir.file("whole"));
  TrainOptions first = o;
  first.steps = 3;
  train_ddpm(std::make_shared<ToyModel>(7), data, first, dir.file("resumed"));
  auto resumed = train_ddpm(std::make_shared<ToyModel>(7), data, o, dir.file("resumed"));
  auto a = whole->network().named_parameters(), b = resumed->network().named_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& p : a) EXPECT_TRUE(torch::equal(p.value(), b[p.key()])) << p.key();
  // Training moved the EMA weights away from the initialisation.
  ToyModel init(7);
  EXPECT_FALSE(torch::equal(init.network().named_parameters()["conv_in.weight"], a["conv_in.weight"]));
}

TEST(SecondFamily, ClassConditionalSamplesDoNotDependOnBatchOrMicroBatch) {
  auto m = std::make_shared<ToyModel>(3);
  auto source =
      std::shared_ptr<const ConditioningSource>(make_conditioning_source("per-class=2", 5, kClasses));
  SamplerSpec spec;
  spec.steps = 4;
  auto produce = [&](int64_t micro, const std::vector<std::pair<int64_t, int64_t>>& batches,
                     double guidance) {
    UNetRunOptions run;
    run.micro_batch = micro;
    DiffusionImageProducer p(m->eps(run), make_schedule(m->diffusion()), spec,
                             make_noise_source("per-image", 9), m->sample_shape(), torch::kCPU,
                             /*keep_raw=*/true);
    p.set_conditioning(source, [m, run, guidance](Conditioning c) {
      c.guidance = guidance;
      return m->eps(run, c);
    });
    std::vector<torch::Tensor> raw;
    for (auto [first, count] : batches) raw.push_back(to_torch(p.produce(first, count).raw));
    return torch::cat(raw, 0);
  };
  torch::Tensor all = produce(8, {{0, 8}}, 1.0);
  EXPECT_TRUE(torch::equal(all, produce(8, {{0, 3}, {3, 5}}, 1.0)));  // other batches
  EXPECT_TRUE(torch::equal(all.slice(0, 0, 5), produce(8, {{0, 5}}, 1.0)));
  // Another micro-batch: the labels follow their rows (the values may differ in the last bits).
  EXPECT_LT((all - produce(3, {{0, 8}}, 1.0)).abs().max().item<double>(), 1e-4);
  // The labels matter, and guidance changes the samples.
  torch::Tensor guided = produce(8, {{0, 8}}, 3.0);
  EXPECT_GT((all - guided).abs().max().item<double>(), 1e-3);
  // A class source for a model without classes is refused.
  EXPECT_THROW(make_conditioning_source("per-class=2", 5, 0), Error);
}

TEST(ConditioningSource, LabelsDependOnTheImageIndexOnly) {
  auto per_class = make_conditioning_source("per-class=2", 0, 3);
  EXPECT_TRUE(
      torch::equal(per_class->images(0, 7).class_labels, torch::tensor({0, 0, 1, 1, 2, 2, 0}, torch::kLong)));
  EXPECT_TRUE(torch::equal(per_class->images(3, 2).class_labels, torch::tensor({1, 2}, torch::kLong)));
  auto fixed = make_conditioning_source("class=2", 0, 3);
  EXPECT_TRUE(torch::equal(fixed->images(10, 3).class_labels, torch::tensor({2, 2, 2}, torch::kLong)));
  EXPECT_EQ(fixed->describe(), "class=2");

  auto uniform = make_conditioning_source("uniform", 11, 1000);
  torch::Tensor a = uniform->images(0, 4000).class_labels;
  EXPECT_TRUE(torch::equal(a.slice(0, 1000, 1010), uniform->images(1000, 10).class_labels));
  EXPECT_GE(a.min().item<int64_t>(), 0);
  EXPECT_LT(a.max().item<int64_t>(), 1000);
  EXPECT_GT(std::get<0>(at::_unique(a)).numel(), 900);  // 4000 draws cover most of 1000 classes
  EXPECT_FALSE(torch::equal(a, make_conditioning_source("uniform", 12, 1000)->images(0, 4000).class_labels));

  auto runs = make_conditioning_source("uniform-runs=4", 11, 1000);
  torch::Tensor r = runs->images(0, 12).class_labels;
  for (int64_t i = 0; i < 12; ++i) EXPECT_EQ(r[i].item<int64_t>(), r[i / 4 * 4].item<int64_t>());
  EXPECT_EQ(r[4].item<int64_t>(), a[1].item<int64_t>());  // run 1 draws as image 1 of uniform

  EXPECT_TRUE(make_conditioning_source("none", 0, 0)->empty());
  EXPECT_TRUE(make_conditioning_source("none", 0, 0)->images(0, 4).empty());
  for (const std::string bad :
       {"class=3", "class=-1", "per-class=0", "per-class=x", "uniform=2", "labels", ""}) {
    SCOPED_TRACE(bad);
    try {
      make_conditioning_source(bad, 0, 3);
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("--conditioning"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace dmeval
