// CIFAR-10 batch reader (python pickle with numpy records, or binary records).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/byte_source.h"
#include "core/cifar10.h"
#include "core/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  dmeval::MemorySource src("fuzz_batch", std::vector<uint8_t>(data, data + size));
  try {
    dmeval::Cifar10Batch b = dmeval::read_cifar10_batch(src);
    if (b.count > 0) (void)b.image(b.count - 1);
  } catch (const dmeval::Error&) {
  }
  return 0;
}
