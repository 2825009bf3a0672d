#include "metrics/feature_store.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <torch/torch.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace dmeval {

namespace {
// A fixed-size .npy 1.0 header, so it can be rewritten in place with the final row count.
constexpr size_t kHeaderBytes = 128;

std::string npy_header(int64_t rows, int64_t dim) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(rows) + ", " +
                     std::to_string(dim) + "), }";
  const size_t hlen = kHeaderBytes - 10;
  if (dict.size() + 1 > hlen) fail("feature file header too long");
  dict.append(hlen - dict.size() - 1, ' ');
  dict += '\n';
  std::string h = "\x93NUMPY";
  h += static_cast<char>(1);
  h += static_cast<char>(0);
  h += static_cast<char>(hlen & 0xff);
  h += static_cast<char>(hlen >> 8);
  return h + dict;
}
}  // namespace

FeatureStore::FeatureStore(int64_t dim) : dim_(dim) {}

FeatureStore::FeatureStore(int64_t dim, std::string path, bool keep_file)
    : dim_(dim), path_(std::move(path)), keep_file_(keep_file) {
  file_ = std::fopen(path_.c_str(), "wb");
  if (!file_) fail("{}: cannot create the feature file: {}", path_, std::strerror(errno));
  const std::string h = npy_header(0, dim_);
  if (std::fwrite(h.data(), 1, h.size(), file_) != h.size())
    fail("{}: cannot write the feature file: {}", path_, std::strerror(errno));
}

FeatureStore::~FeatureStore() {
  if (file_) {
    std::fclose(file_);
    if (!keep_file_) ::unlink(path_.c_str());
  }
}

void FeatureStore::append(const torch::Tensor& rows) {
  if (all_.defined()) fail("feature store: append after rows()");
  if (rows.dim() != 2 || rows.size(1) != dim_)
    fail("feature store: rows of width {} expected, got shape with {} dims", dim_, rows.dim());
  torch::Tensor r = rows.to(torch::kCPU, torch::kFloat32).contiguous();
  if (!file_) {
    blocks_.push_back(r);
  } else {
    const size_t bytes = static_cast<size_t>(r.numel()) * sizeof(float);
    if (std::fwrite(r.data_ptr<float>(), 1, bytes, file_) != bytes)
      fail("{}: cannot write features (disk full?): {}", path_, std::strerror(errno));
  }
  count_ += r.size(0);
}

void FeatureStore::finish_file() {
  const std::string h = npy_header(count_, dim_);
  if (std::fseek(file_, 0, SEEK_SET) != 0 || std::fwrite(h.data(), 1, h.size(), file_) != h.size() ||
      std::fflush(file_) != 0)
    fail("{}: cannot finish the feature file: {}", path_, std::strerror(errno));
  std::fclose(file_);
  file_ = nullptr;
  const size_t data_bytes = static_cast<size_t>(count_) * dim_ * sizeof(float);
  if (data_bytes == 0) {
    all_ = torch::empty({0, dim_}, torch::kFloat32);
    if (!keep_file_) ::unlink(path_.c_str());
    return;
  }
  const int fd = ::open(path_.c_str(), O_RDONLY);
  if (fd < 0) fail("{}: cannot reopen the feature file: {}", path_, std::strerror(errno));
  const size_t total = kHeaderBytes + data_bytes;
  // Private, writable mapping: an in-place operation by a caller copies the touched pages instead of
  // faulting or changing the file.
  void* map = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) fail("{}: cannot map the feature file: {}", path_, std::strerror(errno));
  if (!keep_file_) ::unlink(path_.c_str());
  float* data = reinterpret_cast<float*>(static_cast<char*>(map) + kHeaderBytes);
  all_ = torch::from_blob(
      data, {count_, dim_}, [map, total](void*) { ::munmap(map, total); }, torch::kFloat32);
}

torch::Tensor FeatureStore::rows() {
  if (all_.defined()) return all_;
  if (!path_.empty()) {
    finish_file();
  } else {
    all_ = blocks_.empty() ? torch::empty({0, dim_}, torch::kFloat32) : torch::cat(blocks_);
    blocks_.clear();
  }
  return all_;
}

}  // namespace dmeval
