#include "generators/diffusion_producer.h"

#include <torch/torch.h>

#include "core/torch_bridge.h"
#include "generators/sample_images.h"

namespace dmeval {

DiffusionImageProducer::DiffusionImageProducer(EpsModel model, DiffusionSchedule schedule,
                                               SamplerSpec sampler, std::unique_ptr<NoiseSource> noise,
                                               std::vector<int64_t> image_shape, torch::Device device,
                                               bool keep_raw, QuantNoiseStd quant_noise,
                                               std::function<torch::Tensor(const torch::Tensor&)> decode)
    : model_(std::move(model)),
      schedule_(std::move(schedule)),
      sampler_(std::move(sampler)),
      noise_(std::move(noise)),
      shape_(std::move(image_shape)),
      device_(device),
      keep_raw_(keep_raw),
      quant_noise_(std::move(quant_noise)),
      decode_(std::move(decode)) {
  validate(sampler_);
}

DiffusionImageProducer::DiffusionImageProducer(std::shared_ptr<DiffusionModel> model, EpsModel eps,
                                               SamplerSpec sampler, std::unique_ptr<NoiseSource> noise,
                                               torch::Device device, bool keep_raw, QuantNoiseStd quant_noise)
    : model_(std::move(eps)),
      family_model_(std::move(model)),
      sampler_(std::move(sampler)),
      noise_(std::move(noise)),
      shape_(family_model_->sample_shape()),
      device_(device),
      keep_raw_(keep_raw),
      quant_noise_(std::move(quant_noise)) {
  family_model_->validate_sampler(sampler_);
}

void DiffusionImageProducer::set_conditioning(std::shared_ptr<const ConditioningSource> source,
                                              std::function<EpsModel(const Conditioning&)> eps_for) {
  conditioning_ = std::move(source);
  eps_for_ = std::move(eps_for);
}

ImageBatch DiffusionImageProducer::produce(int64_t first, int64_t count) {
  torch::NoGradGuard no_grad;
  torch::Tensor x = noise_->initial(first, count, shape_).to(device_);
  const bool conditional = conditioning_ && !conditioning_->empty();
  EpsModel model = conditional ? eps_for_(conditioning_->images(first, count)) : model_;
  ImageBatch b;
  b.first_index = first;
  torch::Tensor x0;
  if (family_model_) {
    x0 = family_model_->decode(
        family_model_->sample(sampler_, model, x, *noise_, first, nullptr, &quant_noise_));
    b.images = uint8_to_images(family_model_->to_uint8(x0, first));
  } else {
    x0 = run_sampler(sampler_, schedule_, model, x, *noise_, first, nullptr, &quant_noise_);
    if (decode_) x0 = decode_(x0);
    b.images = samples_to_images(x0, first);
  }
  if (keep_raw_) b.raw = from_torch(x0.to(torch::kCPU).contiguous());
  return b;
}

}  // namespace dmeval
