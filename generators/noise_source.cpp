#include "generators/noise_source.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <cstring>

#include "core/error.h"
#include "generators/philox.h"

namespace dmeval {

namespace {
void fill_per_image_noise(float* dst, int64_t numel, uint64_t seed, int64_t image, int64_t slot) {
  const PhiloxKey key = {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
  const auto img = static_cast<uint64_t>(image);
  for (int64_t block = 0; block * 4 < numel; ++block) {
    PhiloxCounter w = philox4x32_10({static_cast<uint32_t>(block), static_cast<uint32_t>(slot),
                                     static_cast<uint32_t>(img), static_cast<uint32_t>(img >> 32)},
                                    key);
    float z[4];
    box_muller(w[0], w[1], &z[0], &z[1]);
    box_muller(w[2], w[3], &z[2], &z[3]);
    const int64_t base = block * 4;
    for (int64_t m = 0; m < 4 && base + m < numel; ++m) dst[base + m] = z[m];
  }
}
}  // namespace

torch::Tensor per_image_noise(uint64_t seed, int64_t image, int64_t slot, c10::IntArrayRef shape) {
  torch::Tensor out = torch::empty(shape, torch::kFloat32);
  fill_per_image_noise(out.data_ptr<float>(), out.numel(), seed, image, slot);
  return out;
}

namespace {

std::vector<int64_t> batch_shape(int64_t n, c10::IntArrayRef image_shape) {
  std::vector<int64_t> s = {n};
  s.insert(s.end(), image_shape.begin(), image_shape.end());
  return s;
}

class PerImageNoise : public NoiseSource {
 public:
  explicit PerImageNoise(uint64_t seed) : seed_(seed) {}
  std::string name() const override { return "per-image"; }
  std::string describe() const override {
    return fmt::format("per-image Philox4x32-10 noise, seed {}", seed_);
  }
  torch::Tensor initial(int64_t first, int64_t n, c10::IntArrayRef shape) override {
    return draw(0, first, n, shape);
  }
  torch::Tensor step(int64_t step, int64_t first, int64_t n, c10::IntArrayRef shape, bool needed) override {
    if (!needed) return torch::zeros(batch_shape(n, shape), torch::kFloat32);
    return draw(step + 1, first, n, shape);
  }

 private:
  torch::Tensor draw(int64_t slot, int64_t first, int64_t n, c10::IntArrayRef shape) {
    torch::Tensor out = torch::empty(batch_shape(n, shape), torch::kFloat32);
    const int64_t per_image = n > 0 ? out.numel() / n : 0;
    float* dst = out.data_ptr<float>();
    at::parallel_for(0, n, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i)
        fill_per_image_noise(dst + i * per_image, per_image, seed_, first + i, slot);
    });
    return out;
  }
  uint64_t seed_;
};

class ReferenceNoise : public NoiseSource {
 public:
  explicit ReferenceNoise(uint64_t seed)
      : seed_(seed), gen_(at::make_generator<at::CPUGeneratorImpl>(seed)) {}
  std::string name() const override { return "reference"; }
  std::string describe() const override {
    return fmt::format("reference sequential CPU torch generator stream, seed {}", seed_);
  }
  torch::Tensor initial(int64_t, int64_t n, c10::IntArrayRef shape) override {
    return torch::randn(batch_shape(n, shape), gen_, torch::kFloat32);
  }
  torch::Tensor step(int64_t, int64_t, int64_t n, c10::IntArrayRef shape, bool) override {
    return torch::randn(batch_shape(n, shape), gen_, torch::kFloat32);
  }
  bool sequential() const override { return true; }
  std::vector<uint8_t> state() const override {
    torch::Tensor s = gen_.get_state();
    const auto* p = s.data_ptr<uint8_t>();
    return std::vector<uint8_t>(p, p + s.numel());
  }
  void restore(const std::vector<uint8_t>& state) override {
    torch::Tensor s = torch::empty({static_cast<int64_t>(state.size())}, torch::kUInt8);
    std::memcpy(s.data_ptr<uint8_t>(), state.data(), state.size());
    gen_.set_state(s);
  }

