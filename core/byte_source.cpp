#include "core/byte_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace dmeval {

void ByteSource::require(uint64_t offset, uint64_t n, std::string_view what) const {
  if (offset > size() || n > size() - offset)
    fail(
        "{}: truncated: {} needs {} bytes at offset {}, but the file has only {} bytes "
        "({} present from that offset)",
        name(), what, n, offset, size(), offset > size() ? 0 : size() - offset);
}

std::vector<uint8_t> ByteSource::read_vector(uint64_t offset, uint64_t n) const {
  require(offset, n, "read");
  std::vector<uint8_t> out(n);
  if (n) read_at(offset, out.data(), n);
  return out;
}

FileSource::FileSource(std::string path) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) fail("{}: cannot open: {}", path_, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    int e = errno;
    ::close(fd_);
    fail("{}: cannot stat: {}", path_, std::strerror(e));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd_);
    fail("{}: is a directory, expected a file", path_);
  }
  size_ = static_cast<uint64_t>(st.st_size);
}

FileSource::~FileSource() {
  if (fd_ >= 0) ::close(fd_);
}

void FileSource::read_at(uint64_t offset, void* dst, size_t n) const {
  require(offset, n, "read");
  auto* p = static_cast<uint8_t*>(dst);
  while (n > 0) {
    ssize_t got = ::pread(fd_, p, n, static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR) continue;
      fail("{}: read error at offset {}: {}", path_, offset, std::strerror(errno));
    }
    if (got == 0) fail("{}: truncated: file ended at offset {} while reading", path_, offset);
    p += got;
    n -= static_cast<size_t>(got);
    offset += static_cast<uint64_t>(got);
  }
}

void MemorySource::read_at(uint64_t offset, void* dst, size_t n) const {
  require(offset, n, "read");
  if (n) std::memcpy(dst, data_.data() + offset, n);
}

Cursor::Cursor(const ByteSource& src, uint64_t begin, uint64_t end)
    : src_(src), pos_(begin), end_(std::min(end, src.size())) {
  if (pos_ > end_) pos_ = end_;
}

void Cursor::truncated(uint64_t need) const {
  fail("{}: truncated: needed {} more bytes at offset {}, only {} present", src_.name(), need, pos_,
       remaining());
}

void Cursor::refill() {
  constexpr size_t kChunk = 1 << 16;
  if (buf_.size() != kChunk) buf_.resize(kChunk);
  buf_start_ = pos_;
  buf_len_ = static_cast<size_t>(std::min<uint64_t>(kChunk, end_ - pos_));
  if (buf_len_) src_.read_at(buf_start_, buf_.data(), buf_len_);
}

uint8_t Cursor::u8() {
  if (pos_ >= end_) truncated(1);
  if (pos_ < buf_start_ || pos_ >= buf_start_ + buf_len_) refill();
  return buf_[pos_++ - buf_start_];
}

void Cursor::read(void* dst, size_t n) {
  if (n > remaining()) truncated(n);
  auto* out = static_cast<uint8_t*>(dst);
  while (n > 0) {
    if (pos_ < buf_start_ || pos_ >= buf_start_ + buf_len_) {
      if (n >= (1u << 16)) {  // large reads bypass the buffer
        src_.read_at(pos_, out, n);
        pos_ += n;
        return;
      }
      refill();
    }
    size_t avail = static_cast<size_t>(buf_start_ + buf_len_ - pos_);
    size_t take = std::min(avail, n);
    std::memcpy(out, buf_.data() + (pos_ - buf_start_), take);
    out += take;
    pos_ += take;
    n -= take;
  }
}

std::string Cursor::read_string(uint64_t n) {
  if (n > remaining()) truncated(n);
  std::string s(static_cast<size_t>(n), '\0');
  read(s.data(), s.size());
  return s;
}

void Cursor::skip(uint64_t n) {
  if (n > remaining()) truncated(n);
  pos_ += n;
}

std::string Cursor::read_line(size_t max_len) {
  std::string s;
  for (;;) {
    uint8_t c = u8();
    if (c == '\n') return s;
    if (s.size() >= max_len)
      fail("{}: line at offset {} is longer than {} bytes", src_.name(), pos_ - s.size() - 1, max_len);
    s.push_back(static_cast<char>(c));
  }
}

std::vector<uint8_t> read_file_bytes(const std::string& path, uint64_t max_bytes) {
  FileSource f(path);
  if (f.size() > max_bytes)
    fail("{}: file is {} bytes, more than the {} bytes accepted here", path, f.size(), max_bytes);
  return f.read_vector(0, f.size());
}

}  // namespace dmeval
