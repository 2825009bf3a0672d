// BinaryDM beyond the golden set: the ddim UNet's layer mapping and block outputs (dmeval's
// construction, spec binarydm.md §6.1), the baselines' plans, the LSQ weight quantizer, and the
// training's refusals (a teacher of another architecture, no steps).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <regex>

#include "core/error.h"
#include "generators/diffusion_model.h"
#include "generators/quant/binarized_layer.h"
#include "generators/quant/binarydm_plan.h"
#include "generators/quant/binarydm_training.h"
#include "tests/support/temp_dir.h"

namespace dmeval {
namespace {

std::shared_ptr<DiffusionModel> random_model(const std::string& preset) {
  ModelSpec s;
  s.model = preset;
  s.random_weights = 0;
  return load_diffusion_model(s);
}

TEST(BinaryDmPlan, DdimMappingFollowsTheSpecConstruction) {
  auto m = random_model("shapes");
  const auto layers = list_layers(m->network());
  const BnnPlan p = binarydm_plan("ddim-unet", layers, {0, 1});
  EXPECT_TRUE(p.construction);
  ASSERT_EQ(p.layers.size(), layers.size());
  int levels = 0;
  for (const auto& l : layers)
    if (l.name.rfind("down.", 0) == 0) levels = std::max(levels, std::stoi(l.name.substr(5)) + 1);
  EXPECT_EQ(p.groups, levels + 1);
  const std::regex down(R"(^down\.(\d+)\.)"), up(R"(^up\.(\d+)\.)");
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string& n = layers[i].name;
    const BnnPlanEntry& e = p.layers[i];
    SCOPED_TRACE(n);
    std::smatch mt;
    if (layers[i].role == LayerRole::kTimestepMlp || n == "conv_in" || n == "conv_out") {
      EXPECT_TRUE(e.stays_full);
      continue;
    }
    EXPECT_FALSE(e.stays_full);
    int want = -1;
    if (n.rfind("mid.", 0) == 0)
      want = levels;
    else if (std::regex_search(n, mt, down))
      want = std::stoi(mt[1]) + (n.find("downsample") != std::string::npos ? 1 : 0);
    else if (std::regex_search(n, mt, up))
      want = std::stoi(mt[1]);
    EXPECT_EQ(e.group, want);
    EXPECT_EQ(e.order, want <= 1 ? 2 : 1);
  }
  // The baseline: order 1 everywhere.
  for (const BnnPlanEntry& e : binarydm_plan("ddim-unet", layers, {}).layers)
    if (!e.stays_full) EXPECT_EQ(e.order, 1) << e.name;
}

TEST(BinaryDmPlan, DdimBlockOutputsAreTheSkipsMiddleAndDecoderBlocks) {
  auto m = random_model("shapes");
  const auto& c = m->sample_shape();
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> blocks;
  torch::Tensor x = torch::randn({2, c[0], c[1], c[2]}), t = torch::tensor({10, 500});
  torch::Tensor eps = m->forward_blocks(x, t, {}, &blocks);
  EXPECT_TRUE(torch::equal(eps, m->forward(x, t)));
  // conv_in + levels × blocks + (levels − 1) downsamples | middle | levels × (blocks + 1): the LDM
  // TimestepEmbedSequential count for the same layout.
  int64_t levels = 0, nrb = 0;
  for (const auto& l : list_layers(m->network())) {
    std::smatch mt;
    static const std::regex re(R"(^down\.(\d+)\.block\.(\d+)\.conv1$)");
    if (std::regex_search(l.name, mt, re))
      levels = std::max<int64_t>(levels, std::stoi(mt[1]) + 1),
      nrb = std::max<int64_t>(nrb, std::stoi(mt[2]) + 1);
  }
  const int64_t encoder = 1 + levels * nrb + (levels - 1);
  ASSERT_EQ(static_cast<int64_t>(blocks.size()), encoder + 1 + levels * (nrb + 1));
  // The decoder mirrors the encoder: block k of the decoder has the resolution of skip encoder-1-k.
  for (int64_t k = 0; k < levels * (nrb + 1); ++k) {
    const torch::Tensor& dec = blocks[static_cast<size_t>(encoder + 1 + k)];
    EXPECT_EQ(dec.size(0), 2);
    EXPECT_GE(dec.size(-1), 2) << "LRM needs feature maps at least 2 wide";
  }
  EXPECT_EQ(blocks.front().size(-1), c[2]);
  EXPECT_EQ(blocks.back().size(-1), c[2]);  // the last decoder block, at full resolution
}

TEST(BinaryDmPlan, LsqWeightsTakeAtMostTwoToTheBitsLevelsPerChannel) {
  for (int bits : {2, 3, 4}) {
    torch::Tensor w = torch::randn({5, 4, 3, 3});
    LsqWeightQuantizer q(bits, torch::zeros({5, 1, 1, 1}));
    torch::Tensor wq = q.forward(w);
    for (int64_t o = 0; o < 5; ++o) {
      const torch::Tensor levels = std::get<0>(torch::_unique(wq[o].detach()));
      EXPECT_LE(levels.numel(), int64_t{1} << bits) << bits << " bits, channel " << o;
      EXPECT_GT(levels.numel(), 1);
    }
  }
}

TEST(BinaryDmTraining, RefusesATeacherOfAnotherArchitectureAndNoSteps) {
  auto student_fp = random_model("shapes");
  auto other = random_model("shapes-ldm");
  BnnLayerSettings ls;
  BnnStudent s(*student_fp, ls, 0), e(*student_fp, ls, 0);
  const auto& shape = student_fp->sample_shape();
  BnnBatchFn batches = [&](int64_t) {
    return BnnBatch{torch::zeros({2, shape[0], shape[1], shape[2]}),
                    torch::tensor({1, 2}),
                    torch::zeros({2, shape[0], shape[1], shape[2]}),
                    {}};
  };
  test::TempDir dir;
  BnnTrainOptions o;
  o.steps = 2;
  try {
    train_binarydm(s, e, *other, batches, o, dir.file("a"));
    FAIL() << "trained from a teacher of another architecture";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("not the same architecture"), std::string::npos) << err.what();
  }
  o.steps = 0;
  try {
    train_binarydm(s, e, *student_fp, batches, o, dir.file("b"));
    FAIL() << "trained for 0 steps";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("at least one step"), std::string::npos) << err.what();
  }
}

}  // namespace
}  // namespace dmeval
