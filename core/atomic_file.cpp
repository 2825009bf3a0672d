#include "core/atomic_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/error.h"

namespace dmeval {

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  tmp_ = path_ + ".tmp" + std::to_string(::getpid());
  out_.open(tmp_, std::ios::binary | std::ios::trunc);
  if (!out_) fail("{}: cannot create file: {}", tmp_, std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (!committed_) {
    out_.close();
    std::remove(tmp_.c_str());
  }
}

void AtomicFile::write(const void* data, size_t n) {
  out_.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
}

void AtomicFile::commit() {
  errno = 0;
  out_.flush();
  const int flush_errno = errno;
  bool ok = static_cast<bool>(out_);
  out_.close();
  if (!ok || out_.fail()) {
    const int err = flush_errno ? flush_errno : errno;
    std::remove(tmp_.c_str());
    committed_ = true;  // nothing left to clean up
    fail("{}: write failed: {} (nothing was written in its place)", path_,
         err ? std::strerror(err) : "disk full or I/O error");
  }
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0)
    fail("{}: cannot move the written file into place: {}", path_, std::strerror(errno));
  committed_ = true;
}

}  // namespace dmeval