 private:
  uint64_t seed_;
  at::Generator gen_;
};

class InitialOverride : public NoiseSource {
 public:
  InitialOverride(std::unique_ptr<NoiseSource> steps, torch::Tensor x_T, std::string origin)
      : steps_(std::move(steps)), x_T_(std::move(x_T)), origin_(std::move(origin)) {}
  std::string name() const override { return steps_->name() + "+init-noise"; }
  std::string describe() const override {
    return fmt::format("x_T from {} ({} images), step noise: {}", origin_, x_T_.size(0), steps_->describe());
  }
  torch::Tensor initial(int64_t first, int64_t n, c10::IntArrayRef shape) override {
    DMEVAL_CHECK(first >= 0 && first + n <= x_T_.size(0),
                 "{}: holds x_T for {} images, image {} was asked for", origin_, x_T_.size(0), first + n - 1);
    DMEVAL_CHECK(x_T_.sizes().slice(1) == shape, "{}: x_T images have shape [{}], the model takes [{}]",
                 origin_, fmt::join(x_T_.sizes().slice(1), ", "), fmt::join(shape, ", "));
    return x_T_.slice(0, first, first + n).clone();
  }
  torch::Tensor step(int64_t step, int64_t first, int64_t n, c10::IntArrayRef shape, bool needed) override {
    return steps_->step(step, first, n, shape, needed);
  }
  bool sequential() const override { return steps_->sequential(); }
  std::vector<uint8_t> state() const override { return steps_->state(); }
  void restore(const std::vector<uint8_t>& s) override { steps_->restore(s); }

 private:
  std::unique_ptr<NoiseSource> steps_;
  torch::Tensor x_T_;
  std::string origin_;
};

class RecordedNoise : public NoiseSource {
 public:
  RecordedNoise(torch::Tensor x_T, std::vector<torch::Tensor> steps)
      : x_T_(std::move(x_T)), steps_(std::move(steps)) {}
  std::string name() const override { return "recorded"; }
  std::string describe() const override { return fmt::format("recorded noise ({} steps)", steps_.size()); }
  torch::Tensor initial(int64_t, int64_t n, c10::IntArrayRef) override {
    DMEVAL_CHECK(n == x_T_.size(0), "recorded x_T holds {} images, {} asked for", x_T_.size(0), n);
    return x_T_.clone();
  }
  torch::Tensor step(int64_t step, int64_t, int64_t n, c10::IntArrayRef, bool) override {
    DMEVAL_CHECK(step >= 0 && step < static_cast<int64_t>(steps_.size()), "no recorded noise for step {}",
                 step);
    DMEVAL_CHECK(n == steps_[step].size(0), "recorded noise holds {} images, {} asked for",
                 steps_[step].size(0), n);
    return steps_[step].clone();
  }
  bool sequential() const override { return true; }

 private:
  torch::Tensor x_T_;
  std::vector<torch::Tensor> steps_;
};

}  // namespace

const std::vector<std::string>& noise_mode_names() {
  static const std::vector<std::string> kNames = {"per-image", "reference"};
  return kNames;
}

std::unique_ptr<NoiseSource> make_noise_source(const std::string& mode, uint64_t seed) {
  if (mode == "per-image") return std::make_unique<PerImageNoise>(seed);
  if (mode == "reference") return std::make_unique<ReferenceNoise>(seed);
  fail("unknown noise mode '{}': one of {}", mode, fmt::join(noise_mode_names(), ", "));
}

std::unique_ptr<NoiseSource> with_initial_noise(std::unique_ptr<NoiseSource> steps, torch::Tensor x_T,
                                                std::string origin) {
  DMEVAL_CHECK(x_T.dim() == 4 && x_T.scalar_type() == torch::kFloat32,
               "{}: initial noise must be a float32 (N, C, H, W) array, got {} dimensions of {}", origin,
               x_T.dim(), std::string(c10::toString(x_T.scalar_type())));
  DMEVAL_CHECK(torch::isfinite(x_T).all().item<bool>(), "{}: initial noise holds NaN or Inf values", origin);
  return std::make_unique<InitialOverride>(std::move(steps), std::move(x_T), std::move(origin));
}

std::unique_ptr<NoiseSource> recorded_noise(torch::Tensor x_T, std::vector<torch::Tensor> steps) {
  return std::make_unique<RecordedNoise>(std::move(x_T), std::move(steps));
}

}  // namespace dmeval
