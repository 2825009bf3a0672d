#include "metrics/image_source.h"

#include <filesystem>
#include <future>

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

 private:
  std::string path_;
  TensorData data_;
};
}  // namespace

std::unique_ptr<ImageSource> folder_source(const std::string& dir, FolderRule rule) {
  return std::make_unique<FolderSource>(dir, rule);
}
std::unique_ptr<ImageSource> npz_batch_source(const std::string& path) {
  return std::make_unique<NpzBatchSource>(path);
}

std::unique_ptr<ImageSource> open_image_source(const std::string& path, FolderRule rule) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return folder_source(path, rule);
  if (std::filesystem::is_regular_file(path, ec)) return npz_batch_source(path);
  fail("{}: no such folder or file", path);
}

PumpReport pump(const ImageSource& source, ImageSink& sink, const PumpOptions& o) {
  PumpReport report;
  const int64_t total = source.size();
  int64_t next_index = 0;  // global index of the next accepted image
  // Decode batch k+1 on a worker thread while the sink consumes batch k.
  auto decode = [&source, &o](int64_t begin, int64_t end) {
    std::vector<std::pair<int64_t, std::string>> errors;
    ImageBatch b;
    for (int64_t i = begin; i < end; ++i) {
      try {
        b.images.push_back(source.load(i));
        b.names.push_back(source.name(i));
      } catch (const Error& e) {
        if (!o.skip_bad) throw;
        b.names.push_back(std::string("\x01") + e.what());  // marker: skipped
      }
    }
    return b;
  };
  std::future<ImageBatch> pending;
  if (total > 0) pending = std::async(std::launch::async, decode, 0, std::min(total, o.batch_size));
  for (int64_t begin = 0; begin < total; begin += o.batch_size) {
    ImageBatch b = pending.get();
    int64_t nb = begin + o.batch_size;
    if (nb < total) pending = std::async(std::launch::async, decode, nb, std::min(total, nb + o.batch_size));
    ImageBatch clean;
    clean.first_index = next_index;
    size_t k = 0;
    for (const auto& n : b.names) {
      if (!n.empty() && n[0] == '\x01') {
        report.skipped.push_back(n.substr(1));
        continue;
      }
      clean.names.push_back(n);
      clean.images.push_back(std::move(b.images[k++]));
    }
    next_index += static_cast<int64_t>(clean.images.size());
    if (!clean.images.empty()) sink.consume(clean);
    if (o.progress) o.progress(std::min(total, begin + o.batch_size), total);
  }
  sink.finish();
  report.images = next_index;
  return report;
}

}  // namespace dmeval
