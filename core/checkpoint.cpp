#include "core/checkpoint.h"

#include <algorithm>
#include <functional>
#include <optional>
#include <unordered_set>

#include "core/error.h"
#include "core/safetensors.h"
#include "core/zip_archive.h"

namespace dmeval {

const char* checkpoint_format_name(CheckpointFormat f) {
  switch (f) {
    case CheckpointFormat::kTorchLegacy: return "torch.save legacy";
    case CheckpointFormat::kTorchZip: return "torch.save zip";
    case CheckpointFormat::kSafetensors: return "safetensors";
  }
  return "?";
}

struct Checkpoint::Impl {
  struct StorageLoc {
    uint64_t offset = 0;     // legacy/safetensors: absolute file offset of the data
    int64_t zip_index = -1;  // zip: entry holding the data
    std::string problem;     // non-empty: why the data cannot be read
  };

  std::string path;
  CheckpointFormat format = CheckpointFormat::kTorchZip;
  PickleDoc doc;
  ValueId root = kNoValue;
  std::shared_ptr<ByteSource> source;
  std::optional<ZipReader> zip;
  std::vector<StorageLoc> locs;

  uint64_t storage_bytes(size_t s) const {
    return static_cast<uint64_t>(doc.storages[s].numel) * dtype_size(doc.storages[s].dtype);
  }

