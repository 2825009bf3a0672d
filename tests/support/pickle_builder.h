// Builds pickle byte streams and legacy torch.save files opcode by opcode, for tests that need
// files no reference tool would write (hostile globals, cycles, truncation, odd strides).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace dmeval::test {

class PickleBuilder {
 public:
  PickleBuilder& proto(int v = 2) { return op(0x80).byte(v); }
  PickleBuilder& stop() { return op('.'); }
  PickleBuilder& mark() { return op('('); }
  PickleBuilder& none() { return op('N'); }
  PickleBuilder& boolean(bool b) { return op(b ? 0x88 : 0x89); }
  PickleBuilder& empty_dict() { return op('}'); }
  PickleBuilder& empty_list() { return op(']'); }
  PickleBuilder& empty_tuple() { return op(')'); }
  PickleBuilder& tuple() { return op('t'); }
  PickleBuilder& setitem() { return op('s'); }
  PickleBuilder& setitems() { return op('u'); }
  PickleBuilder& append() { return op('a'); }
  PickleBuilder& appends() { return op('e'); }
  PickleBuilder& reduce() { return op('R'); }
  PickleBuilder& build() { return op('b'); }
  PickleBuilder& binpersid() { return op('Q'); }
  PickleBuilder& binput(uint8_t k) { return op('q').byte(k); }
  PickleBuilder& binget(uint8_t k) { return op('h').byte(k); }
  PickleBuilder& global(const std::string& module, const std::string& name) {
    op('c');
    bytes_ += module + "\n" + name + "\n";
    return *this;
  }
  PickleBuilder& str(const std::string& s) {
    op('X');
    le(s.size(), 4);
    bytes_ += s;
    return *this;
  }
  PickleBuilder& integer(int64_t v) {
    if (v >= INT32_MIN && v <= INT32_MAX) {
      op('J');
      le(static_cast<uint32_t>(v), 4);
    } else {
      op(0x8a).byte(8);
      le(static_cast<uint64_t>(v), 8);
    }
    return *this;
  }
  PickleBuilder& long1(const std::string& le_bytes) {
    op(0x8a).byte(static_cast<int>(le_bytes.size()));
    bytes_ += le_bytes;
    return *this;
  }
  PickleBuilder& int_tuple(const std::vector<int64_t>& v) {
    mark();
    for (int64_t x : v) integer(x);
    return tuple();
  }
  PickleBuilder& op(int c) { return byte(c); }
  PickleBuilder& byte(int c) {
    bytes_.push_back(static_cast<char>(c));
    return *this;
  }
  PickleBuilder& raw(const std::string& s) {
    bytes_ += s;
    return *this;
  }
  const std::string& bytes() const { return bytes_; }

 private:
  void le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) bytes_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  std::string bytes_;
};

struct LegacyTensor {
  std::string name;
  std::string storage_key;
  int64_t offset = 0;
  std::vector<int64_t> sizes;
  std::vector<int64_t> strides;
};

// A legacy (pre-zip) torch.save file of a dict of float32 tensors over the given storages.
inline std::string legacy_torch_file(const std::vector<LegacyTensor>& tensors,
                                     const std::map<std::string, std::vector<float>>& storages) {
  std::string out;
  out += PickleBuilder()
             .proto()
             .long1(std::string("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10))
             .stop()
             .bytes();
  out += PickleBuilder().proto().integer(1001).stop().bytes();
  out += PickleBuilder()
             .proto()
             .empty_dict()
             .mark()
             .str("protocol_version")
             .integer(1001)
             .str("little_endian")
             .boolean(true)
             .setitems()
             .stop()
             .bytes();
  PickleBuilder main;
  main.proto().empty_dict().mark();
  for (const auto& t : tensors) {
    main.str(t.name).global("torch._utils", "_rebuild_tensor_v2").mark();
    main.mark()
        .str("storage")
        .global("torch", "FloatStorage")
        .str(t.storage_key)
        .str("cpu")
        .integer(static_cast<int64_t>(storages.at(t.storage_key).size()))
        .none()
        .tuple()
        .binpersid();
    main.integer(t.offset).int_tuple(t.sizes).int_tuple(t.strides).boolean(false);
    main.global("collections", "OrderedDict").empty_tuple().reduce();
    main.tuple().reduce();
  }
  main.setitems().stop();
  out += main.bytes();
  PickleBuilder keys;
  keys.proto().empty_list().mark();
  for (const auto& [k, v] : storages) keys.str(k);
  keys.appends().stop();
  out += keys.bytes();
  for (const auto& [k, v] : storages) {
    int64_t n = static_cast<int64_t>(v.size());
    out.append(reinterpret_cast<const char*>(&n), 8);
    out.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
  }
  return out;
}

inline std::vector<uint8_t> to_bytes(const std::string& s) {
  return std::vector<uint8_t>(s.begin(), s.end());
}

}  // namespace dmeval::test
