#include "core/npy.h"

#include <algorithm>
#include <cstring>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/zip_archive.h"

namespace dmeval {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMaxHeader = 1 << 20;

struct NpyHeader {
  DType dtype = DType::kFloat32;
  bool big_endian = false;
  bool fortran = false;
  std::vector<int64_t> shape;
};

// Minimal parser for the Python dict literal numpy writes:
// {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
class HeaderParser {
 public:
  HeaderParser(const std::string& text, const std::string& name) : t_(text), name_(name) {}

  NpyHeader parse() {
    NpyHeader h;
    bool have_descr = false, have_order = false, have_shape = false;
    expect('{');
    for (;;) {
      ws();
      if (peek() == '}') break;
      std::string key = str();
      ws();
      expect(':');
      ws();
      if (key == "descr") {
        if (peek() != '\'' && peek() != '"') bad("structured dtypes are not supported");
        descr(str(), h);
        have_descr = true;
      } else if (key == "fortran_order") {
        h.fortran = boolean();
        have_order = true;
      } else if (key == "shape") {
        h.shape = tuple();
        have_shape = true;
      } else {
        bad("unexpected key '" + key + "'");
      }
      ws();
      if (peek() == ',') ++p_;
    }
    if (!have_descr || !have_order || !have_shape) bad("missing descr, fortran_order or shape");
    return h;
  }

 private:
  [[noreturn]] void bad(const std::string& what) {
    fail("{}: bad .npy header ({}): {}", name_, what, t_.substr(0, 200));
  }
  char peek() { return p_ < t_.size() ? t_[p_] : '\0'; }
  void ws() {
    while (p_ < t_.size() && (t_[p_] == ' ' || t_[p_] == '\t')) ++p_;
  }
  void expect(char c) {
    ws();
    if (peek() != c) bad(std::string("expected '") + c + "'");
    ++p_;
  }
  std::string str() {
    char q = peek();
    if (q != '\'' && q != '"') bad("expected a string");
    size_t end = t_.find(q, p_ + 1);
    if (end == std::string::npos) bad("unterminated string");
    std::string s = t_.substr(p_ + 1, end - p_ - 1);
    p_ = end + 1;
    return s;
  }
  bool boolean() {
    if (t_.compare(p_, 4, "True") == 0) {
      p_ += 4;
      return true;
    }
    if (t_.compare(p_, 5, "False") == 0) {
      p_ += 5;
      return false;
    }
    bad("expected True or False");
  }
  std::vector<int64_t> tuple() {
    std::vector<int64_t> dims;
    expect('(');
    for (;;) {
      ws();
      if (peek() == ')') {
        ++p_;
        return dims;
      }
      int64_t v = 0;
      size_t start = p_;
      while (p_ < t_.size() && t_[p_] >= '0' && t_[p_] <= '9') {
        if (v > (INT64_MAX - 9) / 10) bad("dimension too large");
        v = v * 10 + (t_[p_++] - '0');
      }
      if (p_ == start) bad("expected a dimension");
      if (t_.compare(p_, 1, "L") == 0) ++p_;  // Python 2 longs
      dims.push_back(v);
      if (dims.size() > 64) bad("too many dimensions");
      ws();
      if (peek() == ',') ++p_;
    }
  }
  void descr(const std::string& d, NpyHeader& h) {
    if (d.size() < 3) bad("dtype '" + d + "'");
    char order = d[0];
    std::string code = d.substr(1);
    if (order == '>')
      h.big_endian = true;
    else if (order != '<' && order != '|' && order != '=')
      bad("dtype '" + d + "'");
    static const std::pair<const char*, DType> kCodes[] = {
        {"f4", DType::kFloat32}, {"f8", DType::kFloat64}, {"f2", DType::kFloat16},
        {"u1", DType::kUInt8},   {"i1", DType::kInt8},    {"i2", DType::kInt16},
        {"i4", DType::kInt32},   {"i8", DType::kInt64},   {"b1", DType::kBool}};
    for (const auto& [c, t] : kCodes) {
      if (code == c) {
        h.dtype = t;
        if (dtype_size(t) == 1) h.big_endian = false;
        return;
      }
    }
    bad("unsupported dtype '" + d + "'");
  }

