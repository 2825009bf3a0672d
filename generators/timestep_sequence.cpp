#include "generators/timestep_sequence.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>

#include "core/error.h"

namespace dmeval {

const std::vector<std::string>& skip_type_names() {
  static const std::vector<std::string> kNames = {"uniform", "quad"};
  return kNames;
}

std::vector<int64_t> timestep_sequence(const std::string& skip_type, int64_t steps, int64_t T) {
  DMEVAL_CHECK(steps >= 1 && steps <= T, "--steps {} must be between 1 and the {} diffusion timesteps", steps,
               T);
  std::vector<int64_t> seq;
  if (skip_type == "uniform") {
    const int64_t skip = T / steps;
    for (int64_t t = 0; t < T; t += skip) seq.push_back(t);
  } else if (skip_type == "quad") {
    // numpy.linspace(0, sqrt(T * 0.8), S) ** 2, then int(): i * step + 0, last element = stop.
    const double stop = std::sqrt(static_cast<double>(T) * 0.8);
    const double step = steps > 1 ? stop / static_cast<double>(steps - 1) : 0.0;
    for (int64_t i = 0; i < steps; ++i) {
      double v = (steps > 1 && i == steps - 1) ? stop : static_cast<double>(i) * step + 0.0;
      seq.push_back(static_cast<int64_t>(v * v));
    }
  } else {
    fail("unknown skip type '{}': one of {}", skip_type, fmt::join(skip_type_names(), ", "));
  }
  return seq;
}

std::vector<std::pair<int64_t, int64_t>> timestep_pairs(const std::vector<int64_t>& seq) {
  std::vector<std::pair<int64_t, int64_t>> pairs;
  for (size_t k = seq.size(); k-- > 0;) pairs.emplace_back(seq[k], k == 0 ? -1 : seq[k - 1]);
  return pairs;
}

}  // namespace dmeval
