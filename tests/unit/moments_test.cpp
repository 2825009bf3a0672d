// Exact merging: moments of a set split into shards (any split, any batch size, any merge order,
// through save/load) equal the single-pass result bit for bit; and they agree with the plain
// two-pass float64 reference.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <random>

#include "core/error.h"
#include "metrics/moments.h"
#include "tests/support/temp_dir.h"

namespace dmeval {
namespace {

torch::Tensor features(int64_t n, int64_t d) {
  torch::manual_seed(7);
  return (torch::rand({n, d}) * 3).to(torch::kFloat32);
}

TEST(Moments, ThreeRandomShardsMergeToTheSinglePassBitForBit) {
  const int64_t n = 1000, d = 48;
  torch::Tensor x = features(n, d);
  MomentAccumulator single(d, 64);
  for (int64_t a = 0; a < n; a += 50) single.add(a, x.slice(0, a, std::min(n, a + 50)));
  FeatureStats ref = single.finalize();

  std::mt19937 rng(3);
  for (int trial = 0; trial < 5; ++trial) {
    // Three shards with random boundaries, random batch sizes, merged in random order via files.
    int64_t c1 = 1 + rng() % (n - 2), c2 = 1 + rng() % (n - 2);
    if (c1 > c2) std::swap(c1, c2);
    if (c1 == c2) ++c2;
    std::vector<std::pair<int64_t, int64_t>> ranges = {{0, c1}, {c1, c2}, {c2, n}};
    std::shuffle(ranges.begin(), ranges.end(), rng);
    test::TempDir dir;
    std::vector<std::string> files;
    for (size_t s = 0; s < ranges.size(); ++s) {
      MomentAccumulator shard(d, 64);
      int64_t batch = 1 + rng() % 97;
      for (int64_t a = ranges[s].first; a < ranges[s].second; a += batch)
        shard.add(a, x.slice(0, a, std::min(ranges[s].second, a + batch)));
      files.push_back(dir.file("shard" + std::to_string(s) + ".npz"));
      shard.save(files.back());
    }
    MomentAccumulator merged = MomentAccumulator::load(files[0]);
    merged.merge(MomentAccumulator::load(files[1]));
    merged.merge(MomentAccumulator::load(files[2]));
    FeatureStats got = merged.finalize();
    EXPECT_EQ(got.count, n);
    EXPECT_TRUE(torch::equal(got.mu, ref.mu)) << "trial " << trial;
    EXPECT_TRUE(torch::equal(got.sigma, ref.sigma)) << "trial " << trial;
  }
  // And the values are right: the two-pass float64 reference.
  FeatureStats plain = stats_from_features(x);
  EXPECT_LT((plain.mu - ref.mu).abs().max().item<double>(), 1e-13);
  EXPECT_LT((plain.sigma - ref.sigma).abs().max().item<double>(), 1e-13);
}

TEST(Moments, BadInputIsRejected) {
  MomentAccumulator m(4);
  EXPECT_THROW(m.add(0, torch::zeros({2, 5})), Error);
  torch::Tensor nan = torch::zeros({2, 4});
  nan[1][2] = std::nan("");
  EXPECT_THROW(m.add(0, nan), Error);
  m.add(0, torch::ones({1, 4}));
  EXPECT_THROW(m.finalize(), Error);  // fewer than 2 images
  MomentAccumulator other(8);
  EXPECT_THROW(m.merge(other), Error);
}

}  // namespace
}  // namespace dmeval
