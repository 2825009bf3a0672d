#include "generators/philox.h"

#include <cmath>

namespace dmeval {

PhiloxCounter philox4x32_10(PhiloxCounter c, PhiloxKey k) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;  // multipliers
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;  // Weyl key increments
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kM0) * c[0];
    const uint64_t p1 = static_cast<uint64_t>(kM1) * c[2];
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    c = {hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0};
    k[0] += kW0;
    k[1] += kW1;
  }
  return c;
}

void box_muller(uint32_t w1, uint32_t w2, float* z0, float* z1) {
  constexpr double kScale = 1.0 / 4294967296.0;  // 2^-32
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  const double u1 = (static_cast<double>(w1) + 0.5) * kScale;
  const double u2 = (static_cast<double>(w2) + 0.5) * kScale;
  const double r = std::sqrt(-2.0 * std::log(u1));
  *z0 = static_cast<float>(r * std::cos(kTwoPi * u2));
  *z1 = static_cast<float>(r * std::sin(kTwoPi * u2));
}

}  // namespace dmeval
