// Image sources for the metrics: a folder (per a tool's discovery rule), a list of files, an
// ADM-style .npz batch (`arr_0`, uint8 N x H x W x 3), or CIFAR-10's own batch files. pump() decodes in
// parallel and feeds fixed-size batches, in index order, to a sink.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/image_folder.h"
#include "core/image_sink.h"

namespace dmeval {

class ImageSource {
 public:
  virtual ~ImageSource() = default;
  virtual int64_t size() const = 0;
  virtual std::string name(int64_t i) const = 0;
  virtual Image load(int64_t i) const = 0;  // throws dmeval::Error naming the file
  virtual std::string describe() const = 0;
  // The files the images are read from (content digests, e.g. cache keys): a folder's image files, the
  // .npz, the CIFAR-10 batch files.
  virtual std::vector<std::string> files() const = 0;
};

std::unique_ptr<ImageSource> folder_source(const std::string& dir, FolderRule rule);
std::unique_ptr<ImageSource> npz_batch_source(const std::string& path);  // arr_0
// A CIFAR-10 split ("train" or "test") from the python or binary batches in `dir`.
std::unique_ptr<ImageSource> cifar10_source(const std::string& dir, const std::string& split);
// A folder, an .npz image batch, `cifar10-train:DIR` / `cifar10-test:DIR`, or a CIFAR-10 batches
// folder (its training split), by what the path is.
std::unique_ptr<ImageSource> open_image_source(const std::string& path, FolderRule rule);
// Images [begin, end) of another source (a shard).
std::unique_ptr<ImageSource> slice_source(std::shared_ptr<ImageSource> source, int64_t begin, int64_t end);

struct PumpOptions {
  int64_t batch_size = 50;
  bool skip_bad = false;    // report unreadable images and continue (they are not counted)
  int64_t first_index = 0;  // global index of the source's first image (shards start at their offset)
  std::function<void(int64_t done, int64_t total)> progress;
};

struct PumpReport {
  int64_t images = 0;
  std::vector<std::string> skipped;  // "path: reason"
};

PumpReport pump(const ImageSource& source, ImageSink& sink, const PumpOptions& options);

}  // namespace dmeval
