#include "core/safetensors.h"

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"

namespace dmeval {

namespace {
constexpr uint64_t kMaxHeader = 100u << 20;  // the format's own limit is 100 MB
}

SafetensorsHeader parse_safetensors_header(const ByteSource& src) {
  const std::string& name = src.name();
  src.require(0, 8, "safetensors header length");
  uint8_t len_bytes[8];
  src.read_at(0, len_bytes, 8);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(len_bytes[i]) << (8 * i);
  if (n > kMaxHeader) fail("{}: safetensors header claims {} bytes (limit {})", name, n, kMaxHeader);
  src.require(8, n, "safetensors JSON header");
  std::string text(n, '\0');
  src.read_at(8, text.data(), n);
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(text);
  } catch (const std::exception& e) {
    fail("{}: safetensors header is not valid JSON: {}", name, e.what());
  }
  if (!j.is_object()) fail("{}: safetensors header is not a JSON object", name);
  const uint64_t data_start = 8 + n;
  const uint64_t data_size = src.size() - data_start;
  SafetensorsHeader h;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    const auto& v = it.value();
    if (key == "__metadata__") {
      if (!v.is_object()) fail("{}: __metadata__ is not an object", name);
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) fail("{}: __metadata__['{}'] is not a string", name, m.key());
        h.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
      fail("{}: tensor '{}' lacks dtype/shape/data_offsets", name, key);
    const auto& dt = v["dtype"];
    const auto& shape = v["shape"];
    const auto& offs = v["data_offsets"];
    if (!dt.is_string()) fail("{}: tensor '{}': dtype is not a string", name, key);
    auto dtype = dtype_from_safetensors(dt.get<std::string>());
    if (!dtype) fail("{}: tensor '{}': unsupported dtype '{}'", name, key, dt.get<std::string>());
    if (!shape.is_array() || shape.size() > 64) fail("{}: tensor '{}': bad shape", name, key);
    SafetensorsEntry e{key, *dtype, {}, 0, 0};
    for (const auto& d : shape) {
      if (!d.is_number_unsigned())
        fail("{}: tensor '{}': shape entries must be non-negative integers", name, key);
      e.shape.push_back(static_cast<int64_t>(d.get<uint64_t>() & 0x7fffffffffffffffULL));
    }
    if (!offs.is_array() || offs.size() != 2 || !offs[0].is_number_unsigned() ||
        !offs[1].is_number_unsigned())
      fail("{}: tensor '{}': data_offsets must be [begin, end]", name, key);
    uint64_t b = offs[0].get<uint64_t>(), en = offs[1].get<uint64_t>();
    if (en < b) fail("{}: tensor '{}': data_offsets end {} < begin {}", name, key, en, b);
    int64_t numel;
    try {
      numel = checked_numel(e.shape);
    } catch (const Error& ex) {
      fail("{}: tensor '{}': {}", name, key, ex.what());
    }
    uint64_t need = static_cast<uint64_t>(numel);
    if (need > UINT64_MAX / dtype_size(*dtype)) fail("{}: tensor '{}' too large", name, key);
    need *= dtype_size(*dtype);
    if (en - b != need)
      fail("{}: tensor '{}' {} {} needs {} bytes but data_offsets span {}", name, key, dtype_name(*dtype),
           shape_str(e.shape), need, en - b);
    if (en > data_size)
      fail("{}: truncated: tensor '{}' ends at data byte {}, but only {} data bytes are present", name, key,
           en, data_size);
    e.offset = data_start + b;
    e.bytes = need;
    h.entries.push_back(std::move(e));
  }
  return h;
}

void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, TensorData>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  if (!metadata.empty()) j["__metadata__"] = metadata;
  uint64_t off = 0;
  for (const auto& [name, t] : tensors) {
    if (t.bytes.size() != static_cast<size_t>(t.numel()) * dtype_size(t.dtype))
      fail("{}: tensor '{}' has {} bytes for shape {}", path, name, t.bytes.size(), shape_str(t.shape));
    j[name] = {{"dtype", dtype_to_safetensors(t.dtype)},
               {"shape", t.shape},
               {"data_offsets", {off, off + t.bytes.size()}}};
    off += t.bytes.size();
  }
  std::string header = j.dump();
  while ((8 + header.size()) % 8) header.push_back(' ');
  AtomicFile f(path);
  uint64_t n = header.size();
  char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  f.write(len, 8);
  f.write(header.data(), header.size());
  for (const auto& [name, t] : tensors) f.write(t.bytes.data(), t.bytes.size());
  f.commit();
}

}  // namespace dmeval
