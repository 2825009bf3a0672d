// File-format throughput on the golden files: the 95.6 MB legacy Inception checkpoint (strided
// TF-ordered views), deflated 2048x2048 float64 statistics, PNG decoding.
#include <benchmark/benchmark.h>

#include "core/checkpoint.h"
#include "core/image.h"
#include "core/npy.h"
#include "tests/support/golden.h"

using namespace dmeval;

static void BM_LoadInceptionCheckpoint(benchmark::State& state) {
  if (test::golden_dir().empty()) return state.SkipWithError("golden data not found");
  const std::string path = test::golden_path("inception/inception-random.pth");
  int64_t bytes = 0;
  for (auto _ : state) {
    Checkpoint ck = Checkpoint::open(path);
    for (const auto& e : ck.tensors()) bytes += static_cast<int64_t>(ck.read(e.value).bytes.size());
  }
  state.SetBytesProcessed(bytes);
}

static void BM_ReadCompressedStats(benchmark::State& state) {
  if (test::golden_dir().empty()) return state.SkipWithError("golden data not found");
  const std::string path = test::golden_path("inception/stats2048_a.npz");
  int64_t bytes = 0;
  for (auto _ : state) bytes += static_cast<int64_t>(NpzReader::open(path).read("sigma").bytes.size());
  state.SetBytesProcessed(bytes);
}

static void BM_DecodePng512(benchmark::State& state) {
  if (test::golden_dir().empty()) return state.SkipWithError("golden data not found");
  const std::string path = test::golden_path("inception/images/g38_astronaut_512.png");
  for (auto _ : state) benchmark::DoNotOptimize(decode_image_file(path));
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_LoadInceptionCheckpoint)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ReadCompressedStats)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DecodePng512)->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
