#include "core/known_files.h"

namespace dmeval {

const std::vector<KnownFile>& known_files() {
  static const std::vector<KnownFile> kFiles = {
      {"pt_inception-2015-12-05-6726825d.pth", "FID Inception weights (pytorch-fid release fid_weights)",
       "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2", "",
       "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
       "pt_inception-2015-12-05-6726825d.pth"},
      {"squeezenet1_1-b8a52dc0.pth", "torchvision SqueezeNet 1.1 (LPIPS squeeze backbone)",
       "b8a52dc049b60e4b6ab68ad0df457362afab8b6304b2febdc1650a5dab4d7e7b", "",
       "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth"},
      {"alexnet-owt-7be5be79.pth", "torchvision AlexNet (LPIPS alex backbone)", "", "",
       "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth", "7be5be79"},
      {"vgg16-397923af.pth", "torchvision VGG16 (LPIPS vgg backbone)", "", "",
       "https://download.pytorch.org/models/vgg16-397923af.pth", "397923af"},
      {"alex.pth", "lpips package v0.1 linear layers for net alex (lpips/weights/v0.1/alex.pth)",
       "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0", "",
       "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/alex.pth"},
      {"vgg.pth", "lpips package v0.1 linear layers for net vgg (lpips/weights/v0.1/vgg.pth)",
       "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868", "",
       "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/vgg.pth"},
      {"squeeze.pth", "lpips package v0.1 linear layers for net squeeze (lpips/weights/v0.1/squeeze.pth)",
       "4a5350f23600cb79923ce65bb07cbf57dca461329894153e05a1346bd531cf76", "",
       "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/squeeze.pth"},
      {"model-790000.ckpt", "pesser/pytorch_diffusion EMA CIFAR-10 DDPM (ema_diffusion_cifar10_model)", "",
       "1fa350b952534ae442b1d5235cce5cd3", "https://heibox.uni-heidelberg.de/f/2e4f01e2d9ee49bab1d5/?dl=1"},
      {"model-790000.ckpt", "pesser/pytorch_diffusion CIFAR-10 DDPM (diffusion_cifar10_model, raw)", "",
       "82ed3067fd1002f5cf4c339fb80c4669", "https://heibox.uni-heidelberg.de/f/869980b53bf5416c8a28/?dl=1"},
      {"model-2388000.ckpt", "pesser/pytorch_diffusion LSUN bedroom DDPM (raw)", "",
       "f70280ac0e08b8e696f42cb8e948ff1c", ""},
      {"model-2388000.ckpt", "pesser/pytorch_diffusion LSUN bedroom DDPM (EMA)", "",
       "1921fa46b66a3665e450e42f36c2720f", ""},
      {"model-1761000.ckpt", "pesser/pytorch_diffusion LSUN cat DDPM (raw)", "",
       "bbee0e7c3d7abfb6e2539eaf2fb9987b", ""},
      {"model-1761000.ckpt", "pesser/pytorch_diffusion LSUN cat DDPM (EMA)", "",
       "646f23f4821f2459b8bafc57fd824558", ""},
      {"model-4432000.ckpt", "pesser/pytorch_diffusion LSUN church DDPM (raw)", "",
       "eb619b8a5ab95ef80f94ce8a5488dae3", ""},
      {"model-4432000.ckpt", "pesser/pytorch_diffusion LSUN church DDPM (EMA)", "",
       "fdc68a23938c2397caba4a260bc2445f", ""},
      {"test_batch", "CIFAR-10 python test batch", "", "40351d587109b95175f43aff81a1287e", ""},
      {"data_batch_1", "CIFAR-10 python training batch 1", "", "c99cafc152244af753f735de768cd75f", ""},
      {"data_batch_2", "CIFAR-10 python training batch 2", "", "d4bba439e000b95fd0a9bffe97cbabec", ""},
      {"data_batch_3", "CIFAR-10 python training batch 3", "", "54ebc095f3ab1f0389bbae665268c751", ""},
      {"data_batch_4", "CIFAR-10 python training batch 4", "", "634d18415352ddfa80567beed471001a", ""},
      {"data_batch_5", "CIFAR-10 python training batch 5", "", "482c414d41f54cd18b22e5b47cb7c3cb", ""},
      {"cifar-10-python.tar.gz", "CIFAR-10 python archive", "", "c58f30108f718f92721af3b95e74349a",
       "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"},
      {"fid_stats_cifar10_train.npz", "TTUR / pytorch-fid CIFAR-10 training-set statistics",
       "fce45a8ad7ca84a06bfda567dafdcc2960dfe036d4048227963f89499731a5fb", "", ""},
      {"VIRTUAL_imagenet256_labeled.npz", "ADM ImageNet 256 reference batch",
       "b32732719497e42660a9affb4a966068cba0855ac449b82015e34ec376d20758", "",
       "https://openaipublic.blob.core.windows.net/diffusion/jul-2021/ref_batches/imagenet/256/"
       "VIRTUAL_imagenet256_labeled.npz",
       "", 2037122530},
      {"VIRTUAL_lsun_bedroom256.npz", "ADM LSUN-Bedroom 256 reference batch (no checksum published)", "", "",
       "https://openaipublic.blob.core.windows.net/diffusion/jul-2021/ref_batches/lsun/bedroom/"
       "VIRTUAL_lsun_bedroom256.npz"},
      // The latent-diffusion model zoo publishes no checksums (spec ldm.md §10).
      {"model.ckpt",
       "CompVis latent-diffusion cin256-v2 (LDM-4, class-conditional ImageNet 256), no checksum "
       "published",
       "", "", "https://ommer-lab.com/files/latent-diffusion/nitro/cin/model.ckpt", "", 1827378153},
      {"model.ckpt",
       "CompVis latent-diffusion LSUN-Bedrooms LDM-4 (lsun_beds256, inside lsun_bedrooms.zip), no "
       "checksum or size published",
       "", "", "https://ommer-lab.com/files/latent-diffusion/lsun_bedrooms.zip"},
  };
  return kFiles;
}

const KnownFile* find_known_file_by_name(const std::string& name) {
  for (const auto& f : known_files())
    if (f.name == name) return &f;
  return nullptr;
}

const KnownFile* identify_known_file(const std::string& sha256, const std::string& md5) {
  for (const auto& f : known_files()) {
    if (!sha256.empty() && f.sha256 == sha256) return &f;
    if (!sha256.empty() && f.sha256.empty() && !f.sha256_prefix.empty() &&
        sha256.compare(0, f.sha256_prefix.size(), f.sha256_prefix) == 0)
      return &f;
    if (!md5.empty() && f.md5 == md5) return &f;
  }
  return nullptr;
}

}  // namespace dmeval
