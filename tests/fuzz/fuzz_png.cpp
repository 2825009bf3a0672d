// PNG decoder (libpng behind dmeval's PIL-compatible conversion rules).
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "core/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  dmeval::ImageLimits limits;
  limits.max_pixels = 1 << 22;  // keep each run fast; the limit path itself is exercised too
  try {
    (void)dmeval::decode_png("fuzz.png", data, size, limits);
  } catch (const dmeval::Error&) {
  }
  return 0;
}
