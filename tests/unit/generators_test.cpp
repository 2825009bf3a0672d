// Unit tests of generators/: Philox known answers, the per-image noise scheme, batch invariance
// of the UNet, ddim YAML configs, checkpoint layouts and their errors, sample conversion.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "core/checkpoint.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "core/torch_bridge.h"
#include "generators/ddim/ddim_model.h"
#include "generators/ddim/ddim_unet.h"
#include "generators/ddim/unet_config.h"
#include "generators/ddim/unet_weights.h"
#include "generators/noise_source.h"
#include "generators/philox.h"
#include "generators/sample_images.h"
#include "generators/samplers.h"
#include "generators/timestep_sequence.h"
#include "generators/unet_runner.h"
#include "tests/support/pickle_builder.h"
#include "tests/support/temp_dir.h"

namespace dmeval {
namespace {

UNetConfig tiny_config() {
  UNetConfig c;
  c.ch = 32;
  c.ch_mult = {1, 2};
  c.num_res_blocks = 1;
  c.attn_resolutions = {8};
  c.dropout = 0;
  c.resolution = 16;
  return c;
}

TEST(GeneratorsPhilox, KnownAnswers) {
  // Random123's kat_vectors for philox4x32_10.
  EXPECT_EQ(philox4x32_10({0, 0, 0, 0}, {0, 0}),
            (PhiloxCounter{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}));
  EXPECT_EQ(philox4x32_10({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu}),
            (PhiloxCounter{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}));
  EXPECT_EQ(philox4x32_10({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, {0xa4093822u, 0x299f31d0u}),
            (PhiloxCounter{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}));
}

TEST(GeneratorsNoise, PerImageDependsOnlyOnSeedImageAndStep) {
  auto a = make_noise_source("per-image", 7), b = make_noise_source("per-image", 7);
  const std::vector<int64_t> shape = {3, 8, 8};
  torch::Tensor whole = a->initial(0, 10, shape);
  torch::Tensor part = b->initial(4, 3, shape);  // images 4, 5, 6 from another batch layout
  EXPECT_TRUE(torch::equal(whole.slice(0, 4, 7), part));
  EXPECT_TRUE(torch::equal(whole[5], per_image_noise(7, 5, 0, shape)));
  // Step noise: per step and image, independent of draw order; zeros when not needed.
  torch::Tensor s3 = a->step(3, 2, 4, shape, true);
  torch::Tensor s1 = b->step(1, 2, 4, shape, true);
  EXPECT_TRUE(torch::equal(s3, b->step(3, 2, 4, shape, true)));
  EXPECT_FALSE(torch::equal(s3, s1));
  EXPECT_EQ(a->step(0, 0, 2, shape, false).abs().sum().item<float>(), 0.0f);
  // Different images, steps and seeds give different noise.
  EXPECT_FALSE(torch::equal(whole[0], whole[1]));
  EXPECT_FALSE(torch::equal(per_image_noise(7, 0, 0, shape), per_image_noise(8, 0, 0, shape)));
  EXPECT_FALSE(torch::equal(per_image_noise(7, 0, 0, shape), per_image_noise(7, 0, 1, shape)));
  EXPECT_FALSE(torch::equal(per_image_noise(7, 0, 0, shape), per_image_noise(7, int64_t{1} << 32, 0, shape)));
  EXPECT_FALSE(a->sequential());
}

TEST(GeneratorsNoise, PerImageIsStandardNormal) {
  torch::Tensor z =
      make_noise_source("per-image", 2024)->initial(0, 64, {3, 32, 32}).flatten().to(torch::kFloat64);
  const double n = static_cast<double>(z.numel());  // 196608 values
  EXPECT_NEAR(z.mean().item<double>(), 0.0, 5.0 / std::sqrt(n));
  EXPECT_NEAR(z.std().item<double>(), 1.0, 5.0 * std::sqrt(0.5 / n));
  // Tail fractions of N(0, 1): P(|z| > 1) = 0.3173, P(|z| > 2) = 0.0455, P(|z| > 3) = 0.0027.
  EXPECT_NEAR(z.abs().gt(1).to(torch::kFloat64).mean().item<double>(), 0.3173, 0.006);
  EXPECT_NEAR(z.abs().gt(2).to(torch::kFloat64).mean().item<double>(), 0.0455, 0.0025);
  EXPECT_NEAR(z.abs().gt(3).to(torch::kFloat64).mean().item<double>(), 0.0027, 0.0006);
  // Neighbouring elements (same Philox block and across blocks) are uncorrelated.
  torch::Tensor x0 = z.slice(0, 0, -1), x1 = z.slice(0, 1);
  EXPECT_NEAR((x0 * x1).mean().item<double>(), 0.0, 5.0 / std::sqrt(n));
}

TEST(GeneratorsNoise, ReferenceStateRestoresTheStream) {
  auto a = make_noise_source("reference", 5);
  EXPECT_TRUE(a->sequential());
  a->initial(0, 2, {3, 4, 4});
  auto saved = a->state();
  torch::Tensor next = a->step(0, 0, 2, {3, 4, 4}, false);
  auto b = make_noise_source("reference", 5);
  b->restore(saved);
  EXPECT_TRUE(torch::equal(b->step(0, 0, 2, {3, 4, 4}, false), next));
  torch::manual_seed(5);
  EXPECT_TRUE(
      torch::equal(make_noise_source("reference", 5)->initial(0, 2, {3, 4, 4}), torch::randn({2, 3, 4, 4})));
}

TEST(GeneratorsNoise, InitialNoiseOverrideChecksShapes) {
  auto src = with_initial_noise(make_noise_source("per-image", 1), torch::ones({4, 3, 8, 8}), "x.npy");
  EXPECT_TRUE(torch::equal(src->initial(1, 2, {3, 8, 8}), torch::ones({2, 3, 8, 8})));
  EXPECT_THROW(src->initial(3, 2, {3, 8, 8}), Error);
  EXPECT_THROW(src->initial(0, 1, {3, 16, 16}), Error);
  EXPECT_THROW(with_initial_noise(make_noise_source("per-image", 1), torch::full({1, 3, 2, 2}, NAN), "n.npy"),
               Error);
  EXPECT_THROW(make_noise_source("gaussian", 1), Error);
}

TEST(GeneratorsTimesteps, SequencesAsDdim) {
  auto u30 = timestep_sequence("uniform", 30, 1000);
  EXPECT_EQ(u30.size(), 31u);  // skip 33: ceil(1000 / 33) values
  EXPECT_EQ(u30.back(), 990);
  auto q100 = timestep_sequence("quad", 100, 1000);
  EXPECT_EQ(q100.size(), 100u);
  EXPECT_EQ(std::vector<int64_t>(q100.begin(), q100.begin() + 9),
            (std::vector<int64_t>{0, 0, 0, 0, 1, 2, 2, 3, 5}));
  EXPECT_EQ(q100.back(), 800);
  auto pairs = timestep_pairs({0, 10, 20});
  EXPECT_EQ(pairs, (std::vector<std::pair<int64_t, int64_t>>{{20, 10}, {10, 0}, {0, -1}}));
  EXPECT_EQ(timestep_sequence("quad", 1, 1000), std::vector<int64_t>{0});
  EXPECT_THROW(timestep_sequence("uniform", 0, 1000), Error);
  EXPECT_THROW(timestep_sequence("uniform", 1001, 1000), Error);
  EXPECT_THROW(timestep_sequence("cosine", 10, 1000), Error);
}

// Image i's network output must not depend on which other images share its batch: the sampler's
// view of the UNet evaluates fixed-size micro-batches (unet_runner.h).
TEST(GeneratorsUnet, MicroBatchedEvaluationIsBatchInvariant) {
  torch::manual_seed(3);
  DdimUNet model(tiny_config());
  UNetRunOptions ro;
  ro.micro_batch = 4;
  EpsModel eps = make_unet_eps(model, ro);
  torch::NoGradGuard no_grad;
  torch::Tensor x = torch::randn({7, 3, 16, 16});
  torch::Tensor t = torch::full({7}, 321.0f);
  torch::Tensor all = eps(x, t, 0);
  ASSERT_EQ(all.sizes(), x.sizes());
  for (int64_t i = 0; i < 7; ++i)
    EXPECT_TRUE(torch::equal(eps(x.slice(0, i, i + 1), t.slice(0, i, i + 1), 0), all.slice(0, i, i + 1)))
        << "image " << i << " differs between batch 7 and batch 1";
  EXPECT_TRUE(torch::equal(eps(x.slice(0, 2, 5), t.slice(0, 2, 5), 0), all.slice(0, 2, 5)));
  // And it is the model's output up to float32 summation order.
  EXPECT_LE((model->forward(x, t) - all).abs().max().item<double>(), 1e-4);
}

TEST(GeneratorsConfig, PresetsAndYaml) {
  ModelConfig c = model_preset("cifar10");
  EXPECT_EQ(c.unet.ch_mult, (std::vector<int64_t>{1, 2, 2, 2}));
  EXPECT_EQ(model_preset("lsun_church").unet.resolution, 256);
  EXPECT_THROW(model_preset("imagenet"), Error);
  test::TempDir dir;
  const std::string path = dir.path() + "/small.yml";
  std::ofstream(path)
      << "data:\n  dataset: \"CIFAR10\"\n  image_size: 16\n  channels: 3\n"
         "model:\n  type: \"simple\"\n  in_channels: 3\n  out_ch: 3\n  ch: 32\n  ch_mult: [1, 2]\n"
         "  num_res_blocks: 1\n  attn_resolutions: [8, ]\n  dropout: 0.0\n  var_type: fixedsmall\n"
         "  ema_rate: 0.999\n  ema: True\n  resamp_with_conv: True\n"
         "diffusion:\n  beta_schedule: quad\n  beta_start: 0.0001\n  beta_end: 0.02\n"
         "  num_diffusion_timesteps: 500\n";
  ModelConfig y = resolve_model_config(path);
  EXPECT_EQ(y.unet.ch, 32);
  EXPECT_EQ(y.unet.attn_resolutions, std::vector<int64_t>{8});
  EXPECT_EQ(y.diffusion.beta_schedule, "quad");
  EXPECT_EQ(y.diffusion.num_timesteps, 500);
  EXPECT_EQ(y.ema_rate, 0.999);

  const std::string bad = dir.path() + "/bad.yml";
  std::ofstream(bad) << "data:\n  image_size: 16\nmodel:\n  ch: 32\n";
  try {
    read_ddim_yaml(bad);
    FAIL() << "missing keys accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.yml"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("diffusion"), std::string::npos) << e.what();
  }
  const std::string odd = dir.path() + "/odd.yml";
  std::ofstream(odd)
      << "data:\n  image_size: 20\nmodel:\n  in_channels: 3\n  out_ch: 3\n  ch: 48\n  ch_mult: [1, 2]\n"
         "  num_res_blocks: 1\n  attn_resolutions: []\n  resamp_with_conv: true\n"
         "diffusion:\n  beta_schedule: linear\n  beta_start: 0.0001\n  beta_end: 0.02\n"
         "  num_diffusion_timesteps: 1000\n";
  EXPECT_THROW(read_ddim_yaml(odd), Error);  // ch 48 is not a multiple of 32
  EXPECT_THROW(read_ddim_yaml(dir.path() + "/missing.yml"), Error);
}

// Legacy torch.save files holding tensor dicts, built opcode by opcode (pickle_builder.h): a state
// dict, or ddim's training checkpoint [model (module. prefix), optimizer, epoch, step, ema].
class LegacyWriter {
 public:
  using State = std::map<std::string, torch::Tensor>;
  void dict(const State& state, const std::string& prefix) {
    main_.empty_dict().mark();
    for (const auto& [k, v] : state) {
      const std::string key = std::to_string(storages_.size());
      torch::Tensor c = v.contiguous().to(torch::kFloat32);
      storages_.emplace_back(key, std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel()));
      std::vector<int64_t> strides(c.strides().begin(), c.strides().end());
      main_.str(prefix + k).global("torch._utils", "_rebuild_tensor_v2").mark();
      main_.mark()
          .str("storage")
          .global("torch", "FloatStorage")
          .str(key)
          .str("cpu")
          .integer(c.numel())
          .none();
      main_.tuple().binpersid().integer(0).int_tuple(c.sizes().vec()).int_tuple(strides).boolean(false);
      main_.global("collections", "OrderedDict").empty_tuple().reduce().tuple().reduce();
    }
    main_.setitems();
  }
  test::PickleBuilder& pickle() { return main_; }
  void write(const std::string& path) {
    std::string out = test::PickleBuilder()
                          .proto()
                          .long1(std::string("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10))
                          .stop()
                          .bytes();
    out += test::PickleBuilder().proto().integer(1001).stop().bytes();
    out += test::PickleBuilder()
               .proto()
               .empty_dict()
               .mark()
               .str("protocol_version")
               .integer(1001)
               .str("little_endian")
               .boolean(true)
               .setitems()
               .stop()
               .bytes();
    main_.stop();
    out += main_.bytes();
    test::PickleBuilder keys;
    keys.proto().empty_list().mark();
    for (const auto& s : storages_) keys.str(s.first);
    keys.appends().stop();
    out += keys.bytes();
    for (const auto& s : storages_) {
      int64_t n = static_cast<int64_t>(s.second.size());
      out.append(reinterpret_cast<const char*>(&n), 8);
      out.append(reinterpret_cast<const char*>(s.second.data()), s.second.size() * sizeof(float));
    }
    std::ofstream(path, std::ios::binary) << out;
  }

 private:
  test::PickleBuilder main_ = [] {
    test::PickleBuilder b;
    b.proto();
    return b;
  }();
  std::vector<std::pair<std::string, std::vector<float>>> storages_;
};

std::map<std::string, torch::Tensor> state_of(DdimUNet& m, float add) {
  std::map<std::string, torch::Tensor> s;
  for (const auto& p : m->named_parameters()) s[p.key()] = p.value().detach().clone() + add;
  return s;
}

void write_state(const std::map<std::string, torch::Tensor>& state, const std::string& path) {
  LegacyWriter w;
  w.dict(state, "");
  w.write(path);
}

TEST(GeneratorsWeights, LayoutsAndErrors) {
  test::TempDir dir;
  torch::manual_seed(1);
  DdimUNet src(tiny_config());
  // safetensors round trip
  const std::string st = dir.path() + "/w.safetensors";
  save_unet_weights(*src, st, {{"format", "pt"}});
  DdimUNet dst(tiny_config());
  UNetWeightsInfo info = load_unet_weights(*dst, st);
  EXPECT_EQ(info.format, "safetensors");
  EXPECT_EQ(info.layout, "state dict");
  EXPECT_EQ(info.sha256.size(), 64u);
  for (const auto& p : src->named_parameters())
    EXPECT_TRUE(torch::equal(p.value(), dst->named_parameters()[p.key()]));

  // ddim training checkpoint: list with module.-prefixed model state and an EMA entry
  auto raw = state_of(src, 0.0f), ema = state_of(src, 1.0f);
  LegacyWriter w;
  w.pickle().empty_list().mark();
  w.dict(raw, "module.");
  w.pickle().empty_dict().integer(3).integer(12345);  // optimizer, epoch, step
  w.dict(ema, "");                                    // EMAHelper.state_dict()
  w.pickle().appends();
  const std::string ck = dir.path() + "/ckpt.pth";
  w.write(ck);
  DdimUNet from_ck(tiny_config());
  info = load_unet_weights(*from_ck, ck);
  EXPECT_TRUE(info.ema_applied);
  EXPECT_EQ(info.training_step, 12345);
  EXPECT_NE(info.layout.find("ddim training checkpoint"), std::string::npos);
  for (const auto& [k, v] : ema) EXPECT_TRUE(torch::equal(from_ck->named_parameters()[k], v)) << k;
  UNetWeightsOptions raw_opts;
  raw_opts.apply_ema = false;
  info = load_unet_weights(*from_ck, ck, raw_opts);
  EXPECT_FALSE(info.ema_applied);
  for (const auto& [k, v] : raw) EXPECT_TRUE(torch::equal(from_ck->named_parameters()[k], v)) << k;

  // Wrong model configuration: shape errors name the key and both shapes.
  UNetConfig other = tiny_config();
  other.ch = 64;
  DdimUNet wrong(other);
  try {
    load_unet_weights(*wrong, st);
    FAIL();
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("w.safetensors"), std::string::npos) << m;
    EXPECT_NE(m.find("conv_in.weight: file [32, 3, 3, 3] vs model [64, 3, 3, 3]"), std::string::npos) << m;
  }
  // Missing keys.
  auto partial = raw;
  partial.erase("conv_out.bias");
  const std::string part = dir.path() + "/partial.pth";
  write_state(partial, part);
  try {
    load_unet_weights(*dst, part);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("1 missing keys: conv_out.bias"), std::string::npos) << e.what();
  }
  // NaN weights are refused.
  auto nan = raw;
  nan["conv_in.bias"][0] = NAN;
  const std::string nanp = dir.path() + "/nan.pth";
  write_state(nan, nanp);
  EXPECT_THROW(load_unet_weights(*dst, nanp), Error);
  // Truncated file: the error names the file.
  std::ifstream in(st, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  const std::string trunc = dir.path() + "/trunc.safetensors";
  std::ofstream(trunc, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  try {
    load_unet_weights(*dst, trunc);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("trunc.safetensors"), std::string::npos) << e.what();
  }
  // A file named like a known public checkpoint but with other contents.
  const std::string fake = dir.path() + "/model-790000.ckpt";
  std::filesystem::copy_file(st, fake);
  try {
    load_unet_weights(*dst, fake);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("1fa350b952534ae442b1d5235cce5cd3"), std::string::npos) << e.what();
  }
  UNetWeightsOptions allow;
  allow.allow_unknown = true;
  EXPECT_NO_THROW(load_unet_weights(*dst, fake, allow));
}

TEST(GeneratorsSamples, ConversionAndNaN) {
  torch::Tensor x =
      torch::tensor({-2.0f, -1.0f, 0.0f, 0.5f, 1.0f, 3.0f}).view({1, 1, 1, 6}).expand({2, 3, 1, 6});
  torch::Tensor u = samples_to_uint8(x.contiguous());
  EXPECT_EQ(u.sizes(), (std::vector<int64_t>{2, 1, 6, 3}));
  // (x+1)/2 -> 0, 0, 0.5, 0.75, 1, 1 -> floor(v*255 + 0.5) = 0, 0, 128, 191, 255, 255
  std::vector<int> expect = {0, 0, 128, 191, 255, 255};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(u[1][0][i][2].item<int>(), expect[i]);
  auto images = samples_to_images(x.contiguous(), 10);
  ASSERT_EQ(images.size(), 2u);
  EXPECT_EQ(images[0].width, 6);
  EXPECT_EQ(images[0].pixels[3 * 2], 128);
  torch::Tensor bad = torch::zeros({3, 3, 2, 2});
  bad[2][1][0][0] = NAN;
  try {
    samples_to_uint8(bad, 100);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sample 102"), std::string::npos) << e.what();
  }
}

TEST(GeneratorsSamplers, Validation) {
  SamplerSpec s;
  s.sampler = "ddpm";
  s.eta = 1.0;
  EXPECT_THROW(validate(s), Error);  // eta is a DDIM parameter
  s.sampler = "plms";
  EXPECT_THROW(validate(s), Error);
  s.sampler = "ddim";
  s.eta = -1;
  EXPECT_THROW(validate(s), Error);
}

}  // namespace
}  // namespace dmeval
