// The model families, by name (Faiss-style registry): a new family is a folder under generators/ and
// one line here.
#include "generators/diffusion_model.h"

namespace dmeval {

const std::vector<ModelFamily>& model_families() {
  static const std::vector<ModelFamily> kFamilies = {
      // generators/ldm: latent diffusion, LDM-4 (LSUN-Bedrooms, cin256-v2). Before ddim-unet, which
      // reads every other .yml config.
      ldm_family(),
      ddim_unet_family(),  // generators/ddim: the pixel-space ddim UNet (CIFAR-10, CelebA, LSUN, shapes)
  };
  return kFamilies;
}

}  // namespace dmeval
