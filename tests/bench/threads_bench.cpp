// Why dmeval sets libtorch's intra-op thread count itself: Debian's libtorch starts C++ programs
// with one thread. Measures an Inception-sized convolution and a GEMM at 1..N threads.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <thread>

static void BM_Conv3x3(benchmark::State& state) {
  at::set_num_threads(static_cast<int>(state.range(0)));
  torch::NoGradGuard no_grad;
  torch::Tensor x = torch::randn({8, 64, 73, 73});
  torch::Tensor w = torch::randn({80, 64, 3, 3});
  for (auto _ : state) benchmark::DoNotOptimize(torch::conv2d(x, w));
  state.counters["threads"] = static_cast<double>(at::get_num_threads());
}

static void BM_Gemm2048(benchmark::State& state) {
  at::set_num_threads(static_cast<int>(state.range(0)));
  torch::Tensor a = torch::randn({2048, 2048}, torch::kFloat64);
  for (auto _ : state) benchmark::DoNotOptimize(torch::mm(a, a));
  state.counters["threads"] = static_cast<double>(at::get_num_threads());
}

static void Threads(benchmark::internal::Benchmark* b) {
  int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int t = 1; t <= hw; t *= 2) b->Arg(t);
  if ((hw & (hw - 1)) != 0) b->Arg(hw);
}

BENCHMARK(BM_Conv3x3)->Apply(Threads)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Gemm2048)->Apply(Threads)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_MAIN();
