// Philox4x32-10 (Salmon, Moraes, Dror, Shaw: "Parallel random numbers: as easy as 1, 2, 3", SC 2011),
// the counter-based generator behind dmeval's per-image noise. Written here rather than taken from
// libtorch because libtorch's Philox is CUDA-only and its CPU generator (mt19937) keys on 32 bits
// and draws normals in size-dependent batches, so neither gives noise that depends only on
// (seed, image, step) on every device.
#pragma once

#include <array>
#include <cstdint>

namespace dmeval {

using PhiloxCounter = std::array<uint32_t, 4>;
using PhiloxKey = std::array<uint32_t, 2>;

// Ten rounds of the Philox4x32 bijection of `counter` under `key`.
PhiloxCounter philox4x32_10(PhiloxCounter counter, PhiloxKey key);

// Standard normals by the Box-Muller transform of two 32-bit words in float64, rounded to float32:
// u = (word + 0.5) / 2^32, r = sqrt(-2 ln u1), z0 = r cos(2 pi u2), z1 = r sin(2 pi u2).
void box_muller(uint32_t w1, uint32_t w2, float* z0, float* z1);

}  // namespace dmeval
