#include "generators/diffusion_model.h"

#include <fmt/format.h>

#include "core/error.h"
#include "generators/sample_images.h"
#include "generators/timestep_sequence.h"

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

torch::Tensor DiffusionModel::forward_blocks(const torch::Tensor&, const torch::Tensor&, const Conditioning&,
                                             std::vector<torch::Tensor>*) {
  fail("model {} (family {}) does not report its block outputs (BinaryDM's representation mimicking)", name(),
       family());
}

DiffusionSchedule DiffusionModel::schedule() const {
  return make_schedule(diffusion());
}

std::vector<std::string> DiffusionModel::samplers() const {
  return sampler_names();
}

void DiffusionModel::validate_sampler(const SamplerSpec& spec) const {
  dmeval::validate(spec);
}

std::string DiffusionModel::describe_sampler(const SamplerSpec& spec) const {
  return dmeval::describe(spec);
}

std::vector<int64_t> DiffusionModel::sampler_timesteps(const SamplerSpec& spec) const {
  std::vector<int64_t> seq = timestep_sequence(spec.skip_type, spec.steps, diffusion().num_timesteps);
  return {seq.rbegin(), seq.rend()};
}

torch::Tensor DiffusionModel::sample(const SamplerSpec& spec, const EpsModel& eps, torch::Tensor x_T,
                                     NoiseSource& noise, int64_t first, const StepObserver* observer,
                                     const QuantNoiseStd* quant_noise) const {
  return run_sampler(spec, schedule(), eps, std::move(x_T), noise, first, observer, quant_noise);
}

torch::Tensor DiffusionModel::to_uint8(const torch::Tensor& images, int64_t first_index) const {
  return samples_to_uint8(images, first_index);
}

std::string DiffusionModel::uint8_conversion() const {
  return "clamp((x + 1) / 2, 0, 1) * 255 + 0.5, truncated (torchvision save_image: round half up)";
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
