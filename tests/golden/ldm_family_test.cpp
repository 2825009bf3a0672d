// golden_ldm_family: the latent-diffusion family as `dmeval run` uses it — LdmModel loaded through the
// model registry from the golden set's configs and checkpoints ($DMEVAL_GOLDEN_DIR/ldm: config.json,
// model.ckpt, decoder/first_stage.ckpt), its network with class labels and classifier-free guidance in
// micro-batches, its own samplers, decode and uint8 conversion — replaying every sampler run of
// sampling/ (settings from run_info.json, the stored noise and class labels injected). Tolerances as
// golden_ldm_sampling (spec ldm.md §12): trajectories within 1e-4 of max |x|, codebook indices exact
// except near-ties (1e-5 relative), uint8 values off by one only within 1e-4 of a level boundary.
// And the bad inputs the family refuses, each naming the file or the model and the problem.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <fstream>

#include "core/checkpoint.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "generators/ldm/ldm_model.h"
#include "generators/noise_source.h"
#include "tests/golden/ldm_golden.h"
#include "tests/support/temp_dir.h"

namespace dmeval {
namespace {

using json = nlohmann::json;
using test::golden_path;
using test::max_abs_diff;

ModelSpec golden_spec(const std::string& model) {
  ModelSpec s;
  s.model = golden_path("ldm/" + model + "/config.json");
  s.checkpoint = golden_path("ldm/" + model + "/model.ckpt");
  s.first_stage = golden_path("ldm/decoder/first_stage.ckpt");
  return s;
}

std::shared_ptr<LdmModel> load_golden(const std::string& model) {
  std::shared_ptr<DiffusionModel> m = load_diffusion_model(golden_spec(model));
  EXPECT_EQ(m->family(), "ldm");
  auto l = std::dynamic_pointer_cast<LdmModel>(m);
  EXPECT_TRUE(l);
  return l;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(GoldenLdmFamily, EveryRunThroughTheFamily) {
  DMEVAL_REQUIRE_GOLDEN();
  const json info = json::parse(test::read_text(golden_path("ldm/run_info.json")));
  const torch::Tensor x_T = test::ldm_golden_array("sampling/x_T.npy");
  ASSERT_FALSE(info.at("runs").empty());
  for (auto it = info.at("runs").begin(); it != info.at("runs").end(); ++it) {
    const std::string run = it.key();
    const json& r = it.value();
    SCOPED_TRACE(run);
    const bool conditional = r.at("conditional").get<bool>();
    std::shared_ptr<LdmModel> model = load_golden(conditional ? "ldm_cond" : "ldm_uncond");
    ASSERT_TRUE(model);
    EXPECT_EQ(model->sample_shape(), std::vector<int64_t>(x_T.sizes().begin() + 1, x_T.sizes().end()));
    NpzReader z = NpzReader::open(golden_path("ldm/sampling/" + run + ".npz"));

    SamplerSpec spec;
    spec.sampler = r.at("sampler") == "PLMSSampler" ? "plms" : "ddim";
    spec.skip_type = "uniform";
    spec.steps = r.at("S").get<int64_t>();
    spec.eta = r.at("eta").get<double>();
    model->validate_sampler(spec);
    std::vector<int64_t> want_t = r.at("ddim_timesteps").get<std::vector<int64_t>>();
    std::reverse(want_t.begin(), want_t.end());
    EXPECT_EQ(model->sampler_timesteps(spec), want_t);

    Conditioning c;
    if (conditional) {
      c.class_labels = to_torch(z.read("class_label"));
      c.guidance = r.at("guidance_scale").get<double>();
    }
    UNetRunOptions ro;
    ro.micro_batch = x_T.size(0);  // the reference's batch
    EpsModel eps = model->eps(ro, c);
    const torch::Tensor noise = to_torch(z.read("noise"));
    std::vector<torch::Tensor> draws;
    for (int64_t k = 0; k < noise.size(0); ++k) draws.push_back(noise[k]);
    std::unique_ptr<NoiseSource> ns = recorded_noise(x_T, draws);
    std::vector<StepRecord> steps;
    StepObserver obs = [&](const StepRecord& s) { steps.push_back(s); };
    torch::Tensor final =
        model->sample(spec, eps, ns->initial(0, x_T.size(0), model->sample_shape()), *ns, 0, &obs);

    const torch::Tensor x_inter = to_torch(z.read("x_inter")), pred_x0 = to_torch(z.read("pred_x0"));
    const double scale = x_inter.abs().max().item<double>();
    ASSERT_EQ(static_cast<int64_t>(steps.size()), pred_x0.size(0));
    for (size_t k = 0; k < steps.size(); ++k) {
      EXPECT_EQ(steps[k].t, want_t[k]);
      EXPECT_LE(max_abs_diff(steps[k].x_next, x_inter[static_cast<int64_t>(k) + 1]), 1e-4 * scale)
          << "x " << k;
    }
    const torch::Tensor ref_final = to_torch(z.read("final"));
    EXPECT_LE(max_abs_diff(final, ref_final), 1e-4 * scale);

    // The family's decode and uint8 conversion (custom_to_np, its default) of the stored final.
    const torch::Tensor images = model->decode(ref_final);
    VqFirstStage& fs = model->first_stage();
    torch::NoGradGuard no_grad;
    const torch::Tensor idx = fs->quantize(ref_final).first;
    const test::CodeCheck ic = test::compare_codebook_indices(
        fs, ref_final, idx, to_torch(z.read("final_codebook_indices")).to(torch::kLong));
    EXPECT_EQ(ic.differ_off_tie, 0) << test::describe(ic, 1);
    if (ic.differ == 0) {
      const test::CodeCheck u =
          test::compare_ldm_uint8(model->to_uint8(images, 0), to_torch(z.read("uint8_np")), images, "np");
      EXPECT_EQ(u.differ_off_tie, 0) << test::describe(u, 1);
      EXPECT_LE(u.max_step, 1);
    }
    std::printf("%s through the family: max |x - x_ref| %.3g of max |x| %.3g\n", run.c_str(),
                max_abs_diff(final, ref_final), scale);
  }
}

// Micro-batches: every image's ε is the same whatever batch it is sampled in (the padding rows dropped).
TEST(GoldenLdmFamily, GuidedEpsDoesNotDependOnTheBatch) {
  DMEVAL_REQUIRE_GOLDEN();
  std::shared_ptr<LdmModel> model = load_golden("ldm_cond");
  const torch::Tensor x = test::ldm_golden_array("ldm_cond/x.npy");
  const torch::Tensor t = test::ldm_golden_array("ldm_cond/t.npy").to(torch::kFloat32);
  Conditioning c;
  c.class_labels = torch::full({x.size(0)}, model->num_classes() - 1, torch::kLong);
  c.guidance = 2.0;
  UNetRunOptions a, b;
  a.micro_batch = 2;
  b.micro_batch = 2;
  const torch::Tensor whole = model->eps(a, c)(x, t, 0);
  const torch::Tensor first = model->eps(b, c.rows(torch::arange(1)))(x.slice(0, 0, 1), t.slice(0, 0, 1), 0);
  EXPECT_TRUE(torch::equal(whole.slice(0, 0, 1), first));
}

TEST(GoldenLdmFamily, BadInputIsRefusedNamingTheProblem) {
  DMEVAL_REQUIRE_GOLDEN();
  test::TempDir dir;
  // A checkpoint of another config: the first mismatching key and both shapes.
  ModelSpec other = golden_spec("ldm_uncond");
  other.checkpoint = golden_path("ldm/ldm_cond/model.ckpt");
  const std::string e1 = error_of([&] { load_diffusion_model(other); });
  EXPECT_NE(e1.find(other.checkpoint), std::string::npos) << e1;
  EXPECT_NE(e1.find("model.diffusion_model."), std::string::npos) << e1;
  EXPECT_NE(e1.find("another config"), std::string::npos) << e1;

  // A class-conditional model without class labels; guidance on an unconditional one.
  std::shared_ptr<LdmModel> cond = load_golden("ldm_cond"), uncond = load_golden("ldm_uncond");
  const std::string e2 = error_of([&] { cond->eps({}, {}); });
  EXPECT_NE(e2.find("class-conditional"), std::string::npos) << e2;
  Conditioning g;
  g.guidance = 3.0;
  const std::string e3 = error_of([&] { uncond->eps({}, g); });
  EXPECT_NE(e3.find("unconditional"), std::string::npos) << e3;
  Conditioning out_of_range;
  out_of_range.class_labels = torch::full({1}, cond->num_classes() + 1, torch::kLong);
  EXPECT_NE(error_of([&] { cond->eps({}, out_of_range); }).find("outside"), std::string::npos);

  // A first stage whose latent does not match the UNet's channels.
  json cfg = test::ldm_golden_config("ldm_uncond");
  json& fs = cfg.contains("model") ? cfg["model"]["params"]["first_stage_config"]["params"]
                                   : cfg["params"]["first_stage_config"]["params"];
  fs["embed_dim"] = fs["embed_dim"].get<int64_t>() + 1;
  std::ofstream(dir.file("bad.json")) << cfg.dump();
  const std::string e4 = error_of([&] { resolve_ldm_config(dir.file("bad.json")); });
  EXPECT_NE(e4.find("bad.json"), std::string::npos) << e4;
  EXPECT_NE(e4.find("channels"), std::string::npos) << e4;

  // Samplers and conversions the family does not have.
  SamplerSpec quad;
  quad.skip_type = "quad";
  EXPECT_THROW(cond->validate_sampler(quad), Error);
  SamplerSpec ddpm;
  ddpm.sampler = "ddpm";
  EXPECT_THROW(cond->validate_sampler(ddpm), Error);
  ModelSpec conv = golden_spec("ldm_uncond");
  conv.uint8_conversion = "round";
  EXPECT_THROW(load_diffusion_model(conv), Error);
}

// EMA: a config that samples with EMA weights takes every model_ema.* copy (LitEma's dot-free names)
// and refuses a file without them unless --no-ema.
TEST(GoldenLdmFamily, EmaWeightsReplaceTheRawOnes) {
  DMEVAL_REQUIRE_GOLDEN();
  test::TempDir dir;
  std::shared_ptr<LdmModel> raw = load_golden("ldm_uncond");
  std::vector<std::pair<std::string, TensorData>> tensors;
  for (const auto& p : raw->unet()->named_parameters(true)) {
    tensors.emplace_back("model.diffusion_model." + p.key(), from_torch(p.value()));
    tensors.emplace_back(ldm_ema_key(p.key()), from_torch(p.value() * 0.5));
  }
  for (const auto& p : raw->first_stage()->named_parameters(true))
    tensors.emplace_back("first_stage_model." + p.key(), from_torch(p.value()));
  write_safetensors(dir.file("ema.safetensors"), tensors);
  json cfg = test::ldm_golden_config("ldm_uncond");
  (cfg.contains("model") ? cfg["model"]["params"] : cfg["params"])["use_ema"] = true;
  std::ofstream(dir.file("ema.json")) << cfg.dump();

  ModelSpec s;
  s.model = dir.file("ema.json");
  s.checkpoint = dir.file("ema.safetensors");
  auto ema = std::dynamic_pointer_cast<LdmModel>(load_diffusion_model(s));
  ASSERT_TRUE(ema);
  EXPECT_TRUE(ema->weights().ema_applied);
  auto raw_params = raw->unet()->named_parameters(true);
  for (const auto& p : ema->unet()->named_parameters(true))
    ASSERT_TRUE(torch::equal(p.value(), raw_params[p.key()] * 0.5)) << p.key();
  s.no_ema = true;
  auto no_ema = std::dynamic_pointer_cast<LdmModel>(load_diffusion_model(s));
  EXPECT_FALSE(no_ema->weights().ema_applied);
  for (const auto& p : no_ema->unet()->named_parameters(true))
    ASSERT_TRUE(torch::equal(p.value(), raw_params[p.key()])) << p.key();

  // The golden checkpoint has no model_ema.*: refused with the way out named.
  ModelSpec missing = golden_spec("ldm_uncond");
  missing.model = dir.file("ema.json");
  const std::string e = error_of([&] { load_diffusion_model(missing); });
  EXPECT_NE(e.find("model_ema"), std::string::npos) << e;
  EXPECT_NE(e.find("--no-ema"), std::string::npos) << e;
}

// The family's own weights file (training checkpoints, exports): every part under its checkpoint
// prefix, read back by --checkpoint with the same ε, and by load_weights.
TEST(GoldenLdmFamily, SavedWeightsLoadBack) {
  DMEVAL_REQUIRE_GOLDEN();
  test::TempDir dir;
  std::shared_ptr<LdmModel> model = load_golden("ldm_cond");
  model->save_weights(dir.file("saved.safetensors"), {{"note", "test"}});
  ModelSpec s;
  s.model = golden_path("ldm/ldm_cond/config.json");
  s.checkpoint = dir.file("saved.safetensors");
  std::shared_ptr<DiffusionModel> again = load_diffusion_model(s);
  const torch::Tensor x = test::ldm_golden_array("ldm_cond/x.npy");
  const torch::Tensor t = test::ldm_golden_array("ldm_cond/t.npy").to(torch::kFloat32);
  Conditioning c;
  c.class_labels = test::ldm_golden_array("ldm_cond/class_label.npy");
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(model->forward(x, t, c), again->forward(x, t, c)));
  EXPECT_TRUE(torch::equal(model->decode(x), again->decode(x)));
  std::shared_ptr<LdmModel> other = load_golden("ldm_cond");
  {
    for (auto& p : other->unet()->parameters()) p.mul_(0.5);
  }
  other->load_weights(dir.file("saved.safetensors"));
  EXPECT_TRUE(torch::equal(model->forward(x, t, c), other->forward(x, t, c)));
}

}  // namespace
}  // namespace dmeval
