#include "metrics/image_source.h"

#include <filesystem>
#include <future>

#include "core/cifar10.h"
#include "core/error.h"
#include "core/npy.h"

namespace dmeval {

namespace {
class FolderSource : public ImageSource {
 public:
  FolderSource(std::string dir, FolderRule rule)
      : dir_(std::move(dir)), files_(list_images(dir_, rule)), rule_(rule) {}
  int64_t size() const override { return static_cast<int64_t>(files_.size()); }
  std::string name(int64_t i) const override { return files_.at(i); }
  Image load(int64_t i) const override { return decode_image_file(files_.at(i)); }
  std::string describe() const override {
    return fmt::format("folder {} ({} images, {} discovery rule)", dir_, files_.size(),
                       folder_rule_name(rule_));
  }
  std::vector<std::string> files() const override { return files_; }

 private:
  std::string dir_;
  std::vector<std::string> files_;
  FolderRule rule_;
};

class NpzBatchSource : public ImageSource {
 public:
  explicit NpzBatchSource(const std::string& path) : path_(path) {
    NpzReader z = NpzReader::open(path);
    if (!z.contains("arr_0"))
      fail("{}: no 'arr_0' image array (an ADM-style batch needs uint8 N x H x W x 3)", path);
    data_ = z.read("arr_0");
    if (data_.dtype != DType::kUInt8 || data_.shape.size() != 4 || data_.shape[3] != 3)
      fail("{}: arr_0 is {} {}, expected uint8 N x H x W x 3", path, dtype_name(data_.dtype),
           shape_str(data_.shape));
  }
  int64_t size() const override { return data_.shape[0]; }
  std::string name(int64_t i) const override { return path_ + ":arr_0[" + std::to_string(i) + "]"; }
  Image load(int64_t i) const override {
    Image img;
    img.height = static_cast<int>(data_.shape[1]);
    img.width = static_cast<int>(data_.shape[2]);
    size_t n = static_cast<size_t>(img.height) * img.width * 3;
    img.pixels.assign(data_.bytes.begin() + i * n, data_.bytes.begin() + (i + 1) * n);
    return img;
  }
  std::string describe() const override { return fmt::format("{} (arr_0, {} images)", path_, size()); }
  std::vector<std::string> files() const override { return {path_}; }

 private:
  std::string path_;
  TensorData data_;
};

// The images of a CIFAR-10 split in the dataset's order (batch 1 image 0 first), as torchvision's
// CIFAR10 dataset and pytorch-fid users' exported PNG folders order them.
class Cifar10Source : public ImageSource {
 public:
  Cifar10Source(const std::string& dir, const std::string& split) : dir_(dir), split_(split) {
    const auto files = cifar10_batch_files(dir, split);
    if (files.empty())
      fail("{}: no CIFAR-10 {} batches here (data_batch_1..5 or test_batch, python or .bin version)", dir,
           split);
    for (const auto& f : files) {
      batches_.push_back(read_cifar10_batch(f));
      total_ += batches_.back().count;
    }
  }
  int64_t size() const override { return total_; }
  std::string name(int64_t i) const override {
    auto [b, k] = locate(i);
    return fmt::format("{}[{}]", batches_[b].path, k);
  }
  Image load(int64_t i) const override {
    auto [b, k] = locate(i);
    return batches_[b].image(k);
  }
  std::string describe() const override {
    return fmt::format("CIFAR-10 {} split in {} ({} images, {} batches)", split_, dir_, total_,
                       batches_.size());
  }
  std::vector<std::string> files() const override {
    std::vector<std::string> out;
    for (const auto& b : batches_) out.push_back(b.path);
    return out;
  }

