// Writes a file so that readers see either the old content or the complete new one: data goes to
// "<path>.tmp<pid>", then commit() flushes, checks for errors (disk full) and renames it over path.
// Destroying an uncommitted AtomicFile removes the temporary file.
#pragma once

#include <fstream>
#include <string>

namespace dmeval {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t n);
  void commit();

 private:
  std::string path_;
  std::string tmp_;
  std::ofstream out_;
  bool committed_ = false;
};

}  // namespace dmeval
