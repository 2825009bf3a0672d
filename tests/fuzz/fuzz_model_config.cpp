// The ddim .yml model config reader (generators/unet_config): any bytes give a config or a
// dmeval::Error, never a crash or an uncaught yaml-cpp exception.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "generators/ddim/unet_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    (void)dmeval::parse_ddim_yaml(std::string(reinterpret_cast<const char*>(data), size), "fuzz.yml");
  } catch (const dmeval::Error&) {
  }
  return 0;
}
