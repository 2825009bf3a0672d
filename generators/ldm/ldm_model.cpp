#include "generators/ldm/ldm_model.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "core/error.h"
#include "generators/ldm/vq_training.h"
#include "generators/sample_images.h"

namespace dmeval {

namespace {

// A fresh module of the same configuration with `src`'s parameters and buffers.
template <class Holder, class... Args>
Holder copy_module(const Holder& src, Args&&... args) {
  Holder c(std::forward<Args>(args)...);
  torch::NoGradGuard no_grad;
  auto p = src->named_parameters(true);
  for (auto& q : c->named_parameters(true)) q.value().copy_(p[q.key()]);
  auto b = src->named_buffers(true);
  for (auto& q : c->named_buffers(true)) q.value().copy_(b[q.key()]);
  c->to(p.begin()->value().device());
  c->eval();
  return c;
}

}  // namespace

LdmModel::LdmModel(LdmConfig config, LdmUNet unet, VqFirstStage first_stage, ClassEmbedder embedder,
                   LdmCheckpointInfo weights, int64_t random_seed, std::string uint8_conversion)
    : config_(std::move(config)),
      unet_(std::move(unet)),
      first_stage_(std::move(first_stage)),
      embedder_(std::move(embedder)),
      weights_(std::move(weights)),
      random_seed_(random_seed),
      uint8_conversion_(std::move(uint8_conversion)) {
  diffusion_.beta_schedule = "ldm-linear";
  diffusion_.beta_start = config_.linear_start;
  diffusion_.beta_end = config_.linear_end;
  diffusion_.num_timesteps = config_.timesteps;
  diffusion_.var_type = "fixedsmall";
  schedule_ = ldm_linear_schedule(config_.linear_start, config_.linear_end, config_.timesteps);
  const auto& conv = ldm_uint8_conversions();
  DMEVAL_CHECK(std::find(conv.begin(), conv.end(), uint8_conversion_) != conv.end(),
               "--uint8 {}: the ldm family converts with one of {}", uint8_conversion_,
               fmt::join(conv, ", "));
  unet_->eval();
  first_stage_->eval();
  if (embedder_) embedder_->eval();
}

std::shared_ptr<LdmModel> LdmModel::load(const ModelSpec& o) {
  LdmConfig config = resolve_ldm_config(o.config.empty() ? o.model : o.config);
  const std::string conversion = o.uint8_conversion.empty() ? "np" : o.uint8_conversion;
  if (o.checkpoint.empty() == (o.random_weights < 0))
    fail(
        "give the LDM weights with --checkpoint FILE (a latent-diffusion .ckpt holding the UNet, the first "
        "stage "
        "and the conditioning stage), or --random-weights SEED for random ones");
  if (o.random_weights >= 0) torch::manual_seed(static_cast<uint64_t>(o.random_weights));
  LdmUNet unet(config.unet);
  VqFirstStage first_stage(config.first_stage);
  ClassEmbedder embedder{nullptr};
  if (config.n_classes > 0) embedder = ClassEmbedder(config.n_classes, config.class_embed_dim);
  LdmCheckpointInfo weights;
  if (!o.checkpoint.empty()) {
    LdmParts parts{unet.get(), first_stage.get(), embedder ? embedder.get() : nullptr};
    weights = load_ldm_checkpoint(parts, o.checkpoint, config.use_ema && !o.no_ema, o.first_stage);
  } else if (!o.first_stage.empty()) {
    // A UNet to train: random weights on a trained first stage, loaded with its encoder (training
    // encodes the images).
    weights.first_stage_path = o.first_stage;
    first_stage = load_vq_autoencoder(config.first_stage, o.first_stage, &weights.first_stage_sha256);
  }
  return std::make_shared<LdmModel>(std::move(config), unet, first_stage, embedder, std::move(weights),
                                    o.random_weights, conversion);
}

std::string LdmModel::weights_id() const {
  return weights_.path.empty() ? fmt::format("random:{}", random_seed_) : weights_.sha256;
}

nlohmann::ordered_json LdmModel::identity() const {
  nlohmann::ordered_json j;
  j["architecture"] = describe_ldm_config(config_);
  j["weights"] = weights_id();
  if (!weights_.first_stage_sha256.empty()) j["first_stage_weights"] = weights_.first_stage_sha256;
  if (!weights_.path.empty()) j["ema_applied"] = weights_.ema_applied;
  j["uint8_conversion"] = uint8_conversion_;
  return j;
}

nlohmann::ordered_json LdmModel::describe() const {
  nlohmann::ordered_json j;
  j["model"] = config_.name;
  j["family"] = "ldm";
  j["config_source"] = config_.source;
  j["dataset"] = config_.dataset;
  j["architecture"] = describe_line();
  if (weights_.path.empty()) {
    j["weights"] = fmt::format("random (PyTorch default initialisation, seed {})", random_seed_);
  } else {
    j["checkpoint"] = weights_.path;
    j["checkpoint_sha256"] = weights_.sha256;
    j["checkpoint_bytes"] = weights_.size_bytes;
    j["checkpoint_format"] = weights_.format;
    j["known_file"] = weights_.known_file.empty() ? "no (not a known public file)" : weights_.known_file;
    j["ema_applied"] = weights_.ema_applied;
    if (weights_.global_step >= 0) j["global_step"] = weights_.global_step;
    if (!weights_.first_stage_path.empty()) {
      j["first_stage"] = weights_.first_stage_path;
      j["first_stage_sha256"] = weights_.first_stage_sha256;
    }
  }
  j["uint8_conversion"] = uint8_conversion();
  return j;
}

std::string LdmModel::describe_line() const {
  const LdmUNetConfig& u = config_.unet;
  const VqDecoderConfig& f = config_.first_stage;
  const int64_t factor = int64_t{1} << (f.ch_mult.size() - 1);
  return fmt::format(
      "LDM {}: UNet {}x{}x{} latents, {} channels x [{}], {}; VQ-f{} first stage ({} codes, {}x{} images){}",
      config_.name, u.in_channels, u.image_size, u.image_size, u.model_channels,
      fmt::join(u.channel_mult, ", "),
      u.use_spatial_transformer ? fmt::format("SpatialTransformer (context {})", u.context_dim)
                                : std::string("AttentionBlock"),
      factor, f.n_embed, f.resolution, f.resolution,
      config_.n_classes > 0
          ? fmt::format("; class-conditional ({} classes + the unconditional one)", config_.n_classes - 1)
          : std::string("; unconditional"));
}

std::vector<int64_t> LdmModel::sample_shape() const {
  return {config_.unet.in_channels, config_.unet.image_size, config_.unet.image_size};
}

std::vector<std::string> LdmModel::conditioning() const {
  if (config_.n_classes > 0) return {"class"};
  return {};
}

DiffusionSchedule LdmModel::schedule() const {
  DiffusionSchedule s;
  s.num_timesteps = schedule_.num_timesteps;
  torch::Tensor b = schedule_.betas_f64.contiguous();
  s.betas_f64.assign(b.data_ptr<double>(), b.data_ptr<double>() + b.numel());
  s.betas = schedule_.betas.clone();
  // Entry t + 1 is ᾱ_t (compute_alpha's convention); the LDM's ᾱ are float64 products rounded to float32.
  s.alphas_cumprod_ext = torch::cat({torch::ones({1}, torch::kFloat32), schedule_.alphas_cumprod});
  return s;
}

void LdmModel::validate_sampler(const SamplerSpec& spec) const {
  const std::vector<std::string> names = samplers();
  DMEVAL_CHECK(std::find(names.begin(), names.end(), spec.sampler) != names.end(),
               "--sampler {}: the ldm family samples with {} (latent-diffusion's samplers)", spec.sampler,
               fmt::join(names, " or "));
  DMEVAL_CHECK(spec.skip_type == "uniform",
               "--skip-type {}: the ldm family's samplers use latent-diffusion's uniform discretisation "
               "(range(0, T, T // S) + 1)",
               spec.skip_type);
  DMEVAL_CHECK(spec.steps >= 1 && spec.steps <= config_.timesteps, "--steps {} must be in 1..{}", spec.steps,
               config_.timesteps);
  DMEVAL_CHECK(spec.eta >= 0.0 && std::isfinite(spec.eta), "--eta {} must be a finite non-negative number",
               spec.eta);
  DMEVAL_CHECK(spec.sampler != "plms" || spec.eta == 0.0, "--sampler plms needs --eta 0 (got {})", spec.eta);
}

std::string LdmModel::describe_sampler(const SamplerSpec& spec) const {
  const int64_t n = static_cast<int64_t>(sampler_timesteps(spec).size());
  return spec.sampler == "plms"
             ? fmt::format("LDM PLMS (latent-diffusion plms.py), uniform {} steps", n)
             : fmt::format("LDM DDIM (latent-diffusion ddim.py), uniform {} steps, eta {}", n, spec.eta);
}

std::vector<int64_t> LdmModel::sampler_timesteps(const SamplerSpec& spec) const {
  validate_sampler(spec);
  std::vector<int64_t> t = ldm_ddim_constants(schedule_, spec.steps, 0.0).timesteps;
  return {t.rbegin(), t.rend()};
}

torch::Tensor LdmModel::sample(const SamplerSpec& spec, const EpsModel& eps, torch::Tensor x_T,
                               NoiseSource& noise, int64_t first, const StepObserver* observer,
                               const QuantNoiseStd* quant_noise) const {
  validate_sampler(spec);
  LdmDdimConstants c = ldm_ddim_constants(schedule_, spec.steps, spec.eta);
  if (quant_noise && *quant_noise && spec.eta != 0.0) {
    // PTQD's variance correction (generators §6.3, as the ddim family's DDIM applies it): ε̂ already
    // carries quantization noise of std σ_q(t), which reaches x_prev with the coefficient
    // D = sqrt(1 - ᾱ_prev - σ²) - sqrt(ᾱ_prev (1 - ᾱ) / ᾱ); the injected noise loses that variance,
    // σ' = sqrt(σ² - D² σ_q²) when positive, else 0. With η = 0 (PTQD's cin256 setting) σ is 0 and
    // nothing changes.
    c.sigmas = c.sigmas.clone();
    for (size_t i = 0; i < c.timesteps.size(); ++i) {
      const double q = (*quant_noise)(c.timesteps[i]);
      if (q <= 0) continue;
      const auto at = static_cast<int64_t>(i);
      const double a = c.alphas[at].item<double>(), ap = c.alphas_prev[at].item<double>(),
                   sg = c.sigmas[at].item<double>();
      const double d = std::sqrt(1.0 - ap - sg * sg) - std::sqrt(ap * (1.0 - a) / a);
      const double removed = d * d * q * q;
      c.sigmas[at] = std::sqrt(removed < sg * sg ? sg * sg - removed : 0.0);
    }
  }
  std::map<int64_t, int64_t> step_of;  // timestep -> step index (0 = the noisiest)
  const int64_t S = static_cast<int64_t>(c.timesteps.size());
  for (int64_t i = 0; i < S; ++i) step_of[c.timesteps[static_cast<size_t>(i)]] = S - 1 - i;
  LdmEps e = [&](const torch::Tensor& x, const torch::Tensor& t) {
    const int64_t tv = t[0].item<int64_t>();
    torch::Tensor out = eps(x, t.to(torch::kFloat32), step_of.at(tv));
    DMEVAL_CHECK(out.sizes() == x.sizes(), "the model returned shape [{}] for input [{}]",
                 fmt::join(out.sizes(), ", "), fmt::join(x.sizes(), ", "));
    return out;
  };
  const bool needed = spec.eta != 0.0;
  LdmNoise nz = [&](int64_t draw, c10::IntArrayRef shape) {
    return noise.step(draw, first, shape[0], shape.slice(1), needed);
  };
  LdmTrace trace;
  if (observer) {
    trace.on_step = [&](const LdmStep& s) {
      torch::Tensor t = torch::full({x_T.size(0)}, static_cast<float>(s.t),
                                    torch::dtype(torch::kFloat32).device(x_T.device()));
      (*observer)({s.k, s.t, s.t_prev, t, s.a_t, s.a_prev, s.eps, s.pred_x0, s.noise, s.x_prev});
    };
  }
  return spec.sampler == "plms" ? ldm_plms_sample(c, e, x_T, nz, observer ? &trace : nullptr)
                                : ldm_ddim_sample(c, e, x_T, nz, observer ? &trace : nullptr);
}

torch::Tensor LdmModel::to_uint8(const torch::Tensor& images, int64_t first_index) const {
  DMEVAL_CHECK(images.dim() == 4, "decoded images must be (N, C, H, W), got {} dimensions", images.dim());
  check_finite_samples(images, first_index);
  return ldm_images_to_uint8(images, uint8_conversion_).to(torch::kCPU).contiguous();
}

std::string LdmModel::uint8_conversion() const {
  if (uint8_conversion_ == "png")
    return "png: clamp(x, -1, 1), (x + 1) / 2 * 255, truncated (CompVis/q-diffusion custom_to_pil)";
  if (uint8_conversion_ == "ptqd")
    return "ptqd: clamp((x + 1) / 2, 0, 1), then ((u + 1) * 127.5).clamp(0, 255), truncated (PTQD's double "
           "mapping: every value in 127..255; a quirk)";
  return "np: ((x + 1) * 127.5).clamp(0, 255), truncated (CompVis/q-diffusion custom_to_np)";
}

void LdmModel::check_conditioning(const Conditioning& c) const {
  DMEVAL_CHECK(!c.context.defined() && !c.low_res.defined(),
               "model {} (family ldm) takes class labels only, no text context or low-resolution image",
               config_.name);
  if (config_.n_classes == 0) {
    DMEVAL_CHECK(c.empty(),
                 "model {} (family ldm) is unconditional: it takes no class labels and no guidance "
                 "(--conditioning none, --guidance 1)",
                 config_.name);
    return;
  }
  DMEVAL_CHECK(c.class_labels.defined(),
               "model {} is class-conditional ({} classes): give each image's class with --conditioning "
               "(class=C, per-class=N, uniform or uniform-runs=N)",
               config_.name, num_classes());
  // Labels 0..K-1, and K: the unconditional class of classifier-free guidance (the calibration data
  // of guided sampling holds those rows).
  if (c.class_labels.numel() > 0) {
    const int64_t lo = c.class_labels.min().item<int64_t>(), hi = c.class_labels.max().item<int64_t>();
    DMEVAL_CHECK(lo >= 0 && hi <= num_classes(),
                 "class label {} outside 0..{} of model {} ({} = unconditional)", lo < 0 ? lo : hi,
                 num_classes(), config_.name, num_classes());
  }
}

torch::Tensor LdmModel::network_eps(const torch::Tensor& x, const torch::Tensor& t, const Conditioning& c) {
  LdmUNet unet = unet_;
  if (!c.class_labels.defined()) return unet->forward(x, t);
  torch::Tensor labels = c.class_labels.to(x.device());
  torch::Tensor context = embedder_->forward(labels);
  torch::Tensor uc;
  if (c.guidance != 1.0) uc = embedder_->forward(torch::full_like(labels, config_.n_classes - 1));
  LdmNet net = [unet](const torch::Tensor& xx, const torch::Tensor& tt, const torch::Tensor& ctx) mutable {
    return unet->forward(xx, tt, ctx);
  };
  return ldm_guided_eps(net, context, uc, c.guidance)(x, t);
}

EpsModel LdmModel::eps(const UNetRunOptions& run, const Conditioning& c) {
  check_conditioning(c);
  prepare_device_arithmetic(run);
  to(run.device);
  decode_micro_batch_ = run.micro_batch;
  const Conditioning cond = c;
  return micro_batched_eps(
      [this, cond](const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& rows) {
        return network_eps(x, t, cond.class_labels.defined() ? cond.rows(rows) : cond);
      },
      run);
}

torch::Tensor LdmModel::forward(const torch::Tensor& x, const torch::Tensor& t, const Conditioning& c) {
  check_conditioning(c);
  return network_eps(x, t, c);
}

torch::Tensor LdmModel::forward_blocks(const torch::Tensor& x, const torch::Tensor& t, const Conditioning& c,
                                       std::vector<torch::Tensor>* blocks) {
  check_conditioning(c);
  DMEVAL_CHECK(c.guidance == 1.0, "block outputs are taken from one conditional pass (no guidance)");
  torch::Tensor context;
  if (c.class_labels.defined()) context = embedder_->forward(c.class_labels.to(x.device()));
  std::vector<std::pair<std::string, torch::Tensor>> trace;
  torch::Tensor eps = unet_->forward_traced(x, t, context, &trace);
  for (auto& [name, v] : trace)
    if (name.rfind("input_blocks.", 0) == 0 || name == "middle_block" || name.rfind("output_blocks.", 0) == 0)
      blocks->push_back(v);
  return eps;
}

torch::Tensor LdmModel::decode(const torch::Tensor& x0) {
  torch::NoGradGuard no_grad;
  // decode_first_stage: z = 1 / scale_factor * z, then the first stage's decode (quantizing).
  torch::Tensor z = (1.0 / config_.scale_factor) * x0;
  const int64_t n = z.size(0), m = std::max<int64_t>(1, decode_micro_batch_);
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < n; i += m) {
    torch::Tensor part = z.slice(0, i, std::min(n, i + m));
    const int64_t k = part.size(0);
    if (k < m) part = torch::cat({part, part.slice(0, k - 1, k).expand({m - k, -1, -1, -1})});
    out.push_back(first_stage_->decode(part).images.slice(0, 0, k));
  }
  return torch::cat(out);
}

