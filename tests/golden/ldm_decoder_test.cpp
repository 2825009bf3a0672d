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
#include "tests/golden/ldm_golden.h"

namespace dmeval {
namespace {

using json = nlohmann::json;
using test::golden_path;
using test::ldm_golden_array;
using test::max_abs_diff;

TEST(GoldenLdmDecoder, StateDictIsTheReferences) {
  DMEVAL_REQUIRE_GOLDEN();
  VqFirstStage fs = test::ldm_golden_first_stage();
  std::map<std::string, std::vector<int64_t>> want;
  for (const auto& k : json::parse(test::read_text(golden_path("ldm/decoder/state_dict_keys.json"))))
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
  VqFirstStage fs = test::ldm_golden_first_stage();
  torch::NoGradGuard no_grad;
  const torch::Tensor z = ldm_golden_array("decoder/z.npy");
  VqDecodeResult r = fs->decode(z);

  // Indices: exact except near-ties (1e-5 relative).
  const test::CodeCheck idx =
      test::compare_codebook_indices(fs, z, r.indices, ldm_golden_array("decoder/codebook_indices.npy"));
  EXPECT_EQ(idx.differ_off_tie, 0) << test::describe(idx, 1);
  const bool same_indices = idx.differ == 0;
  std::printf("codebook indices: %lld of %lld differ from the reference; max |image - ref| %.3g\n",
              static_cast<long long>(idx.differ), static_cast<long long>(idx.elements),
              max_abs_diff(r.images, ldm_golden_array("decoder/image_quantized.npy")));
  if (same_indices) {
    EXPECT_LE(max_abs_diff(r.quantized, ldm_golden_array("decoder/z_quantized.npy")), 1e-4);
    EXPECT_LE(max_abs_diff(fs->post_quant(r.quantized), ldm_golden_array("decoder/post_quant_conv_out.npy")),
              1e-4);
    EXPECT_LE(max_abs_diff(r.images, ldm_golden_array("decoder/image_quantized.npy")), 1e-4);
  }
  // Without the codebook step: the decoder alone.
  EXPECT_LE(max_abs_diff(fs->decode(z, true).images, ldm_golden_array("decoder/image_not_quantized.npy")),
            1e-4);
}

TEST(GoldenLdmDecoder, Uint8ConversionsTruncateAsTheScripts) {
  DMEVAL_REQUIRE_GOLDEN();
  // From the reference's own float image, so that only the conversion is under test here.
  const torch::Tensor img = ldm_golden_array("decoder/image_quantized.npy");
  const std::map<std::string, std::string> files = {
      {"png", "uint8_png.npy"}, {"np", "uint8_np.npy"}, {"ptqd", "uint8_ptqd.npy"}};
  for (const std::string& conv : ldm_uint8_conversions()) {
    SCOPED_TRACE(conv);
    const torch::Tensor got = ldm_images_to_uint8(img, conv),
                        want = ldm_golden_array("decoder/" + files.at(conv));
    ASSERT_EQ(got.sizes(), want.sizes());
    // Where a value differs, the float image must sit within 1e-4 (image units) of a level boundary.
    const test::CodeCheck c = test::compare_ldm_uint8(got, want, img, conv);
    EXPECT_EQ(c.differ_off_tie, 0) << test::describe(c, 1);
    EXPECT_LE(c.max_step, 1);
  }
  EXPECT_GE(ldm_images_to_uint8(img, "ptqd").min().item<int>(), 127);  // the quirk's signature
  EXPECT_THROW(ldm_images_to_uint8(img, "jpeg"), Error);
}

}  // namespace
}  // namespace dmeval
