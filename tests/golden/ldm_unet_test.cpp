// golden_ldm_unet: CompVis/latent-diffusion's UNetModel and ClassEmbedder on the golden set's small
// random-weight models ($DMEVAL_GOLDEN_DIR/ldm/ldm_uncond, ldm_cond; spec ldm.md §1, §3, §12). Built
// from each model's config.json, loaded from its Lightning model.ckpt; every input and expected value
// comes from the folder. Tolerances (spec §12, "suggested port acceptance"): UNet ε max |Δ| ≤ 1e-4;
// the class embedder's context is a table lookup, exact. The per-block intermediates have no rule of
// their own in the spec: they are held to the same 1e-4 relative to their magnitude (max(1, max|ref|)),
// which the ε rule implies for values of that size.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "generators/ldm/ldm_config.h"
#include "generators/ldm/ldm_unet.h"
#include "tests/golden/ldm_golden.h"

namespace dmeval {
namespace {

using json = nlohmann::json;
using test::golden_path;
using test::ldm_golden_array;
using test::max_abs_diff;

// `model`: "ldm_uncond" or "ldm_cond".
void check_model(const std::string& model) {
  SCOPED_TRACE(model);
  const LdmConfig config = ldm_config_from_json(test::ldm_golden_config(model), model + "/config.json");
  LdmUNet unet(config.unet);
  unet->eval();
  const std::string ckpt = golden_path("ldm/" + model + "/model.ckpt");
  load_ldm_weights(*unet, ckpt, "model.diffusion_model.");

  // The state dict's names, order and shapes are the reference's.
  const json keys = json::parse(test::read_text(golden_path("ldm/" + model + "/state_dict_keys.json")));
  std::vector<std::pair<std::string, std::vector<int64_t>>> want;
  for (const auto& k : keys) {
    const std::string name = k.at(0);
    if (name.rfind("model.diffusion_model.", 0) == 0)
      want.emplace_back(name.substr(22), k.at(1).get<std::vector<int64_t>>());
  }
  auto params_list = unet->named_parameters(true);
  ASSERT_EQ(params_list.size(), want.size());
  size_t i = 0;
  for (const auto& p : params_list) {
    EXPECT_EQ(p.key(), want[i].first) << "position " << i;
    EXPECT_EQ(p.value().sizes().vec(), want[i].second) << p.key();
    ++i;
  }

  // The conditioning: the class embedder's one-token context.
  torch::Tensor context;
  if (config.n_classes > 0) {
    ClassEmbedder embedder(config.n_classes, config.class_embed_dim);
    load_ldm_weights(*embedder, ckpt, "cond_stage_model.");
    context = embedder(ldm_golden_array(model + "/class_label.npy"));
    EXPECT_TRUE(torch::equal(context, ldm_golden_array(model + "/context.npy")));
  }

  torch::NoGradGuard no_grad;
  const torch::Tensor x = ldm_golden_array(model + "/x.npy"), t = ldm_golden_array(model + "/t.npy");
  std::vector<std::pair<std::string, torch::Tensor>> trace;
  torch::Tensor eps = unet->forward_traced(x, t, context, &trace);
  const torch::Tensor eps_ref = ldm_golden_array(model + "/eps.npy");
  ASSERT_EQ(eps.sizes(), eps_ref.sizes());
  EXPECT_LE(max_abs_diff(eps, eps_ref), 1e-4);
  std::printf("%s: max |eps - eps_ref| %.3g (max |eps_ref| %.3g)\n", model.c_str(),
              max_abs_diff(eps, eps_ref), eps_ref.abs().max().item<double>());

  // Intermediates of batch element 0.
  NpzReader z = NpzReader::open(golden_path("ldm/" + model + "/intermediates.npz"));
  size_t checked = 0;
  for (const auto& [name, value] : trace) {
    if (!z.contains(name)) continue;
    SCOPED_TRACE(name);
    const torch::Tensor ref = to_torch(z.read(name));
    const torch::Tensor got = value.slice(0, 0, 1);
    ASSERT_EQ(got.sizes(), ref.sizes());
    const double scale = std::max(1.0, ref.abs().max().item<double>());
    EXPECT_LE(max_abs_diff(got, ref), 1e-4 * scale);
    ++checked;
  }
  EXPECT_EQ(checked, z.names().size()) << "every intermediate of the file has a counterpart";
}

TEST(GoldenLdmUnet, UnconditionalAttentionBlockModel) {
  DMEVAL_REQUIRE_GOLDEN();
  check_model("ldm_uncond");
}

TEST(GoldenLdmUnet, ClassConditionalSpatialTransformerModel) {
  DMEVAL_REQUIRE_GOLDEN();
  check_model("ldm_cond");
}

TEST(GoldenLdmUnet, AnotherConfigsCheckpointIsRefusedNamingFileAndKey) {
  DMEVAL_REQUIRE_GOLDEN();
  // The conditional model's weights into the unconditional model's architecture.
  LdmUNet unet(ldm_config_from_json(test::ldm_golden_config("ldm_uncond"), "ldm_uncond/config.json").unet);
  try {
    load_ldm_weights(*unet, golden_path("ldm/ldm_cond/model.ckpt"), "model.diffusion_model.");
    ADD_FAILURE() << "loaded another config's weights";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("model.ckpt"), std::string::npos) << what;
    EXPECT_NE(what.find("model.diffusion_model."), std::string::npos) << what;
    // the first key of this architecture the file lacks, or a shape it has otherwise
    EXPECT_TRUE(what.find("is missing") != std::string::npos || what.find("has shape") != std::string::npos)
        << what;
  }
}

}  // namespace
}  // namespace dmeval
