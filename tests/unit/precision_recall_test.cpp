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

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace dmeval {
namespace {

// Peak resident-memory growth of one precision/recall call in a fresh child process, in MB
// (capped at 250): libtorch's and OpenBLAS's one-time buffers are the same for every N.
int peak_growth_mb(int64_t n) {
  pid_t pid = fork();
  if (pid == 0) {
    // libgomp's thread pool does not survive fork(): the child must not start OpenMP threads.
    at::set_num_threads(1);
    torch::manual_seed(1);
    torch::Tensor real = torch::randn({n, 16}), gen = torch::randn({n, 16});
    PrecisionRecallOptions warm;
    precision_recall(real.slice(0, 0, 64), gen.slice(0, 0, 64), warm);  // load the kernels and BLAS buffers
    rusage before{};
    getrusage(RUSAGE_SELF, &before);
    PrecisionRecallOptions o;
    o.block_cols = 512;
    precision_recall(real, gen, o);
    rusage after{};
    getrusage(RUSAGE_SELF, &after);
    _exit(static_cast<int>(std::min<long>(250, (after.ru_maxrss - before.ru_maxrss) / 1024)));
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 255;
}

// Memory does not grow with N: from 2k to 8k rows (float64, 2048 x 512 tiles) the peak grows by far
// less than a 2048 x N strip would add (2048 x 6k x 8 bytes = 100 MB).
TEST(PrecisionRecallTiles, PeakMemoryDoesNotGrowWithN) {
  const int small = peak_growth_mb(2000), large = peak_growth_mb(8000);
  std::fprintf(stderr, "peak RSS growth: %d MB at N = 2000, %d MB at N = 8000\n", small, large);
  // Measured 21–46 MB here depending on the allocator's state and the machine's load: well under the
  // 100 MB a strip would add, which is what this bounds.
  EXPECT_LT(large - small, 60);
}

}  // namespace
}  // namespace dmeval
