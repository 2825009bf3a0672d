#include "core/cifar10.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "core/byte_source.h"
#include "core/error.h"
#include "core/pickle.h"
#include "core/tensor_data.h"

namespace dmeval {

namespace {

constexpr int64_t kPixels = 3 * 32 * 32;
constexpr int64_t kMaxImages = 1 << 20;  // far above any real batch (10,000)

const Value* dict_get(const PickleDoc& doc, const Value& dict, const std::string& key) {
  for (size_t i = 0; i + 1 < dict.items.size(); i += 2) {
    const Value& k = doc.at(dict.items[i]);
    if ((k.kind == ValueKind::kString || k.kind == ValueKind::kBytes) && k.s == key)
      return &doc.at(dict.items[i + 1]);
  }
  return nullptr;
}

// numpy.core.multiarray._reconstruct(ndarray, (0,), b'b') followed by BUILD with the state
// (version, shape, dtype, is_fortran, raw bytes): returns the shape and the raw bytes, checking the
// dtype is one-byte unsigned.
void numpy_uint8_array(const PickleDoc& doc, const Value& v, const std::string& path,
                       std::vector<int64_t>* shape, const std::string** raw) {
  auto bad = [&](const std::string& why) -> void {
    fail("{}: 'data' is not a numpy uint8 array as CIFAR-10 stores it: {}", path, why);
  };
  if (v.kind != ValueKind::kObject || v.s.find("_reconstruct") == std::string::npos || v.attrs == kNoValue)
    bad(v.kind == ValueKind::kObject ? "an object of " + v.s : "not an object");
  const Value& state = doc.at(v.attrs);
  if (state.kind != ValueKind::kTuple || state.items.size() != 5) bad("its state is not a 5-tuple");
  const Value& shp = doc.at(state.items[1]);
  if (shp.kind != ValueKind::kTuple) bad("no shape tuple");
  shape->clear();
  for (ValueId d : shp.items) {
    const Value& x = doc.at(d);
    if (x.kind != ValueKind::kInt || x.i < 0 || x.i > kMaxImages * kPixels) bad("bad dimension");
    shape->push_back(x.i);
  }
  // dtype: numpy.dtype('u1', 0, 1) (an object whose call arguments start with 'u1' or 'uint8').
  const Value& dt = doc.at(state.items[2]);
  bool uint8 = false;
  if (dt.kind == ValueKind::kObject && !dt.items.empty()) {
    const Value& args = doc.at(dt.items[0]);
    if (args.kind == ValueKind::kTuple && !args.items.empty()) {
      const Value& name = doc.at(args.items[0]);
      uint8 = name.s == "u1" || name.s == "uint8" || name.s == "|u1";
    }
  }
  if (!uint8) bad("its dtype is not uint8");
  const Value& fortran = doc.at(state.items[3]);
  if ((fortran.kind == ValueKind::kBool || fortran.kind == ValueKind::kInt) && fortran.i != 0)
    bad("Fortran order");
  const Value& data = doc.at(state.items[4]);
  if (data.kind != ValueKind::kString && data.kind != ValueKind::kBytes) bad("no raw bytes");
  *raw = &data.s;
}

Cifar10Batch read_python_batch(const ByteSource& src) {
  const std::string& path = src.name();
  Cursor in(src);
  PickleDoc doc;
  PickleOptions po;
  po.opaque_objects = true;  // numpy's classes: kept as inert records, interpreted below
  const ValueId root = unpickle(in, doc, po);
  const Value& d = doc.at(root);
  DMEVAL_CHECK(d.kind == ValueKind::kDict, "{}: not a CIFAR-10 batch (the pickle holds {}, not a dict)", path,
               value_summary(doc, root));
  const Value* data = dict_get(doc, d, "data");
  const Value* labels = dict_get(doc, d, "labels");
  DMEVAL_CHECK(data && labels, "{}: not a CIFAR-10 batch (no 'data' and 'labels' entries)", path);
  std::vector<int64_t> shape;
  const std::string* raw = nullptr;
  numpy_uint8_array(doc, *data, path, &shape, &raw);
  DMEVAL_CHECK(shape.size() == 2 && shape[1] == kPixels && shape[0] <= kMaxImages,
               "{}: 'data' has shape {}, CIFAR-10 batches are N x 3072", path, shape_str(shape));
  DMEVAL_CHECK(static_cast<int64_t>(raw->size()) == shape[0] * kPixels,
               "{}: 'data' holds {} bytes for {} images of 3072", path, raw->size(), shape[0]);
  DMEVAL_CHECK(labels->kind == ValueKind::kList && static_cast<int64_t>(labels->items.size()) == shape[0],
               "{}: {} labels for {} images", path, labels->items.size(), shape[0]);
  Cifar10Batch b;
  b.path = path;
  b.count = shape[0];
  b.planes.assign(raw->begin(), raw->end());
  for (ValueId id : labels->items) {
    const Value& l = doc.at(id);
    DMEVAL_CHECK(l.kind == ValueKind::kInt && l.i >= 0 && l.i < 10, "{}: label {} is not a class 0..9", path,
                 value_summary(doc, id));
    b.labels.push_back(l.i);
  }
  return b;
}

Cifar10Batch read_binary_batch(const ByteSource& src) {
  const std::string& path = src.name();
  const uint64_t record = kPixels + 1;
  DMEVAL_CHECK(src.size() > 0 && src.size() % record == 0,
               "{}: {} bytes is not a whole number of CIFAR-10 binary records (1 label + 3072 pixel bytes)",
               path, src.size());
  Cifar10Batch b;
  b.path = path;
  b.count = static_cast<int64_t>(src.size() / record);
  DMEVAL_CHECK(b.count <= kMaxImages, "{}: {} records", path, b.count);
  std::vector<uint8_t> all = src.read_vector(0, src.size());
  b.planes.resize(static_cast<size_t>(b.count * kPixels));
  for (int64_t i = 0; i < b.count; ++i) {
    const uint8_t label = all[static_cast<size_t>(i) * record];
    DMEVAL_CHECK(label < 10, "{}: record {} has label {}, not a class 0..9", path, i, label);
    b.labels.push_back(label);
    std::copy_n(all.begin() + static_cast<std::ptrdiff_t>(i * record + 1), kPixels,
                b.planes.begin() + static_cast<std::ptrdiff_t>(i * kPixels));
  }
  return b;
}

}  // namespace

Image Cifar10Batch::image(int64_t i) const {
  DMEVAL_CHECK(i >= 0 && i < count, "{}: image {} of {}", path, i, count);
  Image im;
  im.height = im.width = 32;
  im.pixels.resize(kPixels);
  const uint8_t* p = planes.data() + i * kPixels;
  for (int64_t px = 0; px < 1024; ++px)
    for (int64_t c = 0; c < 3; ++c) im.pixels[static_cast<size_t>(px * 3 + c)] = p[c * 1024 + px];
  return im;
}

Cifar10Batch read_cifar10_batch(const ByteSource& src) {
  DMEVAL_CHECK(src.size() > 0, "{}: empty file", src.name());
  uint8_t first = 0;
  src.read_at(0, &first, 1);
  return first == 0x80 ? read_python_batch(src) : read_binary_batch(src);
}

Cifar10Batch read_cifar10_batch(const std::string& path) {
  FileSource src(path);
  return read_cifar10_batch(src);
}

std::vector<std::string> cifar10_batch_files(const std::string& dir, const std::string& split) {
  DMEVAL_CHECK(split == "train" || split == "test", "CIFAR-10 split '{}' must be train or test", split);
  std::vector<std::string> names;
  if (split == "train")
    for (int k = 1; k <= 5; ++k) names.push_back(fmt::format("data_batch_{}", k));
  else
    names.push_back("test_batch");
  for (const char* suffix : {"", ".bin"}) {
    std::vector<std::string> found;
    for (const auto& n : names) {
      const std::string p = dir + "/" + n + suffix;
      if (std::filesystem::is_regular_file(p)) found.push_back(p);
    }
    if (found.empty()) continue;
    if (found.size() != names.size()) {
      std::string missing;
      for (const auto& n : names)
        if (!std::filesystem::is_regular_file(dir + "/" + n + suffix)) missing += " " + n + suffix;
      fail("{}: the CIFAR-10 {} split is incomplete; missing:{}", dir, split, missing);
    }
    return found;
  }
  return {};
}

}  // namespace dmeval
