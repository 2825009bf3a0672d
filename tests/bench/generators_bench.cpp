// Generator throughput on this CPU: the full-size CIFAR-10 UNet step (random weights; speed does not
// depend on the values) at batch 1 and 8, with the plain and channels-last layouts; the full-size LDM-4
// UNet steps (LSUN-Bedrooms, cin256-v2 with its one-token class context) at batch 1 and 8; the per-image
// Philox noise; the sample-to-uint8 conversion. `dmeval bench latency` gives the end-to-end figures;
// the README compares them with the ddim reference code on this machine.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "generators/ddim/ddim_unet.h"
#include "generators/ddim/unet_config.h"
#include "generators/ldm/ldm_config.h"
#include "generators/ldm/ldm_unet.h"
#include "generators/noise_source.h"
#include "generators/sample_images.h"

using namespace dmeval;

// Args: batch, threads, channels-last.
static void BM_Cifar10UnetStep(benchmark::State& state) {
  at::set_num_threads(static_cast<int>(state.range(1)));
  torch::manual_seed(0);
  DdimUNet model(model_preset("cifar10").unet);
  model->eval();
  if (state.range(2)) model->set_channels_last(true);
  c10::InferenceMode guard;
  torch::Tensor x = torch::randn({state.range(0), 3, 32, 32});
  torch::Tensor t = torch::full({state.range(0)}, 500.0f);
  for (auto _ : state) benchmark::DoNotOptimize(model->forward(x, t));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_Cifar10UnetStep)
    ->Args({1, 2, 0})
    ->Args({8, 2, 0})
    ->Args({8, 2, 1})
    ->Args({8, 1, 0})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Args: preset (0: lsun_bedrooms-ldm-vq-4, 1: cin256-v2), batch. Two threads.
static void BM_Ldm4UnetStep(benchmark::State& state) {
  at::set_num_threads(2);
  torch::manual_seed(0);
  const LdmConfig c = resolve_ldm_config(ldm_preset_names()[static_cast<size_t>(state.range(0))]);
  LdmUNet model(c.unet);
  model->eval();
  c10::InferenceMode guard;
  const int64_t b = state.range(1), res = c.unet.image_size;
  torch::Tensor x = torch::randn({b, c.unet.in_channels, res, res});
  torch::Tensor t = torch::full({b}, 500, torch::kLong);
  torch::Tensor context =
      c.unet.use_spatial_transformer ? torch::randn({b, 1, c.unet.context_dim}) : torch::Tensor();
  for (auto _ : state) benchmark::DoNotOptimize(model->forward(x, t, context));
  state.SetItemsProcessed(state.iterations() * b);
  state.SetLabel(c.name);
}
BENCHMARK(BM_Ldm4UnetStep)
    ->Args({0, 1})
    ->Args({0, 8})
    ->Args({1, 1})
    ->Args({1, 8})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(2);

static void BM_PerImageNoise32px(benchmark::State& state) {
  at::set_num_threads(static_cast<int>(state.range(0)));
  auto noise = make_noise_source("per-image", 1);
  int64_t step = 0;
  for (auto _ : state) benchmark::DoNotOptimize(noise->step(step++, 0, 64, {3, 32, 32}, true));
  state.SetItemsProcessed(state.iterations() * 64);
}
BENCHMARK(BM_PerImageNoise32px)->Arg(1)->Arg(2)->UseRealTime();

static void BM_SamplesToImages32px(benchmark::State& state) {
  torch::Tensor x = torch::randn({64, 3, 32, 32});
  for (auto _ : state) benchmark::DoNotOptimize(samples_to_images(x));
  state.SetItemsProcessed(state.iterations() * 64);
}
BENCHMARK(BM_SamplesToImages32px);

BENCHMARK_MAIN();