  // Bytes [0, n) of storage s.
  std::vector<uint8_t> read_storage_prefix(size_t s, uint64_t n) const {
    const StorageLoc& loc = locs.at(s);
    if (!loc.problem.empty()) fail("{}", loc.problem);
    std::vector<uint8_t> out(n);
    if (n == 0) return out;
    if (loc.zip_index >= 0)
      zip->read_prefix(static_cast<size_t>(loc.zip_index), out.data(), n);
    else
      source->read_at(loc.offset, out.data(), n);
    return out;
  }
};

namespace {

constexpr char kLegacyMagic[] = "\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";  // 0x1950a86a20f9469cfc6c LE

bool starts_with(const std::vector<uint8_t>& head, const char* sig, size_t n) {
  return head.size() >= n && std::equal(sig, sig + n, reinterpret_cast<const char*>(head.data()));
}

void load_legacy(Checkpoint::Impl& im, const PickleOptions& po) {
  const ByteSource& src = *im.source;
  Cursor c(src);
  PickleDoc& doc = im.doc;
  ValueId magic = unpickle(c, doc, po);
  const Value& m = doc.at(magic);
  if (m.kind != ValueKind::kBigInt || m.s != std::string(kLegacyMagic, 10))
    fail("{}: not a torch.save file: the first pickle is not torch's magic number", im.path);
  ValueId proto = unpickle(c, doc, po);
  if (doc.at(proto).kind != ValueKind::kInt || doc.at(proto).i != 1001)
    fail("{}: legacy torch.save protocol {} is not supported (expected 1001)", im.path,
         value_summary(doc, proto));
  ValueId sys = unpickle(c, doc, po);
  const Value& si = doc.at(sys);
  if (si.kind == ValueKind::kDict) {
    for (size_t k = 0; k + 1 < si.items.size(); k += 2) {
      const Value& key = doc.at(si.items[k]);
      const Value& v = doc.at(si.items[k + 1]);
      if (key.kind == ValueKind::kString && key.s == "little_endian" && v.kind == ValueKind::kBool && !v.i)
        fail("{}: saved on a big-endian machine; only little-endian files are supported", im.path);
    }
  }
  im.root = unpickle(c, doc, po);
  ValueId keys = unpickle(c, doc, po);
  const Value& kl = doc.at(keys);
  if (kl.kind != ValueKind::kList) fail("{}: storage key list is not a list", im.path);
  im.locs.assign(doc.storages.size(), {});
  for (auto& l : im.locs) l.problem = fmt::format("{}: storage not listed in the file's key list", im.path);
  // Data section: for each key, int64 element count then the raw elements.
  uint64_t pos = c.pos();
  bool lost = false;  // a record header could not be read: later offsets are unknown
  for (ValueId kid : kl.items) {
    const Value& key = doc.at(kid);
    if (key.kind != ValueKind::kString) fail("{}: storage key is not a string", im.path);
    auto it = doc.storage_by_key.find(key.s);
    if (it == doc.storage_by_key.end())
      fail("{}: storage '{}' is listed but no tensor uses it; its element size is unknown", im.path, key.s);
    size_t s = it->second;
    uint64_t bytes = im.storage_bytes(s);
    auto& loc = im.locs[s];
    if (lost) {
      loc.problem = fmt::format(
          "{}: truncated: storage '{}' ({} {} = {} bytes) lies after offset {}, past the end of the "
          "file ({} bytes)",
          im.path, key.s, doc.storages[s].numel, dtype_name(doc.storages[s].dtype), bytes, pos, src.size());
      continue;
    }
    if (pos + 8 > src.size()) {
      lost = true;
      loc.problem = fmt::format(
          "{}: truncated: storage '{}' ({} bytes) expected at offset {}, but the file has only {} bytes",
          im.path, key.s, bytes + 8, pos, src.size());
      continue;
    }
    uint8_t nb[8];
    src.read_at(pos, nb, 8);
    int64_t count = 0;
    for (int i = 0; i < 8; ++i) count |= static_cast<int64_t>(nb[i]) << (8 * i);
    if (count != doc.storages[s].numel)
      fail("{}: offset {}: storage '{}' records {} elements, the pickle declared {}", im.path, pos, key.s,
           count, doc.storages[s].numel);
    loc.offset = pos + 8;
    if (bytes > src.size() - loc.offset)
      loc.problem = fmt::format(
          "{}: truncated: storage '{}' needs {} bytes at offset {}, but only {} bytes are present "
          "(file size {})",
          im.path, key.s, bytes, loc.offset, src.size() - loc.offset, src.size());
    else
      loc.problem.clear();
    if (bytes > src.size() - loc.offset) lost = true;
    pos = loc.offset + bytes;
  }
}

void load_zip(Checkpoint::Impl& im, const PickleOptions& po) {
  const ZipReader& z = *im.zip;
  std::optional<size_t> pkl;
  std::string prefix;
  for (size_t i = 0; i < z.size(); ++i) {
    std::string n = z.entry_name(i);
    const std::string tail = "data.pkl";
    if (n.size() >= tail.size() && n.compare(n.size() - tail.size(), tail.size(), tail) == 0) {
      std::string p = n.substr(0, n.size() - tail.size());
      if (!p.empty() && p.back() != '/') continue;
      if (!pkl || p.size() < prefix.size()) {
        pkl = i;
        prefix = p;
      }
    }
  }
  if (!pkl) fail("{}: zip archive has no data.pkl: not a torch.save file", im.path);
  if (auto bo = z.find(prefix + "byteorder")) {
    auto b = z.read(*bo);
    if (std::string(b.begin(), b.end()) != "little")
      fail("{}: byteorder '{}' is not supported (little-endian only)", im.path,
           std::string(b.begin(), b.end()));
  }
  MemorySource pickle_bytes(im.path + ":" + prefix + "data.pkl", z.read(*pkl));
  Cursor c(pickle_bytes);
  im.root = unpickle(c, im.doc, po);
  im.locs.assign(im.doc.storages.size(), {});
  for (size_t s = 0; s < im.doc.storages.size(); ++s) {
    const std::string entry = prefix + "data/" + im.doc.storages[s].key;
    auto idx = z.find(entry);
    auto& loc = im.locs[s];
    if (!idx) {
      loc.problem = fmt::format("{}: storage entry '{}' is missing from the archive", im.path, entry);
      continue;
    }
    loc.zip_index = static_cast<int64_t>(*idx);
    uint64_t need = im.storage_bytes(s), have = z.entry_size(*idx);
    if (have < need)
      loc.problem = fmt::format("{}: truncated: entry '{}' needs {} bytes, only {} present", im.path, entry,
                                need, have);
  }
}

void load_safetensors(Checkpoint::Impl& im) {
  SafetensorsHeader h = parse_safetensors_header(*im.source);
  PickleDoc& doc = im.doc;
  auto add = [&](Value v) {
    doc.values.push_back(std::move(v));
    return static_cast<ValueId>(doc.values.size() - 1);
  };
  Value root;
  root.kind = ValueKind::kDict;
  std::vector<ValueId> items;
  for (const auto& e : h.entries) {
    Value k;
    k.kind = ValueKind::kString;
    k.s = e.name;
    items.push_back(add(k));
    size_t s = doc.storages.size();
    doc.storages.push_back({e.name, e.dtype, checked_numel(e.shape), "cpu"});
    doc.storage_by_key[e.name] = s;
    Checkpoint::Impl::StorageLoc loc;
    loc.offset = e.offset;
    im.locs.push_back(loc);
    TensorRef t;
    t.storage = s;
    t.sizes = e.shape;
    t.strides.assign(e.shape.size(), 1);
    for (size_t d = e.shape.size(); d-- > 1;)
      t.strides[d - 1] = t.strides[d] * std::max<int64_t>(e.shape[d], 1);
    doc.tensors.push_back(t);
    Value tv;
    tv.kind = ValueKind::kTensor;
    tv.i = static_cast<int64_t>(doc.tensors.size() - 1);
    items.push_back(add(tv));
  }
  if (!h.metadata.empty()) {
    Value md;
    md.kind = ValueKind::kDict;
    for (const auto& [mk, mv] : h.metadata) {
      Value a, b;
      a.kind = b.kind = ValueKind::kString;
      a.s = mk;
      b.s = mv;
      md.items.push_back(add(a));
      md.items.push_back(add(b));
    }
    Value k;
    k.kind = ValueKind::kString;
    k.s = "__metadata__";
    items.push_back(add(k));
    items.push_back(add(md));
  }
  root.items = std::move(items);
  im.root = add(root);
}

// Whether the first 8 bytes, read as safetensors' little-endian header length, fit the file (a pickle's
// first bytes read so are far larger than any file).
bool safetensors_length_fits(const std::vector<uint8_t>& head, uint64_t file_size) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | head[static_cast<size_t>(i)];
  return n <= file_size - 8;
}

std::shared_ptr<Checkpoint::Impl> load(std::string name, std::shared_ptr<ByteSource> src,
                                       std::optional<std::vector<uint8_t>> memory,
                                       const CheckpointOptions& options) {
  auto im = std::make_shared<Checkpoint::Impl>();
  im->path = std::move(name);
  im->source = std::move(src);
  PickleOptions po;
  po.opaque_objects = options.opaque_objects;
  std::vector<uint8_t> head = im->source->read_vector(0, std::min<uint64_t>(16, im->source->size()));
  if (head.empty()) fail("{}: file is empty", im->path);
  if (starts_with(head, "PK\x03\x04", 4)) {
    im->format = CheckpointFormat::kTorchZip;
    im->zip = memory ? ZipReader::open_memory(im->path, std::move(*memory)) : ZipReader::open_file(im->path);
    load_zip(*im, po);
  } else if (head.size() >= 9 && head[8] == '{' && safetensors_length_fits(head, im->source->size())) {
    // Before the pickle test: a header length whose low byte is 0x80 looks like pickle's PROTO opcode.
    im->format = CheckpointFormat::kSafetensors;
    load_safetensors(*im);
  } else if (head[0] == 0x80) {
    im->format = CheckpointFormat::kTorchLegacy;
    load_legacy(*im, po);
  } else if (head.size() >= 8 && std::string(head.begin(), head.begin() + 5) == "\x93NUMPY") {
    fail("{}: this is a NumPy .npy file, not a checkpoint", im->path);
  } else {
    fail("{}: unknown checkpoint format (expected a torch.save zip or legacy pickle, or safetensors)",
         im->path);
  }
  return im;
}

}  // namespace

