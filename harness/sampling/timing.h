// Repeated timings of a piece of work: warm-up runs excluded, then the median and the 10th/90th
// percentiles (linear interpolation, as numpy.percentile) of the repeats. On CUDA every repeat is
// bracketed by device synchronisation, so the time is that of the finished work.
#pragma once

#include <torch/types.h>

#include <functional>
#include <vector>

namespace dmeval {

struct TimingStats {
  int64_t repeats = 0;
  double median_ms = 0, p10_ms = 0, p90_ms = 0, mean_ms = 0, min_ms = 0;
};

double percentile(std::vector<double> values, double q);  // q in [0, 100]
TimingStats summarize_ms(const std::vector<double>& ms);
TimingStats time_repeated(const std::function<void()>& work, int64_t warmup, int64_t repeats,
                          const torch::Device& device);

}  // namespace dmeval
