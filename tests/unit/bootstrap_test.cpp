// Bootstrap noise estimates (metrics/bootstrap.h): reproducible for a seed, the right size for a
// mean, positive for FID, exact binomial std.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "metrics/bootstrap.h"
#include "metrics/frechet.h"

namespace dmeval {
namespace {

TEST(Bootstrap, ReproducibleAndSensible) {
  torch::manual_seed(0);
  torch::Tensor x = torch::randn({400, 8}, torch::kFloat64);
  // The bootstrap std of a mean of N unit-variance values is about 1/sqrt(N).
  auto mean0 = [](const torch::Tensor& r) { return r.select(1, 0).mean().item<double>(); };
  const double s = bootstrap_std(x, mean0, {200, 7});
  EXPECT_NEAR(s, 1 / std::sqrt(400.0), 0.3 / std::sqrt(400.0));
  EXPECT_EQ(s, bootstrap_std(x, mean0, {200, 7}));  // same seed, same value
  FeatureStats ref = stats_from_features(torch::randn({400, 8}, torch::kFloat64));
  const double f = fid_bootstrap_std(x, ref, {5, 1});
  EXPECT_GT(f, 0);
  EXPECT_LT(f, frechet_distance(stats_from_features(x), ref).value + 1);
  EXPECT_NEAR(binomial_std(0.5, 100), 0.05, 1e-12);
}

}  // namespace
}  // namespace dmeval
