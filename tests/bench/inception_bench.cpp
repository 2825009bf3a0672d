// FID Inception throughput on this CPU: the network alone (299x299 batches), and the whole
// pipeline from 32x32 PNGs (decode + resize + network). Weights: the golden random file (speed
// does not depend on the values). Compare with shared/spec/perf-baseline-inception.md
// (pytorch-fid: 5.3 images/s at 1 thread on this machine type).
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "core/checkpoint.h"
#include "core/image.h"
#include "metrics/inception_net.h"
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
