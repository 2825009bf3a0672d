// Sinks that store generated images: a PNG folder (what pytorch-fid, torch-fidelity and clean-fid
// read), an ADM-style .npz batch (`arr_0`, uint8 N x H x W x 3, as guided-diffusion's sampling
// scripts write it), and the float samples before conversion as one .npy. All three are
// chunk-aware (image_sink.h): the .npz and .npy are assembled from per-chunk parts once every
// chunk is committed, streaming, so memory stays bounded for any N.
#pragma once

#include <string>

#include "core/image_sink.h"

namespace dmeval {

// <dir>/<index>.png with the index zero-padded to `digits` (sorted names = index order).
class PngFolderSink : public ImageSink {
 public:
  PngFolderSink(std::string dir, int digits, int compression_level = 6);
  void consume(const ImageBatch& batch) override;
  static int digits_for(int64_t total);  // at least 6
  std::string file_name(int64_t index) const;

 private:
  std::string dir_;
  int digits_, level_;
};

// Per-chunk parts of a (total, <item shape>) array, assembled into one file at finish().
class ChunkedArraySink : public ImageSink {
 public:
  enum class Kind { kImagesNpz, kRawNpy };
  // `parts_dir` holds the per-chunk parts (created if missing); `total` is the run's image count.
  ChunkedArraySink(Kind kind, std::string out_path, std::string parts_dir, int64_t total);
  void begin_chunk(const ChunkRange& chunk) override;
  void consume(const ImageBatch& batch) override;
  void commit_chunk(const ChunkRange& chunk) override;
  // Assembles the output from the parts of chunks 0..n-1 (all must exist), then removes the parts.
  void finish() override;

 private:
  std::string part_path(int64_t chunk) const;
  Kind kind_;
  std::string out_, parts_;
  int64_t total_;
  ChunkRange chunk_{};
  std::vector<uint8_t> buffer_;
  std::vector<int64_t> item_shape_;
  int64_t seen_ = 0;
};

}  // namespace dmeval
