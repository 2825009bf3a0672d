// The model-family seam: the registry finds the family that reads a preset and refuses what none
// reads, the ddim family behind the DiffusionModel interface is the ddim UNet (same outputs, identity,
// clone), an unconditional family refuses conditioning; the shared training loop resumes a killed run
// to exactly the parameters of an uninterrupted one and refuses a folder trained otherwise.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "core/error.h"
#include "generators/ddim/ddim_model.h"
#include "generators/diffusion_model.h"
#include "generators/training_loop.h"
#include "tests/support/temp_dir.h"

namespace dmeval {
namespace {

ModelSpec shapes_random(int64_t seed) {
  ModelSpec s;
  s.model = "shapes";
  s.random_weights = seed;
  return s;
}

TEST(ModelFamilies, RegistryFindsTheFamilyThatReadsTheModel) {
  ASSERT_FALSE(model_families().empty());
  auto m = load_diffusion_model(shapes_random(3));
  EXPECT_EQ(m->family(), "ddim-unet");
  EXPECT_EQ(m->name(), "shapes");
  EXPECT_EQ(model_family("ddim-unet").name, "ddim-unet");
  EXPECT_THROW(model_family("no-such-family"), Error);
  ModelSpec unknown = shapes_random(3);
  unknown.model = "imagenet-256";
  try {
    load_diffusion_model(unknown);
    ADD_FAILURE() << "an unknown model was loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("imagenet-256"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("ddim-unet"), std::string::npos) << e.what();
  }
}

TEST(ModelFamilies, DdimModelIsTheUNetBehindTheInterface) {
  auto m = load_diffusion_model(shapes_random(5));
  DdimModel& d = ddim_model_of(*m, "this test");
  const auto shape = m->sample_shape();
  ASSERT_EQ(shape.size(), 3u);
  EXPECT_EQ(shape[1], d.config().unet.resolution);
  torch::manual_seed(0);
  torch::Tensor x = torch::randn({2, shape[0], shape[1], shape[2]});
  torch::Tensor t = torch::full({2}, 321.0f);
  UNetRunOptions run;
  run.micro_batch = 2;
  torch::Tensor a = m->eps(run)(x, t, 0);
  torch::NoGradGuard no_grad;
  torch::Tensor b = d.unet()->forward(x, t);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_TRUE(torch::equal(m->decode(x), x));  // pixel space
  // The quantizable layers and the attention hooks are the UNet's.
  EXPECT_EQ(list_layers(m->network()).size(), list_layers(*d.unet()).size());
  const auto hooks = m->attention_hooks();
  ASSERT_FALSE(hooks.empty());
  EXPECT_EQ(hooks.size(), d.unet()->attention_blocks().size());
  EXPECT_EQ(hooks[0].quantizer, &d.unet()->attention_blocks()[0].second->quantizer);
  // A clone has the same identity and outputs, and is another module.
  auto c = m->clone();
  EXPECT_EQ(c->identity(), m->identity());
  EXPECT_TRUE(torch::equal(c->eps(run)(x, t, 0), a));
  EXPECT_NE(&c->network(), &m->network());
  EXPECT_EQ(m->identity()["weights"], "random:5");
  // Unconditional: conditioning is refused, naming the model.
  Conditioning cond;
  cond.class_labels = torch::zeros({2}, torch::kLong);
  EXPECT_THROW(m->eps(run, cond), Error);
}

// A toy regression with dropout and an EMA copy, its batch of step s fixed by s.
class ToyTask : public TrainingTask {
 public:
  explicit ToyTask(double lr_tag) : lr_tag_(lr_tag) {
    torch::manual_seed(11);
    net_ = torch::nn::Sequential(torch::nn::Linear(4, 8), torch::nn::Dropout(0.2), torch::nn::Linear(8, 1));
    ema_ = torch::nn::Sequential(torch::nn::Linear(4, 8), torch::nn::Dropout(0.2), torch::nn::Linear(8, 1));
    torch::NoGradGuard g;
    auto p = net_->parameters(), e = ema_->parameters();
    for (size_t i = 0; i < p.size(); ++i) e[i].copy_(p[i]);
    x_ = torch::linspace(-1, 1, 64 * 4).view({64, 4});
    y_ = x_.sum(1, true).sin();
  }
  torch::nn::Module& model() override { return *net_; }
  torch::nn::Module* ema() override { return ema_.get(); }
  torch::Tensor loss(int64_t step) override {
    if (step == fail_at) throw Error("killed");
    torch::Tensor idx = (torch::arange(8) * 7 + step * 3) % 64;
    return (net_->forward(x_.index_select(0, idx)) - y_.index_select(0, idx)).square().mean();
  }
  void save(const std::string& dir, int64_t) override {
    save_atomically([&](const std::string& p) { torch::save(net_, p); }, dir + "/net.pt");
    save_atomically([&](const std::string& p) { torch::save(ema_, p); }, dir + "/ema.pt");
  }
  void load(const std::string& dir) override {
    torch::load(net_, dir + "/net.pt");
    torch::load(ema_, dir + "/ema.pt");
  }
  nlohmann::ordered_json options() const override { return {{"toy", 1}, {"tag", lr_tag_}}; }
  int64_t fail_at = -1;
  torch::nn::Sequential net_{nullptr}, ema_{nullptr};

 private:
  double lr_tag_;
  torch::Tensor x_, y_;
};

TEST(TrainingLoop, KilledRunResumesToTheUninterruptedParameters) {
  test::TempDir dir;
  TrainLoopOptions o;
  o.steps = 30;
  o.lr = 1e-2;
  o.warmup = 5;
  o.decay_from = 20;
  o.ema_rate = 0.9;
  o.checkpoint_every = 5;
  o.log_every = 5;
  ToyTask whole(1);
  EXPECT_EQ(run_training(whole, o, dir.file("whole")), 30);

  ToyTask first(1);
  first.fail_at = 13;  // dies between checkpoints: steps 10..12 are lost and redone
  EXPECT_THROW(run_training(first, o, dir.file("resumed")), Error);
  ToyTask second(1);
  EXPECT_EQ(run_training(second, o, dir.file("resumed")), 30);
  auto a = whole.net_->parameters(), b = second.net_->parameters();
  auto ea = whole.ema_->parameters(), eb = second.ema_->parameters();
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::equal(a[i], b[i])) << "parameter " << i;
    EXPECT_TRUE(torch::equal(ea[i], eb[i])) << "EMA parameter " << i;
  }
  // A folder trained with other options is refused, not mixed.
  ToyTask other(2);
  try {
    run_training(other, o, dir.file("whole"));
    ADD_FAILURE() << "resumed a run with other options";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("was trained with other options"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace dmeval
