// The timesteps a sampler visits (ddim `Diffusion.sample_image`, spec generators.md §4.1).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace dmeval {

// `uniform`: range(0, T, T // S) (can hold more than S values: S = 30 gives 31);
// `quad`: int(v) for v in linspace(0, sqrt(0.8 T), S) ** 2 (float64, truncated; values can repeat).
std::vector<int64_t> timestep_sequence(const std::string& skip_type, int64_t steps, int64_t T);
const std::vector<std::string>& skip_type_names();

// (t, t_next) in execution order: zip(reversed(seq), reversed([-1] + seq[:-1])).
std::vector<std::pair<int64_t, int64_t>> timestep_pairs(const std::vector<int64_t>& seq);

}  // namespace dmeval