  const std::string& t_;
  const std::string& name_;
  size_t p_ = 0;
};

const char* npy_descr(DType t) {
  switch (t) {
    case DType::kFloat32: return "<f4";
    case DType::kFloat64: return "<f8";
    case DType::kFloat16: return "<f2";
    case DType::kUInt8: return "|u1";
    case DType::kInt8: return "|i1";
    case DType::kInt16: return "<i2";
    case DType::kInt32: return "<i4";
    case DType::kInt64: return "<i8";
    case DType::kBool: return "|b1";
    case DType::kBFloat16: break;
  }
  fail("dtype {} cannot be stored in .npy", dtype_name(t));
}

// Reads the header; returns the header and the data offset.
std::pair<NpyHeader, uint64_t> read_header(const ByteSource& src) {
  const std::string& name = src.name();
  src.require(0, 10, ".npy preamble");
  uint8_t pre[12] = {};
  src.read_at(0, pre, std::min<uint64_t>(12, src.size()));
  if (std::memcmp(pre, kMagic, 6) != 0) fail("{}: not a .npy file (bad magic)", name);
  uint8_t major = pre[6];
  uint64_t hlen, hstart;
  if (major == 1) {
    hlen = pre[8] | (pre[9] << 8);
    hstart = 10;
  } else if (major == 2 || major == 3) {
    src.require(0, 12, ".npy preamble");
    hlen = pre[8] | (pre[9] << 8) | (pre[10] << 16) | (static_cast<uint64_t>(pre[11]) << 24);
    hstart = 12;
  } else {
    fail("{}: .npy format version {}.{} is not supported", name, major, pre[7]);
  }
  if (hlen > kMaxHeader) fail("{}: .npy header of {} bytes is too large", name, hlen);
  src.require(hstart, hlen, ".npy header");
  std::string text(hlen, '\0');
  src.read_at(hstart, text.data(), hlen);
  HeaderParser p(text, name);
  return {p.parse(), hstart + hlen};
}

void byteswap(std::vector<uint8_t>& b, size_t es) {
  for (size_t i = 0; i + es <= b.size(); i += es) std::reverse(b.begin() + i, b.begin() + i + es);
}

// Turns raw file-order data into C-order little-endian in place.
void normalize(const NpyHeader& h, std::vector<uint8_t>& data) {
  size_t es = dtype_size(h.dtype);
  if (h.big_endian) byteswap(data, es);
  if (h.fortran && h.shape.size() > 1) {
    std::vector<int64_t> strides(h.shape.size());
    int64_t s = 1;
    for (size_t d = 0; d < h.shape.size(); ++d) {
      strides[d] = s;
      s *= std::max<int64_t>(h.shape[d], 1);
    }
    data = gather_strided(data.data(), checked_numel(h.shape), es, 0, h.shape, strides);
  }
}

uint64_t data_bytes(const NpyHeader& h, const std::string& name) {
  int64_t n;
  try {
    n = checked_numel(h.shape);
  } catch (const Error& e) {
    fail("{}: {}", name, e.what());
  }
  if (static_cast<uint64_t>(n) > UINT64_MAX / 8) fail("{}: array too large", name);
  return static_cast<uint64_t>(n) * dtype_size(h.dtype);
}

}  // namespace

TensorData read_npy(const ByteSource& src) {
  auto [h, off] = read_header(src);
  uint64_t n = data_bytes(h, src.name());
  if (n > src.size() - off)
    fail("{}: truncated: {} {} needs {} data bytes at offset {}, only {} present", src.name(),
         dtype_name(h.dtype), shape_str(h.shape), n, off, src.size() - off);
  TensorData t;
  t.dtype = h.dtype;
  t.shape = h.shape;
  t.bytes = src.read_vector(off, n);
  normalize(h, t.bytes);
  return t;
}

TensorData read_npy_file(const std::string& path) {
  FileSource f(path);
  return read_npy(f);
}

std::vector<uint8_t> encode_npy_header(DType dtype, const std::vector<int64_t>& shape_dims) {
  // Python's tuple repr: (), (3,), (3, 4)
  std::string shape = "(";
  for (size_t i = 0; i < shape_dims.size(); ++i) shape += (i ? ", " : "") + std::to_string(shape_dims[i]);
  shape += shape_dims.size() == 1 ? ",)" : ")";
  std::string dict =
      fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}", npy_descr(dtype), shape);
  bool v2 = dict.size() + 11 > 65535;
  size_t pre = v2 ? 12 : 10;
  size_t total = pre + dict.size() + 1;
  size_t pad = (64 - total % 64) % 64;
  dict.append(pad, ' ');
  dict.push_back('\n');
  std::vector<uint8_t> out(kMagic, kMagic + 6);
  out.push_back(v2 ? 2 : 1);
  out.push_back(0);
  uint32_t hl = static_cast<uint32_t>(dict.size());
  out.push_back(hl & 0xff);
  out.push_back((hl >> 8) & 0xff);
  if (v2) {
    out.push_back((hl >> 16) & 0xff);
    out.push_back((hl >> 24) & 0xff);
  }
  out.insert(out.end(), dict.begin(), dict.end());
  return out;
}

