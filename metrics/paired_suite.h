// The paired-SR suite: PSNR and SSIM (BasicSR's calculate_psnr/calculate_ssim) and LPIPS over
// (SR, HR) image pairs, per image and as the papers' means (PSNR over the pairs that are not
// identical). `dmeval sr` scores two folders with it; a super-resolution `dmeval run` scores its
// samples against the HR images with the same function.
#pragma once

#include <torch/types.h>

#include <nlohmann/json.hpp>

#include <vector>

#include "metrics/lpips.h"
#include "metrics/paired_folders.h"
#include "metrics/psnr_ssim.h"

namespace dmeval {

struct PairedScores {
  nlohmann::ordered_json
      images;  // per pair: name, hr, sr, height, width, psnr (null if identical), ssim, lpips
  nlohmann::ordered_json mean;  // n, psnr, psnr_identical_pairs_excluded, ssim, lpips
  // The same figures as numbers (PSNR +inf for identical pairs; lpips empty without LPIPS).
  std::vector<double> psnr, ssim, lpips;
  PsnrMean psnr_mean;
  double ssim_mean = 0, lpips_mean = 0;
};

// `mod_crop`: HR mod-crop (the SR scale; 1 = none). `lpips`: nullptr = no LPIPS; it runs on `device`.
PairedScores score_pairs(const std::vector<ImagePair>& pairs, int mod_crop,
                         const PairedConventions& conventions, Lpips* lpips,
                         torch::Device device = torch::kCPU);

}  // namespace dmeval
