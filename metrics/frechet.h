// Fréchet distance between Gaussians fitted to features (FID, sFID), shared/spec §4:
//   d = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)).
// Routes for tr((S1 S2)^(1/2)):
//   kSymmetricEigen (default): R = S1^(1/2) by eigh, sum sqrt(eigvalsh(R S2 R)), negative
//     rounding-level eigenvalues clamped to 0. Accurate; all eigenvalues real by construction.
//   kEigvals: torch-fidelity's Σ Re sqrt(complex(eigvals(S1 S2))).
//   kCrossGram: from the features themselves, Σ singular values of Xc1 Xc2^T / sqrt((n1-1)(n2-1));
//     the mathematically exact value when a covariance is singular (N <= D).
#pragma once

#include <torch/torch.h>

#include <optional>
#include <string>

#include "metrics/moments.h"

namespace dmeval {

//   kScipySqrtm: pytorch-fid / clean-fid / ADM: scipy.linalg.sqrtm(S1 S2) (scipy_sqrtm.h); if the
//     result is not finite, again with 1e-6 added to both diagonals; real part kept.
enum class FrechetRoute { kSymmetricEigen, kEigvals, kCrossGram, kScipySqrtm };
const char* frechet_route_name(FrechetRoute r);

struct FrechetResult {
  double value = 0;
  FrechetRoute route = FrechetRoute::kSymmetricEigen;
  double mean_term = 0;       // |mu1 - mu2|^2
  double trace_sqrt = 0;      // tr((S1 S2)^(1/2))
  bool singular = false;      // a covariance was rank-deficient (smallest eigenvalue <= ~0)
  bool eps_fallback = false;  // kScipySqrtm: the first sqrtm was not finite; 1e-6 I was added
  double max_imag = 0;        // kScipySqrtm: largest |imaginary part| of the square root
};

// From statistics. Throws if dimensions differ or values are not finite.
FrechetResult frechet_distance(const FeatureStats& a, const FeatureStats& b,
                               FrechetRoute route = FrechetRoute::kSymmetricEigen);
// pytorch-fid / ADM (check_imaginary = true: throws "Imaginary component <max>" when a diagonal
// imaginary part exceeds 1e-3, as they raise ValueError) and clean-fid (false).
FrechetResult frechet_distance_scipy(const FeatureStats& a, const FeatureStats& b, bool check_imaginary);

// From the features (N x D each): uses the cross-Gram route when either covariance is singular
// (N <= D), the symmetric route otherwise.
FrechetResult frechet_distance_features(const torch::Tensor& x1, const torch::Tensor& x2);

}  // namespace dmeval
