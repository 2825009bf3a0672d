// Where each image's conditioning comes from (the generation spec's `--conditioning`), as a function
// of the image's global index and the seed only, so that an image's conditioning — like its noise —
// is the same for any batch size, shard layout or resume point.
//
//   none            unconditional models
//   class=C         every image class C
//   per-class=N     N images per class in class order: image i has class (i / N) mod K (the balanced
//                   protocol, e.g. 50 per class for 50,000 ImageNet images)
//   uniform         each image an independent uniform class: (hi * 2^32 + lo) mod K of the Philox words
//                   (counter (0, 0xC1A55, i mod 2^32, i / 2^32), key = seed); bias below K / 2^64
//   uniform-runs=N  one uniform class per run of N consecutive images (PTQD's sampling script draws one
//                   label per batch of 16 images): the class of run r = i / N, drawn as `uniform` for r
//
// K is the model's number of classes (DiffusionModel::num_classes). Text prompts and low-resolution
// inputs are further kinds, added with the families that take them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "generators/diffusion_model.h"

namespace dmeval {

class ConditioningSource {
 public:
  virtual ~ConditioningSource() = default;
  virtual std::string describe() const = 0;  // the spec string, normalised (recorded with results)
  virtual bool empty() const { return false; }
  // The conditioning of the consecutive images first .. first + count - 1 (CPU tensors).
  virtual Conditioning images(int64_t first, int64_t count) const = 0;
};

// Parses a spec (above) for a model with `num_classes` classes (0: not class-conditional, then only
// "none" is accepted); errors name the spec and the forms.
std::unique_ptr<ConditioningSource> make_conditioning_source(const std::string& spec, uint64_t seed,
                                                             int64_t num_classes);

// The one the model needs when the user gives none: "none" for unconditional models; a
// class-conditional model has no default (the user chooses the protocol), so this throws naming it.
std::string default_conditioning(const DiffusionModel& model);

}  // namespace dmeval