NpyFileInfo read_npy_info(const std::string& path) {
  FileSource f(path);
  auto [h, off] = read_header(f);
  if (h.big_endian || (h.fortran && h.shape.size() > 1))
    fail("{}: expected a C-order little-endian .npy", path);
  const uint64_t n = data_bytes(h, path);
  if (n > f.size() - off)
    fail("{}: truncated: {} {} needs {} data bytes at offset {}, only {} present", path, dtype_name(h.dtype),
         shape_str(h.shape), n, off, f.size() - off);
  return {h.dtype, h.shape, off, n};
}

std::vector<uint8_t> encode_npy(const TensorData& t) {
  if (t.bytes.size() != static_cast<size_t>(t.numel()) * dtype_size(t.dtype))
    fail("encode_npy: {} bytes do not match shape {}", t.bytes.size(), shape_str(t.shape));
  std::vector<uint8_t> out = encode_npy_header(t.dtype, t.shape);
  out.insert(out.end(), t.bytes.begin(), t.bytes.end());
  return out;
}

void write_npy(const std::string& path, const TensorData& t) {
  std::vector<uint8_t> bytes = encode_npy(t);
  AtomicFile f(path);
  f.write(bytes.data(), bytes.size());
  f.commit();
}

namespace {
std::vector<std::string> npy_entry_names(const ZipReader& zip) {
  std::vector<std::string> names;
  for (size_t i = 0; i < zip.size(); ++i) {
    std::string n = zip.entry_name(i);
    if (n.size() > 4 && n.compare(n.size() - 4, 4, ".npy") == 0) names.push_back(n.substr(0, n.size() - 4));
  }
  return names;
}
}  // namespace

NpzReader NpzReader::open(const std::string& path) {
  NpzReader r;
  r.path_ = path;
  r.zip_ = std::make_shared<ZipReader>(ZipReader::open_file(path));
  r.names_ = npy_entry_names(*r.zip_);
  return r;
}

NpzReader NpzReader::from_memory(const std::string& name, std::vector<uint8_t> bytes) {
  NpzReader r;
  r.path_ = name;
  r.zip_ = std::make_shared<ZipReader>(ZipReader::open_memory(name, std::move(bytes)));
  r.names_ = npy_entry_names(*r.zip_);
  return r;
}

bool NpzReader::contains(const std::string& name) const {
  return std::find(names_.begin(), names_.end(), name) != names_.end();
}

TensorData NpzReader::read(const std::string& name) const {
  auto idx = zip_->find(name + ".npy");
  if (!idx) {
    std::string avail;
    for (const auto& n : names_) avail += (avail.empty() ? "" : ", ") + n;
    fail("{}: no array '{}' (available: {})", path_, name, avail.empty() ? "none" : avail);
  }
  // Read the entry once, then drop the header in place (no second copy of large arrays).
  MemorySource entry(path_ + ":" + name + ".npy", zip_->read(*idx));
  auto [h, off] = read_header(entry);
  uint64_t n = data_bytes(h, entry.name());
  if (n > entry.size() - off)
    fail("{}: truncated: {} {} needs {} data bytes, only {} present", entry.name(), dtype_name(h.dtype),
         shape_str(h.shape), n, entry.size() - off);
  std::vector<uint8_t> data = entry.release();
  data.erase(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(off));
  data.resize(n);
  TensorData t;
  t.dtype = h.dtype;
  t.shape = h.shape;
  t.bytes = std::move(data);
  normalize(h, t.bytes);
  return t;
}

void write_npz(const std::string& path, const std::vector<std::pair<std::string, TensorData>>& arrays,
               bool compressed) {
  ZipWriter w(path);
  for (const auto& [name, t] : arrays)
    w.add(name + ".npy", encode_npy(t), compressed ? ZipCompression::kDeflate : ZipCompression::kStore);
  w.finish();
}

}  // namespace dmeval
