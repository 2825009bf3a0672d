#include "metrics/frechet.h"

#include <limits>

#include "core/error.h"
#include "core/tensor_data.h"
#include "metrics/scipy_sqrtm.h"

namespace dmeval {

const char* frechet_route_name(FrechetRoute r) {
  switch (r) {
    case FrechetRoute::kSymmetricEigen: return "symmetric-eigen";
    case FrechetRoute::kEigvals: return "eigvals (torch-fidelity)";
    case FrechetRoute::kCrossGram: return "cross-gram singular values";
    case FrechetRoute::kScipySqrtm: return "scipy sqrtm (pytorch-fid, clean-fid, ADM)";
  }
  return "?";
}

namespace {
void check_stats(const FeatureStats& a, const FeatureStats& b) {
  if (a.mu.numel() != b.mu.numel())
    fail("statistics of different dimensions: {} vs {} (features from different taps or networks?)",
         a.mu.numel(), b.mu.numel());
  const int64_t d = a.mu.numel();
  for (const FeatureStats* s : {&a, &b}) {
    if (s->sigma.dim() != 2 || s->sigma.size(0) != d || s->sigma.size(1) != d)
      fail("covariance of shape {} does not match mean of dimension {}", shape_str(s->sigma.sizes().vec()),
           d);
    if (!torch::isfinite(s->mu).all().item<bool>() || !torch::isfinite(s->sigma).all().item<bool>())
      fail("statistics contain NaN or Inf");
  }
}

double mean_term(const FeatureStats& a, const FeatureStats& b) {
  torch::Tensor d = a.mu.to(torch::kFloat64) - b.mu.to(torch::kFloat64);
  return d.dot(d).item<double>();
}
}  // namespace

FrechetResult frechet_distance(const FeatureStats& a, const FeatureStats& b, FrechetRoute route) {
  check_stats(a, b);
  torch::NoGradGuard no_grad;
  torch::Tensor s1 = a.sigma.to(torch::kFloat64), s2 = b.sigma.to(torch::kFloat64);
  FrechetResult r;
  r.route = route;
  r.mean_term = mean_term(a, b);
  switch (route) {
    case FrechetRoute::kSymmetricEigen: {
      // Eigenvalues below the float64 rounding floor (eps * largest) are zero: their square
      // roots would otherwise inject ~1e-8 noise per null direction (dead units, N <= D).
      auto floor_zero = [](const torch::Tensor& ev) {
        double floor = std::numeric_limits<double>::epsilon() * ev.abs().max().item<double>();
        return torch::where(ev > floor, ev, torch::zeros_like(ev));
      };
      // Fast path: S1 = L L^T well conditioned, then S1 S2 ~ L^T S2 L (symmetric) and only
      // eigenvalues are needed. Falls back to the eigh route when a pivot is tiny.
      auto [chol, info] = torch::linalg_cholesky_ex(s1, /*upper=*/false, /*check_errors=*/false);
      if (info.item<int64_t>() == 0) {
        torch::Tensor dg = chol.diagonal();
        double lo = dg.min().item<double>(), hi = dg.max().item<double>();
        if (lo > 0 && lo * lo >= 1e-10 * hi * hi) {
          torch::Tensor m = torch::mm(torch::mm(chol.t(), s2), chol);
          m = (m + m.t()) / 2;
          r.trace_sqrt = floor_zero(torch::linalg::eigvalsh(m, "L")).sqrt().sum().item<double>();
          break;
        }
      }
      auto [lam, v] = torch::linalg::eigh(s1, "L");
      double scale = std::max(lam.abs().max().item<double>(), 1e-300);
      r.singular = lam.min().item<double>() <= 1e-12 * scale;
      torch::Tensor root = torch::mm(v * floor_zero(lam).sqrt(), v.t());  // S1^(1/2)
      torch::Tensor m = torch::mm(torch::mm(root, s2), root);
      m = (m + m.t()) / 2;
      torch::Tensor mu = floor_zero(torch::linalg::eigvalsh(m, "L"));
      r.trace_sqrt = mu.clamp_min(0).sqrt().sum().item<double>();
      break;
    }
    case FrechetRoute::kEigvals: {
      torch::Tensor ev = torch::linalg::eigvals(torch::mm(s1, s2));
      r.trace_sqrt = torch::real(torch::sqrt(ev)).sum().item<double>();
      break;
    }
    case FrechetRoute::kCrossGram: fail("the cross-Gram route needs the features, not statistics");
  }
  r.value = r.mean_term + s1.trace().item<double>() + s2.trace().item<double>() - 2 * r.trace_sqrt;
  return r;
}

FrechetResult frechet_distance_scipy(const FeatureStats& a, const FeatureStats& b, bool check_imaginary) {
  check_stats(a, b);
  torch::NoGradGuard no_grad;
  torch::Tensor s1 = a.sigma.to(torch::kFloat64), s2 = b.sigma.to(torch::kFloat64);
  FrechetResult r;
  r.route = FrechetRoute::kScipySqrtm;
  r.mean_term = mean_term(a, b);
  SqrtmResult sq = scipy_sqrtm(torch::mm(s1, s2));
  if (!torch::isfinite(sq.x).all().item<bool>()) {
    // "fid calculation produces singular product; adding 1e-06 to diagonal of cov estimates"
    r.eps_fallback = true;
    torch::Tensor offset = torch::eye(s1.size(0), torch::kFloat64) * 1e-6;
    sq = scipy_sqrtm(torch::mm(s1 + offset, s2 + offset));
  }
  torch::Tensor covmean = sq.x;
  if (sq.is_complex) {
    r.max_imag = torch::imag(covmean).abs().max().item<double>();
    double max_diag_imag = torch::imag(covmean.diagonal()).abs().max().item<double>();
    if (check_imaginary && !(max_diag_imag <= 1e-3))
      fail(
          "Imaginary component {} (pytorch-fid and ADM raise ValueError here; the accurate route gives a "
          "value)",
          r.max_imag);
    covmean = torch::real(covmean);
  }
  r.trace_sqrt = covmean.trace().item<double>();
  r.value = r.mean_term + s1.trace().item<double>() + s2.trace().item<double>() - 2 * r.trace_sqrt;
  return r;
}

FrechetResult frechet_distance_features(const torch::Tensor& x1, const torch::Tensor& x2) {
  if (x1.dim() != 2 || x2.dim() != 2 || x1.size(1) != x2.size(1))
    fail("feature matrices of shapes {} and {} cannot be compared", shape_str(x1.sizes().vec()),
         shape_str(x2.sizes().vec()));
  FeatureStats a = stats_from_features(x1), b = stats_from_features(x2);
  const int64_t d = x1.size(1);
  if (x1.size(0) > d && x2.size(0) > d) return frechet_distance(a, b, FrechetRoute::kSymmetricEigen);
  torch::NoGradGuard no_grad;
  torch::Tensor c1 = x1.to(torch::kFloat64) - a.mu, c2 = x2.to(torch::kFloat64) - b.mu;
  FrechetResult r;
  r.route = FrechetRoute::kCrossGram;
  r.singular = true;
  r.mean_term = mean_term(a, b);
  torch::Tensor sv = torch::linalg::svdvals(torch::mm(c1, c2.t()), c10::nullopt);
  r.trace_sqrt = sv.sum().item<double>() / std::sqrt(static_cast<double>(x1.size(0) - 1) * (x2.size(0) - 1));
  r.value = r.mean_term + a.sigma.trace().item<double>() + b.sigma.trace().item<double>() - 2 * r.trace_sqrt;
  return r;
}

}  // namespace dmeval
