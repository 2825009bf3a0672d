// Paired SR metrics on this CPU: SSIM megapixels/s (the separable fast path, the plain 2-D reference,
// and BasicSR's algorithm — five cv2.filter2D 11x11 float64 passes plus elementwise maps — written
// with the same OpenCV library BasicSR calls, as the reference tool's cost without Python overhead),
// PSNR, LPIPS pairs/s (alex, squeeze; the lpips package runs the same libtorch convolutions), and the
// MATLAB bicubic resize. Inputs: Set5 images from the golden data; LPIPS uses the golden backbones
// (speed does not depend on the weight values).
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#ifdef DMEVAL_HAVE_OPENCV
#include <opencv2/imgproc.hpp>
#endif

#include "core/checkpoint.h"
#include "core/image.h"
#include "metrics/lpips.h"
#include "metrics/matlab_resize.h"
#include "metrics/psnr_ssim.h"
#include "tests/support/golden.h"

using namespace dmeval;

namespace {

struct Pair {
  Planes hr, sr;  // Y planes of baby x2 (512x512)
  Image hr_img, sr_img;
};

const Pair& baby() {
  static Pair p = [] {
    Pair q;
    q.hr_img = decode_image_file(test::shared_path("data/Set5/HR/baby.png"));
    q.sr_img = decode_image_file(test::golden_path("paired/bicubic/up_basicsr/X2/baby.png"));
    q.hr = y_channel(planes_from_image(q.hr_img));
    q.sr = y_channel(planes_from_image(q.sr_img));
    return q;
  }();
  return p;
}

void set_pixels(benchmark::State& state, const Planes& p) {
  state.counters["MP/s"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * p.height * p.width / 1e6, benchmark::Counter::kIsRate);
}

}  // namespace

static void BM_SsimY512(benchmark::State& state) {
  if (test::golden_dir().empty()) return state.SkipWithError("golden data not found");
  at::set_num_threads(static_cast<int>(state.range(0)));
  const Pair& p = baby();
  for (auto _ : state) benchmark::DoNotOptimize(ssim(p.hr, p.sr));
  set_pixels(state, p.hr);
}
BENCHMARK(BM_SsimY512)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

static void BM_SsimY512Reference2D(benchmark::State& state) {
  if (test::golden_dir().empty()) return state.SkipWithError("golden data not found");
  const Pair& p = baby();
  for (auto _ : state) benchmark::DoNotOptimize(ssim_reference(p.hr, p.sr));
  set_pixels(state, p.hr);
}
BENCHMARK(BM_SsimY512Reference2D)->Unit(benchmark::kMillisecond)->UseRealTime();

#ifdef DMEVAL_HAVE_OPENCV
// BasicSR's _ssim with OpenCV: filter2D of img, img2, img^2, img2^2, img*img2 (11x11 float64), crop 5,
// then the elementwise SSIM map and its mean.
static void BM_SsimY512BasicSRAlgorithmOpenCV(benchmark::State& state) {
  if (test::golden_dir().empty()) return state.SkipWithError("golden data not found");
  cv::setNumThreads(static_cast<int>(state.range(0)));
  const Pair& p = baby();
  cv::Mat a(p.hr.height, p.hr.width, CV_64F, const_cast<double*>(p.hr.values.data()));
  cv::Mat b(p.sr.height, p.sr.width, CV_64F, const_cast<double*>(p.sr.values.data()));
  cv::Mat k = cv::getGaussianKernel(11, 1.5, CV_64F);
  cv::Mat window = k * k.t();
  const double c1 = 6.5025, c2 = 58.5225;
  for (auto _ : state) {
    cv::Rect valid(5, 5, a.cols - 10, a.rows - 10);
    cv::Mat mu1, mu2, s11, s22, s12;
    cv::filter2D(a, mu1, -1, window);
    cv::filter2D(b, mu2, -1, window);
    cv::filter2D(a.mul(a), s11, -1, window);
    cv::filter2D(b.mul(b), s22, -1, window);
    cv::filter2D(a.mul(b), s12, -1, window);
    mu1 = mu1(valid), mu2 = mu2(valid);
    cv::Mat mu1_sq = mu1.mul(mu1), mu2_sq = mu2.mul(mu2), mu12 = mu1.mul(mu2);
    cv::Mat sig1 = s11(valid) - mu1_sq, sig2 = s22(valid) - mu2_sq, sig12 = s12(valid) - mu12;
    cv::Mat num = (2 * mu12 + c1).mul(2 * sig12 + c2);
    cv::Mat den = (mu1_sq + mu2_sq + c1).mul(sig1 + sig2 + c2);
    cv::Mat map;
    cv::divide(num, den, map);
    benchmark::DoNotOptimize(cv::mean(map)[0]);
  }
  set_pixels(state, p.hr);
}
BENCHMARK(BM_SsimY512BasicSRAlgorithmOpenCV)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
#endif

static void BM_PsnrRgb512(benchmark::State& state) {
  if (test::golden_dir().empty()) return state.SkipWithError("golden data not found");
  const Pair& p = baby();
  Planes a = planes_from_image(p.hr_img), b = planes_from_image(p.sr_img);
  for (auto _ : state) benchmark::DoNotOptimize(psnr(a, b));
  set_pixels(state, a);
}
BENCHMARK(BM_PsnrRgb512)->Unit(benchmark::kMillisecond)->UseRealTime();

// Args: net (0 alex, 1 squeeze), batch, threads. 256x256 pairs.
static void BM_Lpips256(benchmark::State& state) {
  if (test::golden_dir().empty()) return state.SkipWithError("golden data not found");
  const bool alex = state.range(0) == 0;
  const std::string net = alex ? "alex" : "squeeze";
  static std::map<std::string, Lpips> models;
  if (!models.count(net)) {
    Checkpoint bb =
        Checkpoint::open(test::golden_path(alex ? "paired/lpips/backbone/alexnet_features_seed0.pt"
                                                : "paired/lpips/backbone/squeezenet1_1_features_seed1.pt"));
    Checkpoint lin = Checkpoint::open(test::golden_path("paired/lpips/weights_v0.1/" + net + ".pth"));
    models.emplace(net, Lpips::load(parse_lpips_net(net), bb, lin));
  }
  at::set_num_threads(static_cast<int>(state.range(2)));
  const Lpips& m = models.at(net);
  torch::manual_seed(0);
  auto a = torch::rand({state.range(1), 3, 256, 256}), b = torch::rand({state.range(1), 3, 256, 256});
  for (auto _ : state) benchmark::DoNotOptimize(m.distance(a, b));
  state.counters["pairs/s"] = benchmark::Counter(static_cast<double>(state.iterations() * state.range(1)),
                                                 benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Lpips256)
    ->Args({0, 1, 1})
    ->Args({0, 1, 2})
    ->Args({0, 8, 2})
    ->Args({1, 1, 2})
    ->Args({1, 8, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Args: arithmetic (0 uint8 two-pass, 1 float), threads. baby 512x512 -> 128x128.
static void BM_MatlabResizeDown4(benchmark::State& state) {
  if (test::golden_dir().empty()) return state.SkipWithError("golden data not found");
  at::set_num_threads(static_cast<int>(state.range(1)));
  const Image& hr = baby().hr_img;
  for (auto _ : state)
    benchmark::DoNotOptimize(state.range(0) == 0 ? matlab_imresize_uint8(hr, 0.25)
                                                 : matlab_imresize_float(hr, 0.25));
}
BENCHMARK(BM_MatlabResizeDown4)
    ->Args({0, 1})
    ->Args({1, 1})
    ->Args({1, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

BENCHMARK_MAIN();