torch::Tensor LdmModel::encode(const torch::Tensor& images) {
  if (!first_stage_->has_encoder()) {
    // Sampling loads the decode path only; training (DDPM, BinaryDM) needs the encoder: read the whole
    // first stage from the file its decoder came from (released .ckpt files hold it), checked to be the
    // same file.
    const std::string path = weights_.first_stage_path.empty() ? weights_.path : weights_.first_stage_path;
    DMEVAL_CHECK(
        !path.empty(),
        "model {}: its first stage has random weights; training needs a trained encoder: --random-weights "
        "SEED --first-stage FILE with a first stage trained by `dmeval train-vq`",
        config_.name);
    std::string sha;
    VqFirstStage full = load_vq_autoencoder(config_.first_stage, path, &sha);
    const std::string want =
        weights_.first_stage_path.empty() ? weights_.sha256 : weights_.first_stage_sha256;
    DMEVAL_CHECK(want.empty() || sha == want, "{}: the file changed since the model was loaded", path);
    full->to(images.device());
    full->eval();
    first_stage_ = full;
  }
  // encode_first_stage, then get_first_stage_encoding: scale_factor * z (VQModelInterface.encode returns
  // the latent before quantization).
  return config_.scale_factor * first_stage_->encode(images);
}

std::shared_ptr<DiffusionModel> LdmModel::clone() const {
  // The first stage is shared (no method or training changes it); the class embedder is copied (LDM
  // training trains it with the UNet).
  ClassEmbedder embedder{nullptr};
  if (embedder_) embedder = copy_module(embedder_, embedder_->n_classes, embedder_->embed_dim);
  return std::make_shared<LdmModel>(config_, copy_module(unet_, config_.unet), first_stage_, embedder,
                                    weights_, random_seed_, uint8_conversion_);
}

