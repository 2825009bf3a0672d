// The latent-diffusion config reader (generators/ldm/ldm_config: the LatentDiffusion tree from YAML or
// JSON): any bytes give a config or a dmeval::Error, never a crash or an uncaught library exception.
// Text starting with '{' is read as JSON, anything else as YAML (as a .json / .yaml file would be).
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "generators/ldm/ldm_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const bool json = !text.empty() && text[0] == '{';
  try {
    (void)dmeval::parse_ldm_config_text(text, json ? "fuzz.json" : "fuzz.yaml", json);
  } catch (const dmeval::Error&) {
  }
  return 0;
}