 private:
  std::pair<size_t, int64_t> locate(int64_t i) const {
    DMEVAL_CHECK(i >= 0 && i < total_, "CIFAR-10 image {} of {}", i, total_);
    size_t b = 0;
    while (i >= batches_[b].count) i -= batches_[b++].count;
    return {b, i};
  }
  std::string dir_, split_;
  std::vector<Cifar10Batch> batches_;
  int64_t total_ = 0;
};
}  // namespace

std::unique_ptr<ImageSource> cifar10_source(const std::string& dir, const std::string& split) {
  return std::make_unique<Cifar10Source>(dir, split);
}

std::unique_ptr<ImageSource> folder_source(const std::string& dir, FolderRule rule) {
  return std::make_unique<FolderSource>(dir, rule);
}
std::unique_ptr<ImageSource> npz_batch_source(const std::string& path) {
  return std::make_unique<NpzBatchSource>(path);
}

namespace {
class SliceSource : public ImageSource {
 public:
  SliceSource(std::shared_ptr<ImageSource> src, int64_t begin, int64_t end)
      : src_(std::move(src)), begin_(begin), end_(end) {}
  int64_t size() const override { return end_ - begin_; }
  std::string name(int64_t i) const override { return src_->name(begin_ + i); }
  Image load(int64_t i) const override { return src_->load(begin_ + i); }
  std::string describe() const override {
    return fmt::format("images {}..{} of {}", begin_, end_ - 1, src_->describe());
  }
  std::vector<std::string> files() const override { return src_->files(); }

 private:
  std::shared_ptr<ImageSource> src_;
  int64_t begin_, end_;
};
}  // namespace

std::unique_ptr<ImageSource> slice_source(std::shared_ptr<ImageSource> source, int64_t begin, int64_t end) {
  if (begin < 0 || end < begin || end > source->size())
    fail("slice {}..{} outside a source of {} images", begin, end, source->size());
  return std::make_unique<SliceSource>(std::move(source), begin, end);
}

std::unique_ptr<ImageSource> open_image_source(const std::string& path, FolderRule rule) {
  std::error_code ec;
  for (const char* split : {"train", "test"}) {
    const std::string prefix = std::string("cifar10-") + split + ":";
    if (path.rfind(prefix, 0) == 0) return cifar10_source(path.substr(prefix.size()), split);
  }
  // A CIFAR-10 folder (cifar-10-batches-py or -bin): its training split.
  if (std::filesystem::is_directory(path, ec) && !cifar10_batch_files(path, "train").empty())
    return cifar10_source(path, "train");
  if (std::filesystem::is_directory(path, ec)) return folder_source(path, rule);
  if (std::filesystem::is_regular_file(path, ec)) return npz_batch_source(path);
  fail("{}: no such folder or file", path);
}

namespace {
// One batch as decoded: the images that loaded, and "path: reason" for those that did not.
struct Decoded {
  ImageBatch batch;
  std::vector<std::string> skipped;
};
}  // namespace

PumpReport pump(const ImageSource& source, ImageSink& sink, const PumpOptions& o) {
  PumpReport report;
  const int64_t total = source.size();
  auto decode = [&source, &o](int64_t begin, int64_t end) {
    Decoded d;
    for (int64_t i = begin; i < end; ++i) {
      try {
        d.batch.images.push_back(source.load(i));
        d.batch.names.push_back(source.name(i));
      } catch (const Error& e) {
        if (!o.skip_bad) throw;
        d.skipped.push_back(e.what());
      }
    }
    return d;
  };
  // Decode batch k+1 on a worker thread while the sink consumes batch k.
  std::future<Decoded> pending;
  if (total > 0) pending = std::async(std::launch::async, decode, 0, std::min(total, o.batch_size));
  for (int64_t begin = 0; begin < total; begin += o.batch_size) {
    Decoded d = pending.get();
    const int64_t next = begin + o.batch_size;
    if (next < total)
      pending = std::async(std::launch::async, decode, next, std::min(total, next + o.batch_size));
    report.skipped.insert(report.skipped.end(), d.skipped.begin(), d.skipped.end());
    d.batch.first_index = o.first_index + report.images;  // accepted images are numbered consecutively
    report.images += static_cast<int64_t>(d.batch.images.size());
    if (!d.batch.images.empty()) sink.consume(d.batch);
    if (o.progress) o.progress(std::min(total, next), total);
  }
  sink.finish();
  return report;
}

}  // namespace dmeval
