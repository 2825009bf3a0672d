// The interface between what produces images (files, generators) and what consumes them (PNG
// writers, feature extractors). It lives in core so generators and metrics never include each
// other (ARCHITECTURE.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/image.h"

namespace dmeval {

struct ImageBatch {
  int64_t first_index = 0;         // global index of images[0] (deterministic across shards)
  std::vector<Image> images;       // RGB uint8
  std::vector<std::string> names;  // source names (file paths), may be empty for generated images
};

class ImageSink {
 public:
  virtual ~ImageSink() = default;
  virtual void consume(const ImageBatch& batch) = 0;
  virtual void finish() {}
};

}  // namespace dmeval