void LdmModel::save_weights(const std::string& path, const std::map<std::string, std::string>& metadata) {
  save_ldm_checkpoint({unet_.get(), first_stage_.get(), embedder_ ? embedder_.get() : nullptr}, path,
                      metadata);
}

void LdmModel::load_weights(const std::string& path) {
  load_ldm_checkpoint({unet_.get(), first_stage_.get(), embedder_ ? embedder_.get() : nullptr}, path, false);
}

void LdmModel::to(torch::Device device) {
  unet_->to(device);
  first_stage_->to(device);
  if (embedder_) embedder_->to(device);
}

ModelFamily ldm_family() {
  ModelFamily f;
  f.name = "ldm";
  f.description =
      "CompVis latent-diffusion (LDM-4 with the VQ-f4 first stage): presets or a LatentDiffusion .yaml/.json "
      "config";
  f.presets = ldm_preset_names();
  f.accepts = [](const ModelSpec& s) {
    if (!s.config.empty()) return looks_like_ldm_config(s.config);
    for (const auto& n : ldm_preset_names())
      if (n == s.model) return true;
    return looks_like_ldm_config(s.model);
  };
  f.load = [](const ModelSpec& s) -> std::shared_ptr<DiffusionModel> { return LdmModel::load(s); };
  return f;
}

}  // namespace dmeval
