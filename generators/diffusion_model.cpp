#include "generators/diffusion_model.h"

#include <fmt/format.h>

#include "core/error.h"

namespace dmeval {

Conditioning Conditioning::rows(const torch::Tensor& r) const {
  Conditioning c;
  c.guidance = guidance;
  auto pick = [&](const torch::Tensor& t) { return t.defined() ? t.index_select(0, r.to(t.device())) : t; };
  c.class_labels = pick(class_labels);
  c.context = pick(context);
  c.low_res = pick(low_res);
  return c;
}

void DiffusionModel::set_split_shortcut(bool on) {
  DMEVAL_CHECK(!on,
               "model {} (family {}) has no concatenating shortcut layers to split (q-diffusion's split)",
               name(), family());
}

void DiffusionModel::save_weights(const std::string& path, const std::map<std::string, std::string>&) {
  fail("model {} (family {}) cannot write training checkpoints ({})", name(), family(), path);
}

void DiffusionModel::load_weights(const std::string& path) {
  fail("model {} (family {}) cannot read training checkpoints ({})", name(), family(), path);
}

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
