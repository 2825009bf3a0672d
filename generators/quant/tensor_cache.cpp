#include "generators/quant/tensor_cache.h"

#include <fcntl.h>
#include <unistd.h>

#include <torch/torch.h>

#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace dmeval {

TensorCache::TensorCache(int64_t limit, std::string dir) : limit_(limit), dir_(std::move(dir)) {
  if (dir_.empty()) {
    const char* t = std::getenv("TMPDIR");
    dir_ = t && *t ? t : "/tmp";
  }
}

TensorCache::~TensorCache() {
  if (fd_ >= 0) ::close(fd_);
}

TensorCache::TensorCache(TensorCache&& o) noexcept
    : limit_(o.limit_),
      dir_(std::move(o.dir_)),
      row_shape_(std::move(o.row_shape_)),
      row_numel_(o.row_numel_),
      rows_(o.rows_),
      chunks_(std::move(o.chunks_)),
      fd_(o.fd_) {
  o.fd_ = -1;
  o.rows_ = 0;
}

namespace {
void write_all(int fd, const void* p, size_t n, const std::string& what) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    ssize_t w = ::write(fd, c, n);
    if (w <= 0) fail("{}: cannot write the calibration cache (disk full?)", what);
    c += w;
    n -= static_cast<size_t>(w);
  }
}
}  // namespace

void TensorCache::spill() {
  std::string tmpl = dir_ + "/dmeval-calib-cache-XXXXXX";
  fd_ = ::mkstemp(tmpl.data());
  if (fd_ < 0) fail("{}: cannot create a calibration cache file", tmpl);
  ::unlink(tmpl.c_str());  // removed when closed, even after a crash
  for (const torch::Tensor& c : chunks_)
    write_all(fd_, c.data_ptr<float>(), static_cast<size_t>(c.numel()) * sizeof(float), dir_);
  chunks_.clear();
}

void TensorCache::append(const torch::Tensor& rows_in) {
  torch::Tensor r = rows_in.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  DMEVAL_CHECK(r.dim() >= 1, "cache rows need a leading dimension");
  std::vector<int64_t> shape(r.sizes().begin() + 1, r.sizes().end());
  if (rows_ == 0 && row_shape_.empty()) {
    row_shape_ = shape;
    row_numel_ = 1;
    for (int64_t d : shape) row_numel_ *= d;
  }
  DMEVAL_CHECK(shape == row_shape_, "cache rows changed shape");
  rows_ += r.size(0);
  if (fd_ >= 0) {
    write_all(fd_, r.data_ptr<float>(), static_cast<size_t>(r.numel()) * sizeof(float), dir_);
    return;
  }
  chunks_.push_back(r);
  if (rows_ * row_numel_ * static_cast<int64_t>(sizeof(float)) > limit_) spill();
}

torch::Tensor TensorCache::gather(const torch::Tensor& index) const {
  torch::Tensor idx = index.to(torch::kLong).contiguous();
  std::vector<int64_t> shape = {idx.numel()};
  shape.insert(shape.end(), row_shape_.begin(), row_shape_.end());
  if (fd_ < 0) return all().index_select(0, idx);
  torch::Tensor out = torch::empty(shape, torch::kFloat32);
  const size_t row_bytes = static_cast<size_t>(row_numel_) * sizeof(float);
  const int64_t* ip = idx.data_ptr<int64_t>();
  char* dst = reinterpret_cast<char*>(out.data_ptr<float>());
  for (int64_t i = 0; i < idx.numel(); ++i) {
    DMEVAL_CHECK(ip[i] >= 0 && ip[i] < rows_, "cache row {} out of range ({} rows)", ip[i], rows_);
    const off_t off = static_cast<off_t>(ip[i]) * static_cast<off_t>(row_bytes);
    size_t done = 0;
    while (done < row_bytes) {
      ssize_t n = ::pread(fd_, dst + i * row_bytes + done, row_bytes - done, off + static_cast<off_t>(done));
      if (n <= 0) fail("calibration cache: read error");
      done += static_cast<size_t>(n);
    }
  }
  return out;
}

torch::Tensor TensorCache::all() const {
  if (fd_ >= 0) return gather(torch::arange(rows_, torch::kLong));
  if (chunks_.empty()) {
    std::vector<int64_t> shape = {0};
    shape.insert(shape.end(), row_shape_.begin(), row_shape_.end());
    return torch::empty(shape, torch::kFloat32);
  }
  if (chunks_.size() > 1) chunks_ = {torch::cat(chunks_, 0)};
  return chunks_[0];
}

}  // namespace dmeval
