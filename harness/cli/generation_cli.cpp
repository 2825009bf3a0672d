#include "harness/cli/generation_cli.h"

#include <torch/torch.h>

#include <algorithm>

#include "core/error.h"
#include "generators/conditioning_source.h"
#include "generators/model_cost.h"
#include "generators/timestep_sequence.h"

namespace dmeval::cli {

const OptionTable<SamplerSpec>& sampler_option_table() {
  static const OptionTable<SamplerSpec> table = [] {
    OptionTable<SamplerSpec> t;
    t.add("--sampler", &SamplerSpec::sampler,
          "ddim-unet family: ddim (generalized_steps) or ddpm (ddpm_steps); ldm family: ddim or plms "
          "(latent-diffusion's samplers)",
          kDefaultTraits, {"ddim", "ddpm", "plms"});
    t.add("--skip-type", &SamplerSpec::skip_type, "timestep sequence: uniform or quad", kDefaultTraits,
          {"uniform", "quad"});
    t.add("--steps", &SamplerSpec::steps, "sampler steps (--timesteps of ddim)");
    t.add("--eta", &SamplerSpec::eta, "DDIM eta (0 = deterministic)");
    return t;
  }();
  return table;
}

const OptionTable<GenerationOptions>& generation_option_table() {
  static const OptionTable<GenerationOptions> table = [] {
    OptionTable<GenerationOptions> t;
    t.include(model_option_table(), &GenerationOptions::model);
    t.include(quant_option_table(), &GenerationOptions::quant);
    t.include(sampler_option_table(), &GenerationOptions::sampler);
    t.add("--samples", &GenerationOptions::samples, "number of generated images (exactly this many)");
    t.add("--batch", &GenerationOptions::batch,
          "images sampled together (memory; results do not depend on it)");
    t.add("--micro-batch", &GenerationOptions::micro_batch,
          "images per network evaluation; results are byte-identical for any --batch and shard layout at a "
          "fixed micro-batch (recorded)");
    t.add("--chunk", &GenerationOptions::chunk,
          "images per resumable chunk (rounded up to a multiple of --batch)");
    t.add("--seed", &GenerationOptions::seed, "noise seed (per-image noise)");
    t.add("--device", &GenerationOptions::device,
          "cpu or cuda[:N] (sampling and, in run, the feature network)");
    t.add("--conditioning", &GenerationOptions::conditioning,
          "each image's conditioning, by image index: none, class=C, per-class=N, uniform, uniform-runs=N "
          "(default: none for unconditional models; class-conditional models need one)",
          kDefaultTraits, {}, false);
    t.add("--guidance", &GenerationOptions::guidance,
          "classifier-free guidance scale (1 = none; conditional families only)");
    t.add("--calib-conditioning", &GenerationOptions::calib_conditioning,
          "conditioning of the calibration trajectories, by calibration image index, in --conditioning's "
          "syntax (default: the run's; PTQD's cin256 calibration: per-class=4 with traj_images=4000); "
          "recorded with the calibration",
          kDefaultTraits, {}, false);
    return t;
  }();
  return table;
}

EpsModel GenerationPipeline::eps(const Conditioning& c) const {
  return quant ? quant->model->eps(c) : model.model->eps(run, c);
}

Conditioning GenerationPipeline::conditioning_for(int64_t first, int64_t count) const {
  if (!conditioning || conditioning->empty()) return {};
  Conditioning c = conditioning->images(first, count);
  c.guidance = guidance;
  return c;
}

QuantNoiseStd GenerationPipeline::quant_noise() const {
  return quant ? quant->model->quant_noise_std() : QuantNoiseStd{};
}

std::unique_ptr<DiffusionImageProducer> GenerationPipeline::producer(const SamplerSpec& sampler,
                                                                     std::unique_ptr<NoiseSource> noise,
                                                                     bool keep_raw) const {
  std::shared_ptr<DiffusionModel> m = model.model;
  const bool conditional = conditioning && !conditioning->empty();
  // A conditional model's network is made per batch, for that batch's conditioning (below).
  auto p = std::make_unique<DiffusionImageProducer>(m, conditional ? EpsModel{} : eps(), sampler,
                                                    std::move(noise), device, keep_raw, quant_noise());
  if (conditional) {
    QuantizedModel* q = quant ? quant->model.get() : nullptr;  // owned by this pipeline, which outlives it
    const UNetRunOptions r = run;
    const double s = guidance;
    p->set_conditioning(conditioning, [m, q, r, s](Conditioning c) {
      c.guidance = s;
      return q ? q->eps(c) : m->eps(r, c);
    });
  }
  return p;
}

GenerationPipeline build_generation(const GenerationOptions& o, const LogLine& log,
                                    const GenerationBuild& b) {
  DMEVAL_CHECK(o.batch >= 1 && o.micro_batch >= 1, "--batch and --micro-batch must be at least 1");
  // Unknown methods (listing the valid ones) and unsupported bits fail before any work.
  check_method_bits(quant_method(o.quant.method), parse_bits(o.quant.bits));
  GenerationPipeline p;
  p.device = parse_device(o.device);
  p.model = load_model(o.model);
  p.model.model->validate_sampler(o.sampler);  // the family's samplers (before any work)
  p.schedule = p.model.model->schedule();
  p.timesteps = p.model.model->sampler_timesteps(o.sampler);
  std::reverse(p.timesteps.begin(), p.timesteps.end());
  p.sample_shape = p.model.model->sample_shape();
  const DiffusionModel& dm = *p.model.model;
  const std::string cond = o.conditioning.empty() ? default_conditioning(dm) : o.conditioning;
  p.conditioning = make_conditioning_source(cond, static_cast<uint64_t>(o.seed), dm.num_classes());
  DMEVAL_CHECK(!p.conditioning->empty() || dm.conditioning().empty(),
               "model {} (family {}) needs conditioning ({}): --conditioning none cannot sample it",
               dm.name(), dm.family(), fmt::join(dm.conditioning(), ", "));
  DMEVAL_CHECK(o.guidance == 1.0 || !p.conditioning->empty(),
               "--guidance {} needs a conditional model and --conditioning (model {} is unconditional)",
               o.guidance, dm.name());
  p.guidance = o.guidance;
  p.run.device = p.device;
  p.run.micro_batch = o.micro_batch;
  p.run.channels_last = b.channels_last;
  const bool quantize = b.always_quantize || o.quant.method != "fp" || !o.quant.calibration.empty() ||
                        !o.quant.import_qdiff.empty();
  if (!quantize) {
    if (b.keep_float_copy) p.float_model = p.model.model;
    p.size_mb = model_size_bytes(p.model.model->network(), [](const LayerInfo&) { return 32.0; }) / 1e6;
    return p;
  }
  // The model on its device and layout before the method sees it.
  p.model.model->eps(p.run, p.conditioning_for(0, 1));
  // The size counts the float layers, whatever the method attaches.
  std::shared_ptr<DiffusionModel> fp = p.model.model->clone();
  if (b.keep_float_copy) p.float_model = fp;
  std::function<Conditioning(int64_t, int64_t)> calib_conditioning;
  std::string calib_conditioning_text;
  DMEVAL_CHECK(o.calib_conditioning.empty() || !p.conditioning->empty(),
               "--calib-conditioning {} needs a conditional model and --conditioning", o.calib_conditioning);
  if (!p.conditioning->empty()) {
    // Calibration images take the run's conditioning rule (by image index), or their own, and the
    // run's guidance.
    std::shared_ptr<const ConditioningSource> source =
        o.calib_conditioning.empty()
            ? p.conditioning
            : make_conditioning_source(o.calib_conditioning, static_cast<uint64_t>(o.seed), dm.num_classes());
    DMEVAL_CHECK(!source->empty(), "--calib-conditioning none: model {} needs conditioning", dm.name());
    const double s = p.guidance;
    calib_conditioning = [source, s](int64_t first, int64_t n) {
      Conditioning c = source->images(first, n);
      c.guidance = s;
      return c;
    };
    calib_conditioning_text = fmt::format("{}, guidance {}", source->describe(), s);
  }
  p.quant = prepare_quantized(p.model, o.quant, p.run, log, b.calibrate_on_sampler ? &o.sampler : nullptr,
                              calib_conditioning, calib_conditioning_text);
  QuantizedModel& q = *p.quant->model;
  p.size_mb = model_size_bytes(fp->network(), [&](const LayerInfo& l) { return q.weight_bits(l); }) / 1e6;
  p.scale_bytes = q.scale_bytes();
  return p;
}

}  // namespace dmeval::cli
