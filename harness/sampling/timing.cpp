#include "harness/sampling/timing.h"

#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace dmeval {

double percentile(std::vector<double> v, double q) {
  DMEVAL_CHECK(!v.empty(), "no timings");
  std::sort(v.begin(), v.end());
  const double pos = q / 100.0 * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

TimingStats summarize_ms(const std::vector<double>& ms) {
  TimingStats s;
  s.repeats = static_cast<int64_t>(ms.size());
  s.median_ms = percentile(ms, 50);
  s.p10_ms = percentile(ms, 10);
  s.p90_ms = percentile(ms, 90);
  s.mean_ms = std::accumulate(ms.begin(), ms.end(), 0.0) / static_cast<double>(ms.size());
  s.min_ms = *std::min_element(ms.begin(), ms.end());
  return s;
}

TimingStats time_repeated(const std::function<void()>& work, int64_t warmup, int64_t repeats,
                          const torch::Device& device) {
  DMEVAL_CHECK(repeats >= 1 && warmup >= 0, "repeats must be at least 1 and warm-up non-negative");
  auto sync = [&] {
    if (device.is_cuda()) torch::cuda::synchronize(device.has_index() ? device.index() : -1);
  };
  for (int64_t i = 0; i < warmup; ++i) work();
  sync();
  std::vector<double> ms;
  for (int64_t i = 0; i < repeats; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    work();
    sync();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return summarize_ms(ms);
}

}  // namespace dmeval
