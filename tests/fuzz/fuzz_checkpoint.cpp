// Checkpoint reader (restricted unpickler, torch legacy and zip containers, safetensors): any
// input must either parse or throw dmeval::Error; no crash, leak, hang or unbounded allocation.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/checkpoint.h"
#include "core/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    dmeval::CheckpointOptions opt;
    opt.opaque_objects = size > 0 && (data[size - 1] & 1);
    auto ck = dmeval::Checkpoint::from_memory("fuzz", std::vector<uint8_t>(data, data + size), opt);
    for (const auto& e : ck.tensors()) {
      try {
        (void)ck.read(e.value);
      } catch (const dmeval::Error&) {
      }
    }
    (void)ck.contains("state_dict/x");
  } catch (const dmeval::Error&) {
  }
  return 0;
}
