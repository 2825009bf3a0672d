// Precision/recall tiling: any tile size gives the same fractions, and radii equal to rounding, as one tile
// covering everything (the working memory is tiles, never a block x N strip).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "metrics/precision_recall.h"

namespace dmeval {
namespace {

TEST(PrecisionRecallTiles, AnyTileSizeGivesTheSameResult) {
  torch::manual_seed(3);
  torch::Tensor real = torch::randn({157, 16}, torch::kFloat64);
  torch::Tensor gen = torch::randn({131, 16}, torch::kFloat64) * 1.2 + 0.3;
  for (auto dtype : {torch::kFloat64, torch::kFloat32}) {
    PrecisionRecallOptions whole;
    whole.dtype = dtype;
    whole.block_rows = whole.block_cols = 1 << 20;
    PrecisionRecall ref = precision_recall(real, gen, whole);
    torch::Tensor radii = knn_radii(real.to(dtype), whole);
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{7, 5}, {64, 3}, {1, 200}, {50, 50}}) {
      PrecisionRecallOptions o = whole;
      o.block_rows = rows;
      o.block_cols = cols;
      PrecisionRecall pr = precision_recall(real, gen, o);
      EXPECT_EQ(pr.precision, ref.precision) << rows << "x" << cols;
      EXPECT_EQ(pr.recall, ref.recall) << rows << "x" << cols;
      // GEMM low bits depend on the tile shape (BLAS blocking), so radii agree to rounding, not bitwise.
      const double tol = dtype == torch::kFloat64 ? 1e-12 : 1e-5;
      EXPECT_TRUE(torch::allclose(knn_radii(real.to(dtype), o), radii, tol, tol)) << rows << "x" << cols;
    }
    EXPECT_GT(ref.precision, 0.0);
    EXPECT_LT(ref.precision, 1.0);
  }
}

}  // namespace
}  // namespace dmeval
