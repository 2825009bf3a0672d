#include "generators/diffusion_model.h"

#include <fmt/format.h>

#include "core/error.h"

namespace dmeval {

std::vector<std::string> model_family_names() {
  std::vector<std::string> n;
  for (const auto& f : model_families()) n.push_back(f.name);
  return n;
}

const ModelFamily& model_family(const std::string& name) {
  for (const auto& f : model_families())
    if (f.name == name) return f;
  fail("unknown model family '{}' (families: {})", name, fmt::join(model_family_names(), ", "));
}

std::shared_ptr<DiffusionModel> load_diffusion_model(const ModelSpec& spec) {
  if (!spec.family.empty()) return model_family(spec.family).load(spec);
  for (const auto& f : model_families())
    if (f.accepts(spec)) return f.load(spec);
  std::string known;
  for (const auto& f : model_families())
    known += fmt::format("\n  {}: {} (presets: {})", f.name, f.description, fmt::join(f.presets, ", "));
  fail("no model family reads --model '{}'{}; the families:{}", spec.model,
       spec.config.empty() ? "" : " --config " + spec.config, known);
}

}  // namespace dmeval
