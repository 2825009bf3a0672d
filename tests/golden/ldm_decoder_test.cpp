// golden_ldm_decoder: latent-diffusion's VQ first stage decode path and the three uint8 conversions
// on the golden set's small first stage ($DMEVAL_GOLDEN_DIR/ldm/decoder; spec ldm.md §2, §8, §12).
// Built from ldm_uncond/config.json's first_stage_config, loaded from decoder/first_stage.ckpt.
// Tolerances (spec §12): codebook indices exact except where the two best distances are within 1e-5
// relative; z_q, post_quant_conv and decoded images max |Δ| ≤ 1e-4 given the same indices. The uint8
// conversions truncate: a value may differ by one level only where the reference's float image lies
// within that 1e-4 of a level boundary (the decoded-image rule carried through the conversion).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/npy.h"
#include "core/torch_bridge.h"
#include "generators/ldm/ldm_unet.h"
#include "generators/ldm/vq_decoder.h"
#include "tests/support/golden.h"

namespace dmeval {
namespace {

using json = nlohmann::json;
using test::golden_path;
using test::read_text;

torch::Tensor npy(const std::string& relative) {
  return to_torch(read_npy_file(golden_path(relative)));
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

VqFirstStage load_first_stage() {
  const json config = json::parse(read_text(golden_path("ldm/ldm_uncond/config.json")));
  VqFirstStage fs(vq_decoder_config_from_json(config.at("params").at("first_stage_config").at("params"),
                                              "ldm_uncond/config.json"));
  fs->eval();
  load_ldm_weights(*fs, golden_path("ldm/decoder/first_stage.ckpt"), "first_stage_model.",
                   {"encoder.", "quant_conv.", "loss."});
  return fs;
}

TEST(GoldenLdmDecoder, StateDictIsTheReferences) {
  DMEVAL_REQUIRE_GOLDEN();
  VqFirstStage fs = load_first_stage();
  std::map<std::string, std::vector<int64_t>> want;
  for (const auto& k : json::parse(read_text(golden_path("ldm/decoder/state_dict_keys.json"))))
    want[k.at(0).get<std::string>().substr(std::string("first_stage_model.").size())] =
        k.at(1).get<std::vector<int64_t>>();
  auto params = fs->named_parameters(true);
  EXPECT_EQ(params.size(), want.size());
  for (const auto& p : params) {
    ASSERT_TRUE(want.count(p.key())) << p.key();
    EXPECT_EQ(p.value().sizes().vec(), want[p.key()]) << p.key();
  }
}

TEST(GoldenLdmDecoder, CodebookLookupAndDecode) {
  DMEVAL_REQUIRE_GOLDEN();
  VqFirstStage fs = load_first_stage();
  torch::NoGradGuard no_grad;
  const torch::Tensor z = npy("ldm/decoder/z.npy");
  VqDecodeResult r = fs->decode(z);

  // Indices: exact except near-ties of the two best distances (1e-5 relative).
  const torch::Tensor idx_ref = npy("ldm/decoder/codebook_indices.npy").to(torch::kLong);
  ASSERT_EQ(r.indices.sizes(), idx_ref.sizes());
  const torch::Tensor e = fs->codebook->weight;
  torch::Tensor flat = z.permute({0, 2, 3, 1}).reshape({-1, z.size(1)});
  torch::Tensor d = (flat.unsqueeze(1) - e.unsqueeze(0)).square().sum(2).to(torch::kFloat64);
  torch::Tensor best2 = std::get<0>(d.topk(2, 1, /*largest=*/false));
  torch::Tensor near_tie = (best2.select(1, 1) - best2.select(1, 0)) <= 1e-5 * best2.select(1, 1).abs();
  torch::Tensor differ = r.indices.reshape({-1}) != idx_ref.reshape({-1});
  EXPECT_EQ((differ & ~near_tie).sum().item<int64_t>(), 0);
  const bool same_indices = differ.sum().item<int64_t>() == 0;

  std::printf("codebook indices: %lld of %lld differ from the reference; max |image - ref| %.3g\n",
              static_cast<long long>(differ.sum().item<int64_t>()), static_cast<long long>(differ.numel()),
              max_abs_diff(r.images, npy("ldm/decoder/image_quantized.npy")));
  if (same_indices) {
    EXPECT_LE(max_abs_diff(r.quantized, npy("ldm/decoder/z_quantized.npy")), 1e-4);
    EXPECT_LE(max_abs_diff(fs->post_quant(r.quantized), npy("ldm/decoder/post_quant_conv_out.npy")), 1e-4);
    EXPECT_LE(max_abs_diff(r.images, npy("ldm/decoder/image_quantized.npy")), 1e-4);
  }
  // Without the codebook step: the decoder alone.
  EXPECT_LE(max_abs_diff(fs->decode(z, true).images, npy("ldm/decoder/image_not_quantized.npy")), 1e-4);
}

TEST(GoldenLdmDecoder, Uint8ConversionsTruncateAsTheScripts) {
  DMEVAL_REQUIRE_GOLDEN();
  // From the reference's own float image, so that only the conversion is under test here.
  const torch::Tensor img = npy("ldm/decoder/image_quantized.npy");
  const std::map<std::string, std::string> files = {
      {"png", "uint8_png.npy"}, {"np", "uint8_np.npy"}, {"ptqd", "uint8_ptqd.npy"}};
  for (const std::string& conv : ldm_uint8_conversions()) {
    SCOPED_TRACE(conv);
    const torch::Tensor got = ldm_images_to_uint8(img, conv), want = npy("ldm/decoder/" + files.at(conv));
    ASSERT_EQ(got.sizes(), want.sizes());
    // Where a value differs, the float image must sit within 1e-4 (in [-1, 1] units) of a level boundary.
    const torch::Tensor pre = conv == "ptqd" ? torch::clamp((img + 1) / 2, 0, 1) : img;
    torch::Tensor level = ((pre.to(torch::kFloat64) + 1) * 127.5).permute({0, 2, 3, 1});
    torch::Tensor dist = (level - level.round()).abs() / (conv == "ptqd" ? 63.75 : 127.5);  // image units
    torch::Tensor differ = got != want;
    EXPECT_EQ((differ & (dist > 1e-4)).sum().item<int64_t>(), 0);
    EXPECT_LE((got.to(torch::kInt32) - want.to(torch::kInt32)).abs().max().item<int>(), 1);
  }
  EXPECT_GE(ldm_images_to_uint8(img, "ptqd").min().item<int>(), 127);  // the quirk's signature
  EXPECT_THROW(ldm_images_to_uint8(img, "jpeg"), Error);
}

}  // namespace
}  // namespace dmeval
