// numpy's legacy RandomState, only what the reference tools use: seeding with an integer and
// permutation()/choice(replace=False). torch-fidelity shuffles IS splits and draws KID subsets
// with RandomState(2020); reproducing the stream makes those numbers comparable.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace dmeval {

class NumpyRandomState {
 public:
  // numpy's mt19937_seed is MT19937's init_genrand, which std::mt19937's constructor implements.
  explicit NumpyRandomState(uint32_t seed) : mt_(seed) {}
  // RandomState.permutation(n): Fisher-Yates from the end with numpy's masked rejection sampling.
  std::vector<int64_t> permutation(int64_t n);
  // RandomState.choice(n, size, replace=False) == permutation(n)[:size].
  std::vector<int64_t> choice_without_replacement(int64_t n, int64_t size);

 private:
  uint64_t random_interval(uint64_t max);
  std::mt19937 mt_;
};

}  // namespace dmeval
