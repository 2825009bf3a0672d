// Bounded random-access reading from files or memory. Readers of untrusted formats go through
// this so that every read is checked against the real size before anything is allocated.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace dmeval {

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual uint64_t size() const = 0;
  // Name used in error messages (normally the file path).
  virtual const std::string& name() const = 0;
  // Reads exactly n bytes at offset; throws dmeval::Error naming the file when fewer exist.
  virtual void read_at(uint64_t offset, void* dst, size_t n) const = 0;

  std::vector<uint8_t> read_vector(uint64_t offset, uint64_t n) const;
  // Throws the standard "truncated" error if [offset, offset+n) is not inside the source.
  void require(uint64_t offset, uint64_t n, std::string_view what) const;
};

// A file read with pread(); the descriptor is closed on destruction.
class FileSource final : public ByteSource {
 public:
  explicit FileSource(std::string path);
  ~FileSource() override;
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;

  uint64_t size() const override { return size_; }
  const std::string& name() const override { return path_; }
  void read_at(uint64_t offset, void* dst, size_t n) const override;

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

// Bytes in memory (an owned buffer, e.g. a zip entry or fuzzer input).
class MemorySource final : public ByteSource {
 public:
  MemorySource(std::string name, std::vector<uint8_t> data)
      : name_(std::move(name)), data_(std::move(data)) {}
  uint64_t size() const override { return data_.size(); }
  const std::string& name() const override { return name_; }
  void read_at(uint64_t offset, void* dst, size_t n) const override;
  const std::vector<uint8_t>& data() const { return data_; }
  // Hands the buffer to the caller; the source is empty afterwards.
  std::vector<uint8_t> release() { return std::move(data_); }

 private:
  std::string name_;
  std::vector<uint8_t> data_;
};

// Sequential, buffered reads from a ByteSource, never past `end`.
class Cursor {
 public:
  Cursor(const ByteSource& src, uint64_t begin, uint64_t end);
  explicit Cursor(const ByteSource& src) : Cursor(src, 0, src.size()) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return end_ - pos_; }
  bool at_end() const { return pos_ >= end_; }
  const ByteSource& source() const { return src_; }

  uint8_t u8();
  void read(void* dst, size_t n);
  std::string read_string(uint64_t n);  // bounded by remaining() before allocating
  void skip(uint64_t n);
  // Reads up to and excluding '\n'; consumes the newline. At most max_len bytes.
  std::string read_line(size_t max_len);

 private:
  void refill();
  [[noreturn]] void truncated(uint64_t need) const;

  const ByteSource& src_;
  uint64_t pos_;
  uint64_t end_;
  std::vector<uint8_t> buf_;
  uint64_t buf_start_ = 0;  // file offset of buf_[0]
  size_t buf_len_ = 0;
};

// Reads a whole file into memory, refusing files larger than max_bytes.
std::vector<uint8_t> read_file_bytes(const std::string& path, uint64_t max_bytes);

}  // namespace dmeval
