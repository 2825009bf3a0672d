#include "metrics/paired_suite.h"

#include <torch/torch.h>

#include <cmath>

#include "metrics/matlab_resize.h"

namespace dmeval {

PairedScores score_pairs(const std::vector<ImagePair>& pairs, int mod, const PairedConventions& conv,
                         Lpips* lpips, torch::Device) {
  using ojson = nlohmann::ordered_json;
  ojson images = ojson::array();
  std::vector<double> psnrs, ssims, lps;
  for (const ImagePair& p : pairs) {
    LoadedPair lp2 = load_sr_pair(p, mod);
    PsnrSsim s =
        psnr_ssim(planes_from_image(lp2.reference), planes_from_image(lp2.distorted), conv, p.distorted_path);
    ojson row = {{"name", p.name},
                 {"hr", p.reference_path},
                 {"sr", p.distorted_path},
                 {"height", lp2.reference.height},
                 {"width", lp2.reference.width}};
    row["psnr"] = std::isinf(s.psnr) ? ojson(nullptr) : ojson(s.psnr);
    if (std::isinf(s.psnr)) row["identical"] = true;
    row["ssim"] = s.ssim;
    psnrs.push_back(s.psnr);
    ssims.push_back(s.ssim);
    if (lpips) {
      // in0 = SR, in1 = HR, both uint8/255 RGB (the distance is symmetric anyway).
      double d = lpips
                     ->distance(image_to_unit_chw(lp2.distorted).unsqueeze(0),
                                image_to_unit_chw(lp2.reference).unsqueeze(0))
                     .item<double>();
      row["lpips"] = d;
      lps.push_back(d);
    }
    images.push_back(row);
  }
  PsnrMean pm = mean_psnr(psnrs);
  double ssim_mean = 0, lpips_mean = 0;
  for (double v : ssims) ssim_mean += v / ssims.size();
  for (double v : lps) lpips_mean += v / lps.size();
  PairedScores out;
  out.psnr = psnrs;
  out.ssim = ssims;
  out.lpips = lps;
  out.psnr_mean = pm;
  out.ssim_mean = ssim_mean;
  out.lpips_mean = lpips_mean;
  out.images = std::move(images);
  out.mean = {{"n", pairs.size()}};
  out.mean["psnr"] = pm.finite ? ojson(pm.mean_finite) : ojson(nullptr);
  out.mean["psnr_identical_pairs_excluded"] = pm.infinite;
  out.mean["ssim"] = ssim_mean;
  if (lpips) out.mean["lpips"] = lpips_mean;
  return out;
}

}  // namespace dmeval
