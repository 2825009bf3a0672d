// NumPy .npy and .npz readers.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "core/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> bytes(data, data + size);
  try {
    dmeval::MemorySource src("fuzz.npy", bytes);
    (void)dmeval::read_npy(src);
  } catch (const dmeval::Error&) {
  }
  try {
    auto z = dmeval::NpzReader::from_memory("fuzz.npz", bytes);
    for (const auto& n : z.names()) {
      try {
        (void)z.read(n);
      } catch (const dmeval::Error&) {
      }
    }
  } catch (const dmeval::Error&) {
  }
  return 0;
}