Checkpoint Checkpoint::open(const std::string& path, const CheckpointOptions& options) {
  Checkpoint c;
  c.impl_ = load(path, std::make_shared<FileSource>(path), std::nullopt, options);
  return c;
}

Checkpoint Checkpoint::from_memory(const std::string& name, std::vector<uint8_t> bytes,
                                   const CheckpointOptions& options) {
  auto src = std::make_shared<MemorySource>(name, bytes);
  Checkpoint c;
  c.impl_ = load(name, std::move(src), std::move(bytes), options);
  return c;
}

const std::string& Checkpoint::path() const {
  return impl_->path;
}
CheckpointFormat Checkpoint::format() const {
  return impl_->format;
}
const PickleDoc& Checkpoint::doc() const {
  return impl_->doc;
}
ValueId Checkpoint::root() const {
  return impl_->root;
}

namespace {
std::string key_text(const PickleDoc& doc, ValueId k) {
  const Value& v = doc.at(k);
  if (v.kind == ValueKind::kString) return v.s;
  if (v.kind == ValueKind::kInt) return std::to_string(v.i);
  return value_summary(doc, k);
}
constexpr int kMaxDepth = 128;
}  // namespace

std::vector<TensorEntry> Checkpoint::tensors_under(ValueId node, const std::string& prefix) const {
  const PickleDoc& doc = impl_->doc;
  std::vector<TensorEntry> out;
  std::unordered_set<ValueId> on_path;
  std::function<void(ValueId, const std::string&, int)> walk = [&](ValueId id, const std::string& p,
                                                                   int depth) {
    if (depth > kMaxDepth || on_path.count(id)) return;
    const Value& v = doc.at(id);
    auto join = [&](const std::string& k) { return p.empty() ? k : p + "/" + k; };
    on_path.insert(id);
    switch (v.kind) {
      case ValueKind::kTensor: out.push_back({p, id}); break;
      case ValueKind::kDict:
        for (size_t k = 0; k + 1 < v.items.size(); k += 2)
          walk(v.items[k + 1], join(key_text(doc, v.items[k])), depth + 1);
        break;
      case ValueKind::kList:
      case ValueKind::kTuple:
        for (size_t k = 0; k < v.items.size(); ++k) walk(v.items[k], join(std::to_string(k)), depth + 1);
        break;
      default: break;
    }
    on_path.erase(id);
  };
  walk(node, prefix, 0);
  return out;
}

