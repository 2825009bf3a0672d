// Where a sampler's random numbers come from (spec generators.md §4.4). Two modes, by name:
//
//   per-image (default): image i's initial noise x_T and the noise of every sampler step k depend
//     only on (seed, i, k), never on batch size, shard layout, resume point or device. Element e of
//     the (C, H, W) noise of "slot" s (s = 0: x_T; s = k + 1: step k) of image i is
//       words = Philox4x32-10(counter = (e / 4, s, i mod 2^32, i / 2^32), key = (seed mod 2^32, seed / 2^32))
//       (z0, z1) = BoxMuller(words[0], words[1]), (z2, z3) = BoxMuller(words[2], words[3])
//       noise[e] = z_(e mod 4)
//     (philox.h defines both functions). Generated on the CPU, then moved to the model's device.
//   reference: the sequential stream of one CPU torch generator seeded with `seed`, consumed as the
//     ddim scripts consume the global generator: per batch, x_T = randn(B, C, H, W), then one
//     randn_like(x) per step, every step (also when multiplied by zero). Matches ddim's CPU run bit
//     for bit for the same batch size; depends on the batch size and on processing order, so it
//     cannot be sharded; resuming restores the generator state saved with each finished chunk.
#pragma once

#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

namespace dmeval {

class NoiseSource {
 public:
  virtual ~NoiseSource() = default;
  virtual std::string name() const = 0;
  virtual std::string describe() const = 0;
  // x_T for the consecutive images first .. first + n - 1: (n, C, H, W) float32 on the CPU.
  virtual torch::Tensor initial(int64_t first, int64_t n, c10::IntArrayRef image_shape) = 0;
  // The noise of sampler step `step` (0 = first model call) for the same images. `needed` is false
  // when the sampler multiplies it by exactly zero; a source may then return zeros, but a
  // sequential source still draws (so that later values stay aligned with the reference).
  virtual torch::Tensor step(int64_t step, int64_t first, int64_t n, c10::IntArrayRef image_shape,
                             bool needed) = 0;
  // True when values depend on call order (the reference stream): no shards, resume via state().
  virtual bool sequential() const { return false; }
  virtual std::vector<uint8_t> state() const { return {}; }
  virtual void restore(const std::vector<uint8_t>& state) { (void)state; }
};

const std::vector<std::string>& noise_mode_names();
std::unique_ptr<NoiseSource> make_noise_source(const std::string& mode, uint64_t seed);

// The per-image noise of one image and slot (see above), (C, H, W) float32.
torch::Tensor per_image_noise(uint64_t seed, int64_t image, int64_t slot, c10::IntArrayRef image_shape);

// Takes x_T from a given (N, C, H, W) tensor (e.g. `--init-noise FILE.npy`) and the step noise from
// another source. `origin` names the tensor's file in errors.
std::unique_ptr<NoiseSource> with_initial_noise(std::unique_ptr<NoiseSource> steps, torch::Tensor x_T,
                                                std::string origin);

// Replays recorded noise: x_T and one (n, C, H, W) tensor per step, for exactly the images
// first .. first + n - 1 they were recorded for (golden comparisons with reference trajectories).
std::unique_ptr<NoiseSource> recorded_noise(torch::Tensor x_T, std::vector<torch::Tensor> steps);

}  // namespace dmeval
