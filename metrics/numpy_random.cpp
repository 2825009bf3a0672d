#include "metrics/numpy_random.h"

#include <numeric>

#include "core/error.h"

namespace dmeval {

uint64_t NumpyRandomState::random_interval(uint64_t max) {
  if (max == 0) return 0;
  uint64_t mask = max;
  mask |= mask >> 1;
  mask |= mask >> 2;
  mask |= mask >> 4;
  mask |= mask >> 8;
  mask |= mask >> 16;
  mask |= mask >> 32;
  uint64_t value;
  if (max <= 0xffffffffULL) {
    while ((value = (mt_() & mask)) > max) {
    }
  } else {
    // numpy's next_uint64 for MT19937: two 32-bit draws, high word first.
    while ((value = (((static_cast<uint64_t>(mt_()) << 32) | mt_()) & mask)) > max) {
    }
  }
  return value;
}

std::vector<int64_t> NumpyRandomState::permutation(int64_t n) {
  if (n < 0) fail("permutation of a negative size");
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  for (int64_t i = n - 1; i >= 1; --i) std::swap(v[i], v[random_interval(static_cast<uint64_t>(i))]);
  return v;
}

std::vector<int64_t> NumpyRandomState::choice_without_replacement(int64_t n, int64_t size) {
  if (size > n) fail("cannot take a sample of {} without replacement from {}", size, n);
  std::vector<int64_t> p = permutation(n);
  p.resize(static_cast<size_t>(size));
  return p;
}

}  // namespace dmeval
