// Reading and writing zip archives through libzip (torch zip checkpoints, NumPy .npz).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

struct zip;

namespace dmeval {

class ZipReader {
 public:
  static ZipReader open_file(const std::string& path);
  // `name` is used in error messages.
  static ZipReader open_memory(const std::string& name, std::vector<uint8_t> data);

  const std::string& name() const { return name_; }
  size_t size() const;  // number of entries
  std::string entry_name(size_t index) const;
  std::optional<size_t> find(const std::string& entry) const;
  uint64_t entry_size(size_t index) const;  // uncompressed bytes, as declared
  uint64_t entry_compressed_size(size_t index) const;
  bool entry_is_stored(size_t index) const;

  // Reads the whole entry; refuses declared sizes that the compressed data cannot produce.
  std::vector<uint8_t> read(size_t index) const;
  // Reads the first n bytes of an entry into dst (n <= declared size).
  void read_prefix(size_t index, uint8_t* dst, uint64_t n) const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
  std::string name_;
};

enum class ZipCompression { kStore, kDeflate };

// Builds an archive in memory and writes it atomically (temp file + rename) on finish().
class ZipWriter {
 public:
  explicit ZipWriter(std::string path);
  ~ZipWriter();
  ZipWriter(const ZipWriter&) = delete;
  ZipWriter& operator=(const ZipWriter&) = delete;

  void add(const std::string& entry, std::vector<uint8_t> data, ZipCompression c);
  // Streams the entry from a file when the archive is written (large entries; no copy in memory).
  void add_file(const std::string& entry, const std::string& source_path, ZipCompression c);
  void finish();

 private:
  std::string path_;
  std::string tmp_path_;
  struct zip* za_ = nullptr;
  std::vector<std::unique_ptr<std::vector<uint8_t>>> buffers_;  // kept alive until zip_close
};

}  // namespace dmeval
