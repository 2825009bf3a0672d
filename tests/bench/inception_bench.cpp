// FID Inception throughput on this CPU: the network alone (299x299 batches), and the whole
// pipeline from 32x32 PNGs (decode + resize + network). Weights: the golden random file (speed
// does not depend on the values). Compare with shared/spec/perf-baseline-inception.md
// (pytorch-fid: 5.3 images/s at 1 thread on this machine type).
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "core/checkpoint.h"
#include "core/image.h"
#include "metrics/frechet.h"
#include "metrics/inception_net.h"
#include "metrics/precision_recall.h"
#include "metrics/preprocess.h"
#include "tests/support/golden.h"

using namespace dmeval;

static FidInception& network() {
  static FidInception net = [] {
    FidInception n;
    n->load(Checkpoint::open(test::golden_path("inception/inception-random.pth")));
    return n;
  }();
  return net;
}

// Args: batch, threads, fast path (0 = reference conv->BN->ReLU, 1 = folded BN, channels-last).
static void BM_InceptionNetwork(benchmark::State& state) {
  if (test::golden_dir().empty()) return state.SkipWithError("golden data not found");
  at::set_num_threads(static_cast<int>(state.range(1)));
  network()->set_fast_path(state.range(2) != 0);
  torch::NoGradGuard no_grad;
  torch::Tensor x = torch::rand({state.range(0), 3, 299, 299}) * 2 - 1;
  InceptionTaps taps;
  for (auto _ : state) benchmark::DoNotOptimize(network()->forward(x, taps).pool3);
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

static void BM_PngToFeatures32px(benchmark::State& state) {
  if (test::golden_dir().empty()) return state.SkipWithError("golden data not found");
  at::set_num_threads(2);
  torch::NoGradGuard no_grad;
  std::vector<uint8_t> png;
  {
    FileSource f(test::golden_path("inception/images/g00_astronaut_face_32.png"));
    png = f.read_vector(0, f.size());
  }
  const int batch = 50;
  network()->set_fast_path(true);
  InceptionTaps taps;
  for (auto _ : state) {
    std::vector<torch::Tensor> in;
    for (int i = 0; i < batch; ++i)
      in.push_back(preprocess(decode_image("x.png", png.data(), png.size()), PreprocessMode::kPytorchFid));
    benchmark::DoNotOptimize(network()->forward(torch::stack(in), taps).pool3);
  }
  state.SetItemsProcessed(state.iterations() * batch);
}

// Precision/recall on N x 2048 features per set (spec: 10k x 10k); arg 1: 32 or 64 bits.
static void BM_PrecisionRecall(benchmark::State& state) {
  at::set_num_threads(2);
  torch::manual_seed(0);
  const int64_t n = state.range(0);
  torch::Tensor real = torch::rand({n, 2048}), gen = torch::rand({n, 2048}) * 1.1;
  PrecisionRecallOptions o;
  o.dtype = state.range(1) == 32 ? torch::kFloat32 : torch::kFloat64;
  for (auto _ : state) benchmark::DoNotOptimize(precision_recall(real, gen, o));
}

// The default 2048-d Fréchet distance route on random SPD statistics (spec target: >= 10x faster
// than scipy's sqrtm, 27.8 s on this machine type).
static void BM_Frechet2048(benchmark::State& state) {
  at::set_num_threads(2);
  torch::manual_seed(0);
  auto spd = [] {
    torch::Tensor x = torch::randn({4096, 2048}, torch::kFloat64);
    FeatureStats s;
    s.mu = x.mean(0);
    s.sigma = torch::mm(x.t(), x) / 4095;
    return s;
  };
  FeatureStats a = spd(), b = spd();
  for (auto _ : state) benchmark::DoNotOptimize(frechet_distance(a, b).value);
}

BENCHMARK(BM_PrecisionRecall)->Args({10000, 32})->Args({10000, 64})->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();
BENCHMARK(BM_Frechet2048)->Iterations(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_InceptionNetwork)
    ->Args({1, 1, 0})
    ->Args({1, 1, 1})
    ->Args({50, 1, 0})
    ->Args({50, 1, 1})
    ->Args({50, 2, 0})
    ->Args({50, 2, 1})
    ->Args({8, 2, 1})
    ->Args({16, 2, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_PngToFeatures32px)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_MAIN();
