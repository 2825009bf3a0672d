// A diffusion sampler as an ImageProducer: x_T and step noise from a NoiseSource, the network through
// an EpsModel (conditional models: per batch, from a ConditioningSource), the schedule and sampler of the
// run, the reference's 8-bit conversion. The harness pulls batches of global image indices from it
// (harness/chunk_runner) without knowing what it is.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "core/image_sink.h"
#include "generators/beta_schedule.h"
#include "generators/conditioning_source.h"
#include "generators/diffusion_model.h"
#include "generators/noise_source.h"
#include "generators/samplers.h"

namespace dmeval {

class DiffusionImageProducer : public ImageProducer {
 public:
  // A model of any family: its samplers, schedule, sample shape, decoding and uint8 conversion, with
  // `eps` as its network (the float model's or a quantized one's).
  DiffusionImageProducer(std::shared_ptr<DiffusionModel> model, EpsModel eps, SamplerSpec sampler,
                         std::unique_ptr<NoiseSource> noise, torch::Device device, bool keep_raw,
                         QuantNoiseStd quant_noise = {});
  // The ddim samplers on a bare network (tests and tools that build a UNet themselves).
  DiffusionImageProducer(EpsModel model, DiffusionSchedule schedule, SamplerSpec sampler,
                         std::unique_ptr<NoiseSource> noise, std::vector<int64_t> image_shape,
                         torch::Device device, bool keep_raw, QuantNoiseStd quant_noise = {},
                         std::function<torch::Tensor(const torch::Tensor&)> decode = {});
  // Conditional models: each batch's conditioning from `source` (by image index), and the network for
  // it from `eps_for` (instead of the fixed model given to the constructor).
  void set_conditioning(std::shared_ptr<const ConditioningSource> source,
                        std::function<EpsModel(const Conditioning&)> eps_for);
  ImageBatch produce(int64_t first, int64_t count) override;
  bool sequential() const override { return noise_->sequential(); }
  std::vector<uint8_t> state() const override { return noise_->state(); }
  void restore(const std::vector<uint8_t>& state) override { noise_->restore(state); }
  const NoiseSource& noise() const { return *noise_; }

 private:
  EpsModel model_;
  std::shared_ptr<DiffusionModel> family_model_;  // null: the ddim samplers on schedule_
  DiffusionSchedule schedule_;
  SamplerSpec sampler_;
  std::unique_ptr<NoiseSource> noise_;
  std::vector<int64_t> shape_;
  torch::Device device_;
  bool keep_raw_;
  QuantNoiseStd quant_noise_;
  std::function<torch::Tensor(const torch::Tensor&)> decode_;  // x_0 -> images in [-1, 1] (latent models)
  std::shared_ptr<const ConditioningSource> conditioning_;
  std::function<EpsModel(const Conditioning&)> eps_for_;
};

}  // namespace dmeval