std::vector<TensorEntry> Checkpoint::tensors() const {
  return tensors_under(impl_->root, "");
}

namespace {
// Resolves a key path; returns kNoValue and fills `missing` when it fails.
ValueId resolve(const PickleDoc& doc, ValueId node, std::string_view path, std::string* missing) {
  std::string done;
  for (int depth = 0; !path.empty(); ++depth) {
    if (depth > kMaxDepth) break;
    const Value& v = doc.at(node);
    ValueId next = kNoValue;
    size_t consumed = 0;
    if (v.kind == ValueKind::kDict) {
      for (size_t k = 0; k + 1 < v.items.size(); k += 2) {  // longest key that prefixes the path
        std::string key = key_text(doc, v.items[k]);
        if (key.size() <= consumed && next != kNoValue) continue;
        if (path == key ||
            (path.size() > key.size() && path.compare(0, key.size(), key) == 0 && path[key.size()] == '/')) {
          next = v.items[k + 1];
          consumed = key.size();
        }
      }
    } else if (v.kind == ValueKind::kList || v.kind == ValueKind::kTuple) {
      size_t slash = path.find('/');
      std::string_view seg = path.substr(0, slash);
      size_t idx = 0;
      bool ok = !seg.empty() && seg.size() < 10;
      for (char ch : seg) {
        if (ch < '0' || ch > '9') ok = false;
        idx = idx * 10 + static_cast<size_t>(ch - '0');
      }
      if (ok && idx < v.items.size()) {
        next = v.items[idx];
        consumed = seg.size();
      }
    }
    if (next == kNoValue) {
      std::string seg(path.substr(0, path.find('/')));
      std::string avail;
      if (v.kind == ValueKind::kDict) {
        for (size_t k = 0; k + 1 < v.items.size() && k < 16; k += 2)
          avail += (k ? ", " : "") + key_text(doc, v.items[k]);
        if (v.items.size() > 16) avail += ", ...";
      } else if (v.kind == ValueKind::kList || v.kind == ValueKind::kTuple) {
        avail = fmt::format("indices 0..{}", v.items.size() ? v.items.size() - 1 : 0);
      } else {
        avail = "nothing: it is " + value_summary(doc, node);
      }
      *missing =
          fmt::format("no entry '{}' under '{}' (available: {})", seg, done.empty() ? "/" : done, avail);
      return kNoValue;
    }
    done += (done.empty() ? "" : "/") + std::string(path.substr(0, consumed));
    path.remove_prefix(consumed);
    if (!path.empty() && path[0] == '/') path.remove_prefix(1);
    node = next;
  }
  return node;
}
}  // namespace

