#include "core/zip_archive.h"

#include <unistd.h>
#include <zip.h>

#include <cstdio>
#include <filesystem>

#include "core/error.h"

namespace dmeval {

// Deflate cannot expand data by more than about 1032:1; a larger declared size is a lie.
constexpr uint64_t kMaxDeflateRatio = 1100;

struct ZipReader::Impl {
  zip_t* za = nullptr;
  uint64_t archive_bytes = 0;   // size of the whole archive: no entry can occupy more
  std::vector<uint8_t> memory;  // backing bytes for open_memory
  ~Impl() {
    if (za) zip_discard(za);
  }
};

namespace {
std::string zip_error_text(int code) {
  zip_error_t e;
  zip_error_init_with_code(&e, code);
  std::string s = zip_error_strerror(&e);
  zip_error_fini(&e);
  return s;
}
}  // namespace

ZipReader ZipReader::open_file(const std::string& path) {
  ZipReader r;
  r.name_ = path;
  r.impl_ = std::make_shared<Impl>();
  int code = 0;
  r.impl_->za = zip_open(path.c_str(), ZIP_RDONLY, &code);
  if (!r.impl_->za) fail("{}: not a readable zip archive: {}", path, zip_error_text(code));
  std::error_code ec;
  r.impl_->archive_bytes = std::filesystem::file_size(path, ec);
  return r;
}

ZipReader ZipReader::open_memory(const std::string& name, std::vector<uint8_t> data) {
  ZipReader r;
  r.name_ = name;
  r.impl_ = std::make_shared<Impl>();
  r.impl_->memory = std::move(data);
  r.impl_->archive_bytes = r.impl_->memory.size();
  zip_error_t err;
  zip_error_init(&err);
  zip_source_t* src = zip_source_buffer_create(r.impl_->memory.data(), r.impl_->memory.size(), 0, &err);
  if (!src) {
    std::string msg = zip_error_strerror(&err);
    zip_error_fini(&err);
    fail("{}: cannot read zip from memory: {}", name, msg);
  }
  r.impl_->za = zip_open_from_source(src, ZIP_RDONLY, &err);
  if (!r.impl_->za) {
    zip_source_free(src);
    std::string msg = zip_error_strerror(&err);
    zip_error_fini(&err);
    fail("{}: not a readable zip archive: {}", name, msg);
  }
  zip_error_fini(&err);
  return r;
}

size_t ZipReader::size() const {
  zip_int64_t n = zip_get_num_entries(impl_->za, 0);
  return n < 0 ? 0 : static_cast<size_t>(n);
}

std::string ZipReader::entry_name(size_t index) const {
  const char* n = zip_get_name(impl_->za, index, ZIP_FL_ENC_RAW);
  if (!n) fail("{}: zip entry {} has no name", name_, index);
  return n;
}

std::optional<size_t> ZipReader::find(const std::string& entry) const {
  zip_int64_t i = zip_name_locate(impl_->za, entry.c_str(), ZIP_FL_ENC_RAW);
  if (i < 0) return std::nullopt;
  return static_cast<size_t>(i);
}

namespace {
// Entry metadata, checked so that nothing is allocated on the strength of a size the archive
// cannot back: compressed bytes must fit in the archive, and deflate expands at most ~1032x.
zip_stat_t stat_entry(const ZipReader::Impl& im, size_t index, const std::string& name) {
  zip_stat_t st;
  zip_stat_init(&st);
  if (zip_stat_index(im.za, index, 0, &st) != 0)
    fail("{}: cannot stat zip entry {}: {}", name, index, zip_strerror(im.za));
  const char* entry = st.name ? st.name : "?";
  if (st.comp_size > im.archive_bytes)
    fail("{}: entry '{}' claims {} compressed bytes in an archive of {} bytes: corrupt or truncated", name,
         entry, st.comp_size, im.archive_bytes);
  if (st.comp_method == ZIP_CM_STORE && st.size != st.comp_size)
    fail("{}: stored entry '{}' declares {} bytes but occupies {}", name, entry, st.size, st.comp_size);
  if (st.comp_method != ZIP_CM_STORE && st.size > st.comp_size * kMaxDeflateRatio + 4096)
    fail("{}: entry '{}' claims {} bytes from {} compressed bytes: corrupt", name, entry, st.size, st.comp_size);
  return st;
}
}  // namespace

uint64_t ZipReader::entry_size(size_t index) const {
  return stat_entry(*impl_, index, name_).size;
}
uint64_t ZipReader::entry_compressed_size(size_t index) const {
  return stat_entry(*impl_, index, name_).comp_size;
}
bool ZipReader::entry_is_stored(size_t index) const {
  return stat_entry(*impl_, index, name_).comp_method == ZIP_CM_STORE;
}

void ZipReader::read_prefix(size_t index, uint8_t* dst, uint64_t n) const {
  zip_stat_t st = stat_entry(*impl_, index, name_);
  std::string entry = st.name ? st.name : std::to_string(index);
  if (n > st.size) fail("{}: entry '{}' is truncated: {} bytes needed, {} present", name_, entry, n, st.size);
  zip_file_t* f = zip_fopen_index(impl_->za, index, 0);
  if (!f) fail("{}: cannot open entry '{}': {}", name_, entry, zip_strerror(impl_->za));
  uint64_t done = 0;
  while (done < n) {
    zip_int64_t got = zip_fread(f, dst + done, n - done);
    if (got < 0) {
      std::string msg = zip_file_strerror(f);
      zip_fclose(f);
      fail("{}: entry '{}': read error after {} bytes: {}", name_, entry, done, msg);
    }
    if (got == 0) {
      zip_fclose(f);
      fail("{}: entry '{}' is truncated: {} bytes needed, {} present", name_, entry, n, done);
    }
    done += static_cast<uint64_t>(got);
  }
  zip_fclose(f);
}

std::vector<uint8_t> ZipReader::read(size_t index) const {
  zip_stat_t st = stat_entry(*impl_, index, name_);
  std::vector<uint8_t> out(st.size);
  read_prefix(index, out.data(), st.size);
  return out;
}

ZipWriter::ZipWriter(std::string path) : path_(std::move(path)) {
  tmp_path_ = path_ + ".tmp" + std::to_string(::getpid());
  int code = 0;
  za_ = zip_open(tmp_path_.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &code);
  if (!za_) fail("{}: cannot create zip: {}", tmp_path_, zip_error_text(code));
}

ZipWriter::~ZipWriter() {
  if (za_) {
    zip_discard(za_);
    std::remove(tmp_path_.c_str());
  }
}

void ZipWriter::add(const std::string& entry, std::vector<uint8_t> data, ZipCompression c) {
  buffers_.push_back(std::make_unique<std::vector<uint8_t>>(std::move(data)));
  auto& buf = *buffers_.back();
  zip_source_t* src = zip_source_buffer(za_, buf.data(), buf.size(), 0);
  if (!src) fail("{}: cannot add '{}': {}", path_, entry, zip_strerror(za_));
  zip_int64_t idx = zip_file_add(za_, entry.c_str(), src, ZIP_FL_OVERWRITE | ZIP_FL_ENC_UTF_8);
  if (idx < 0) {
    zip_source_free(src);
    fail("{}: cannot add '{}': {}", path_, entry, zip_strerror(za_));
  }
  zip_set_file_compression(za_, static_cast<zip_uint64_t>(idx),
                           c == ZipCompression::kStore ? ZIP_CM_STORE : ZIP_CM_DEFLATE, 0);
}

void ZipWriter::add_file(const std::string& entry, const std::string& source_path, ZipCompression c) {
  zip_source_t* src = zip_source_file(za_, source_path.c_str(), 0, -1);
  if (!src) fail("{}: cannot add '{}' from {}: {}", path_, entry, source_path, zip_strerror(za_));
  zip_int64_t idx = zip_file_add(za_, entry.c_str(), src, ZIP_FL_OVERWRITE | ZIP_FL_ENC_UTF_8);
  if (idx < 0) {
    zip_source_free(src);
    fail("{}: cannot add '{}': {}", path_, entry, zip_strerror(za_));
  }
  zip_set_file_compression(za_, static_cast<zip_uint64_t>(idx),
                           c == ZipCompression::kStore ? ZIP_CM_STORE : ZIP_CM_DEFLATE, 0);
}

void ZipWriter::finish() {
  if (zip_close(za_) != 0) {
    std::string msg = zip_strerror(za_);
    zip_discard(za_);
    za_ = nullptr;
    std::remove(tmp_path_.c_str());
    fail("{}: cannot write zip: {}", path_, msg);
  }
  za_ = nullptr;
  buffers_.clear();
  if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    std::remove(tmp_path_.c_str());
    fail("{}: cannot move the finished file into place", path_);
  }
}

}  // namespace dmeval