ValueId Checkpoint::find(std::string_view key_path) const {
  std::string missing;
  ValueId id = resolve(impl_->doc, impl_->root, key_path, &missing);
  if (id == kNoValue) fail("{}: {}", impl_->path, missing);
  return id;
}

bool Checkpoint::contains(std::string_view key_path) const {
  std::string missing;
  return resolve(impl_->doc, impl_->root, key_path, &missing) != kNoValue;
}

DType Checkpoint::dtype(ValueId tensor) const {
  const PickleDoc& doc = impl_->doc;
  const Value& v = doc.at(tensor);
  if (v.kind != ValueKind::kTensor)
    fail("{}: value is {}, not a tensor", impl_->path, value_summary(doc, tensor));
  return doc.storages[doc.tensor(v).storage].dtype;
}

const std::vector<int64_t>& Checkpoint::shape(ValueId tensor) const {
  const PickleDoc& doc = impl_->doc;
  const Value& v = doc.at(tensor);
  if (v.kind != ValueKind::kTensor)
    fail("{}: value is {}, not a tensor", impl_->path, value_summary(doc, tensor));
  return doc.tensor(v).sizes;
}

TensorData Checkpoint::read(ValueId tensor) const {
  const PickleDoc& doc = impl_->doc;
  DType dt = dtype(tensor);
  const TensorRef& t = doc.tensor(doc.at(tensor));
  const size_t es = dtype_size(dt);
  int64_t extent = view_extent(t.offset, t.sizes, t.strides);
  // A view can repeat storage elements (stride 0); refuse expansions no real checkpoint has, so a
  // hostile file cannot make a few bytes ask for gigabytes.
  const uint64_t out_bytes = static_cast<uint64_t>(checked_numel(t.sizes)) * es;
  if (out_bytes > static_cast<uint64_t>(extent) * es * 1024 + (64u << 20))
    fail("{}: tensor view {} with strides {} expands {} storage elements to {} bytes: refusing", impl_->path,
         shape_str(t.sizes), shape_str(t.strides), extent, out_bytes);
  std::vector<uint8_t> storage = impl_->read_storage_prefix(t.storage, static_cast<uint64_t>(extent) * es);
  TensorData out;
  out.dtype = dt;
  out.shape = t.sizes;
  out.bytes = gather_strided(storage.data(), extent, es, t.offset, t.sizes, t.strides);
  return out;
}

TensorData Checkpoint::read_storage(size_t storage) const {
  const StorageRef& s = impl_->doc.storages.at(storage);
  TensorData out;
  out.dtype = s.dtype;
  out.shape = {s.numel};
  out.bytes = impl_->read_storage_prefix(storage, impl_->storage_bytes(storage));
  return out;
}

std::string Checkpoint::storage_problem(size_t storage) const {
  return impl_->locs.at(storage).problem;
}

}  // namespace dmeval
