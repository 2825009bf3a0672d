#include "core/pickle.h"

#include <cstring>
#include <string_view>
#include <unordered_map>

#include "core/error.h"
#include "core/tensor_data.h"

namespace dmeval {

namespace {

// What an allowed global does when called (REDUCE / NEWOBJ).
enum class Callable : uint8_t {
  kOrderedDict,      // collections.OrderedDict() -> empty dict
  kRebuildTensorV2,  // torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)
  kRebuildTensor,    // torch._utils._rebuild_tensor(storage, offset, size, stride)
  kRebuildParam,     // torch._utils._rebuild_parameter(tensor, requires_grad, hooks)
  kRebuildParamWithState,
  kStorageClass,    // torch.FloatStorage etc.: only meaningful inside persistent ids
  kTorchSize,       // torch.Size(tuple) -> tuple
  kCodecsEncode,    // _codecs.encode(str, 'latin1') -> bytes (how protocol 2 stores bytes)
  kSet,             // builtins.set(list) -> set
  kTorchDevice,     // torch.device('cuda', 0) -> string
  kRestoreTypeTag,  // torch.jit._pickle.restore_type_tag(value, 'Dict[str, Tensor]') -> value
};

struct AllowedGlobal {
  const char* module;
  const char* name;
  Callable callable;
};

// The complete allow-list. Everything a state dict, a Lightning checkpoint's tensors or an
// optimizer state needs; nothing that can act.
constexpr AllowedGlobal kAllowedGlobals[] = {
    {"collections", "OrderedDict", Callable::kOrderedDict},
    {"torch._utils", "_rebuild_tensor_v2", Callable::kRebuildTensorV2},
    {"torch._utils", "_rebuild_tensor", Callable::kRebuildTensor},
    {"torch._utils", "_rebuild_parameter", Callable::kRebuildParam},
    {"torch._utils", "_rebuild_parameter_with_state", Callable::kRebuildParamWithState},
    {"torch", "Size", Callable::kTorchSize},
    {"torch", "device", Callable::kTorchDevice},
    {"torch.jit._pickle", "restore_type_tag", Callable::kRestoreTypeTag},  // libtorch's pickle_save
    {"_codecs", "encode", Callable::kCodecsEncode},
    {"builtins", "set", Callable::kSet},
    {"__builtin__", "set", Callable::kSet},
    {"builtins", "frozenset", Callable::kSet},
    {"__builtin__", "frozenset", Callable::kSet},
};

const char* opcode_name(uint8_t op) {
  switch (op) {
    case 'R': return "REDUCE";
    case 'b': return "BUILD";
    case 0x81: return "NEWOBJ";
    case 0x92: return "NEWOBJ_EX";
    case 'i': return "INST";
    case 'o': return "OBJ";
    case 'c': return "GLOBAL";
    case 0x93: return "STACK_GLOBAL";
    default: return "opcode";
  }
}

class Unpickler {
 public:
  Unpickler(Cursor& in, PickleDoc& doc, const PickleOptions& opt) : in_(in), doc_(doc), opt_(opt) {}

  ValueId run() {
    for (;;) {
      op_pos_ = in_.pos();
      uint8_t op = in_.u8();
      if (op == '.') {  // STOP
        if (stack_.size() != 1) err("STOP with {} values on the stack (expected 1)", stack_.size());
        return stack_.back();
      }
      step(op);
    }
  }

 private:
  template <typename... Args>
  [[noreturn]] void err(fmt::format_string<Args...> f, Args&&... args) {
    fail("{}: pickle at offset {}: {}", in_.source().name(), op_pos_,
         fmt::format(f, std::forward<Args>(args)...));
  }

  ValueId add(Value v) {
    if (doc_.values.size() >= opt_.max_values)
      err("more than {} values: refusing to continue (corrupt or hostile file?)", opt_.max_values);
    doc_.values.push_back(std::move(v));
    return static_cast<ValueId>(doc_.values.size() - 1);
  }
  ValueId add_kind(ValueKind k) {
    Value v;
    v.kind = k;
    return add(std::move(v));
  }
  ValueId add_int(int64_t i) {
    Value v;
    v.kind = ValueKind::kInt;
    v.i = i;
    return add(std::move(v));
  }
  ValueId add_string(ValueKind k, std::string s) {
    Value v;
    v.kind = k;
    v.s = std::move(s);
    return add(std::move(v));
  }

  Value& val(ValueId id) { return doc_.values[id]; }
  void push(ValueId id) { stack_.push_back(id); }
  ValueId pop() {
    if (stack_.size() <= floor()) err("stack underflow");
    ValueId v = stack_.back();
    stack_.pop_back();
    return v;
  }
  ValueId& top() {
    if (stack_.size() <= floor()) err("stack underflow");
    return stack_.back();
  }
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  // Pops everything above the last MARK.
  std::vector<ValueId> pop_mark() {
    if (marks_.empty()) err("no MARK on the stack");
    size_t m = marks_.back();
    marks_.pop_back();
    std::vector<ValueId> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }

  uint64_t read_le(int n) {
    uint64_t x = 0;
    for (int i = 0; i < n; ++i) x |= static_cast<uint64_t>(in_.u8()) << (8 * i);
    return x;
  }
  std::string read_str(uint64_t n) { return in_.read_string(n); }

  ValueId make_long(const std::string& le) {
    // Little-endian two's complement of arbitrary length.
    if (le.empty()) return add_int(0);
    if (le.size() <= 8) {
      uint64_t x = 0;
      for (size_t i = 0; i < le.size(); ++i)
        x |= static_cast<uint64_t>(static_cast<uint8_t>(le[i])) << (8 * i);
      if (le.size() < 8 && (static_cast<uint8_t>(le.back()) & 0x80))
        x |= ~uint64_t{0} << (8 * le.size());  // sign-extend
      int64_t s;
      std::memcpy(&s, &x, sizeof s);
      return add_int(s);
    }
    return add_string(ValueKind::kBigInt, le);
  }

  int64_t parse_text_int(const std::string& line) {
    std::string t = line;
    if (!t.empty() && t.back() == 'L') t.pop_back();
    if (t == "00") return 0;  // protocol 0 False
    if (t == "01") return 1;  // protocol 0 True
    if (t.empty() || t.size() > 20) err("bad integer literal '{}'", line);
    size_t k = 0;
    bool neg = t[0] == '-';
    if (neg || t[0] == '+') k = 1;
    if (k == t.size()) err("bad integer literal '{}'", line);
    int64_t v = 0;
    for (; k < t.size(); ++k) {
      if (t[k] < '0' || t[k] > '9') err("bad integer literal '{}'", line);
      int d = t[k] - '0';
      if (v > (INT64_MAX - d) / 10) err("integer literal '{}' out of range", line);
      v = v * 10 + d;
    }
    return neg ? -v : v;
  }

  void memo_put(uint64_t idx) { memo_[idx] = top(); }
  void memo_get(uint64_t idx) {
    auto it = memo_.find(idx);
    if (it == memo_.end()) err("memo key {} was never stored", idx);
    push(it->second);
  }

  void global(const std::string& module, const std::string& name) {
    for (const auto& g : kAllowedGlobals) {
      if (module == g.module && name == g.name) {
        Value v;
        v.kind = ValueKind::kGlobal;
        v.s = module + "." + name;
        v.i = static_cast<int64_t>(g.callable);
        push(add(std::move(v)));
        return;
      }
    }
    if (module == "torch" && dtype_from_torch_storage(name)) {
      Value v;
      v.kind = ValueKind::kGlobal;
      v.s = module + "." + name;
      v.i = static_cast<int64_t>(Callable::kStorageClass);
      push(add(std::move(v)));
      return;
    }
    if (opt_.opaque_objects) {
      Value v;
      v.kind = ValueKind::kGlobal;
      v.s = module + "." + name;
      v.i = -1;  // unknown: calls produce inert kObject records
      push(add(std::move(v)));
      return;
    }
    err("refers to global '{}.{}', which dmeval does not load: only tensors, storages and plain "
        "containers are allowed (a pickle can run arbitrary code in Python; this reader runs none)",
        module, name);
  }

  const std::vector<ValueId>& tuple_items(ValueId id, const char* what) {
    const Value& v = val(id);
    if (v.kind != ValueKind::kTuple && v.kind != ValueKind::kList) err("{}: expected a tuple", what);
    return v.items;
  }
  int64_t as_int(ValueId id, const char* what) {
    const Value& v = val(id);
    if (v.kind == ValueKind::kInt || v.kind == ValueKind::kBool) return v.i;
    err("{}: expected an integer", what);
  }
  std::vector<int64_t> int_tuple(ValueId id, const char* what) {
    std::vector<int64_t> out;
    for (ValueId x : tuple_items(id, what)) out.push_back(as_int(x, what));
    return out;
  }

  ValueId rebuild_tensor(const std::vector<ValueId>& a, bool v2) {
    if (a.size() < 4) err("_rebuild_tensor{} needs at least 4 arguments, got {}", v2 ? "_v2" : "", a.size());
    const Value& st = val(a[0]);
    if (st.kind != ValueKind::kStorage) err("_rebuild_tensor: first argument is not a storage");
    TensorRef t;
    t.storage = static_cast<size_t>(st.i);
    t.offset = as_int(a[1], "storage offset");
    t.sizes = int_tuple(a[2], "tensor size");
    t.strides = int_tuple(a[3], "tensor stride");
    if (v2 && a.size() > 4) t.requires_grad = as_int(a[4], "requires_grad") != 0;
    if (t.sizes.size() != t.strides.size())
      err("tensor has {} sizes but {} strides", t.sizes.size(), t.strides.size());
    if (t.sizes.size() > 64) err("tensor with {} dimensions", t.sizes.size());
    const StorageRef& s = doc_.storages[t.storage];
    int64_t extent;
    try {
      extent = view_extent(t.offset, t.sizes, t.strides);
    } catch (const Error& e) {
      err("tensor on storage '{}': {}", s.key, e.what());
    }
    if (extent > s.numel)
      err("tensor {} (offset {}, strides {}) needs {} elements of storage '{}', which has {}",
          shape_str(t.sizes), t.offset, shape_str(t.strides), extent, s.key, s.numel);
    doc_.tensors.push_back(std::move(t));
    Value v;
    v.kind = ValueKind::kTensor;
    v.i = static_cast<int64_t>(doc_.tensors.size() - 1);
    return add(std::move(v));
  }

  ValueId call(ValueId fn, ValueId args_id) {
    const Value& f = val(fn);
    if (f.kind != ValueKind::kGlobal) err("REDUCE on a value that is not a callable");
    const std::vector<ValueId> args = tuple_items(args_id, "call arguments");
    if (f.i < 0) {  // opaque unknown class
      Value o;
      o.kind = ValueKind::kObject;
      o.s = f.s;
      o.items = {args_id};
      return add(std::move(o));
    }
    switch (static_cast<Callable>(f.i)) {
      case Callable::kOrderedDict: {
        ValueId d = add_kind(ValueKind::kDict);
        if (!args.empty()) {  // OrderedDict([(k, v), ...])
          for (ValueId pair : tuple_items(args[0], "OrderedDict items")) {
            const auto& kv = tuple_items(pair, "OrderedDict item");
            if (kv.size() != 2) err("OrderedDict item is not a pair");
            val(d).items.push_back(kv[0]);
            val(d).items.push_back(kv[1]);
          }
        }
        return d;
      }
      case Callable::kRebuildTensorV2: return rebuild_tensor(args, true);
      case Callable::kRebuildTensor: return rebuild_tensor(args, false);
      case Callable::kRebuildParam:
      case Callable::kRebuildParamWithState: {
        if (args.empty() || val(args[0]).kind != ValueKind::kTensor)
          err("_rebuild_parameter: first argument is not a tensor");
        if (args.size() > 1)
          doc_.tensors[static_cast<size_t>(val(args[0]).i)].requires_grad =
              as_int(args[1], "requires_grad") != 0;
        return args[0];
      }
      case Callable::kTorchSize: {
        ValueId t = add_kind(ValueKind::kTuple);
        if (!args.empty()) val(t).items = tuple_items(args[0], "torch.Size");
        return t;
      }
      case Callable::kTorchDevice: {
        std::string s;
        for (size_t k = 0; k < args.size(); ++k) {
          const Value& a = val(args[k]);
          s += k ? ":" : "";
          s += a.kind == ValueKind::kString ? a.s : std::to_string(a.i);
        }
        return add_string(ValueKind::kString, s);
      }
      case Callable::kCodecsEncode: {
        if (args.empty() || val(args[0]).kind != ValueKind::kString) err("_codecs.encode: expected a string");
        // Protocol 2 stores bytes as the latin-1 decoding of the bytes (as UTF-8 here).
        const std::string& u = val(args[0]).s;
        std::string out;
        for (size_t k = 0; k < u.size(); ++k) {
          auto c = static_cast<uint8_t>(u[k]);
          if (c < 0x80) {
            out.push_back(static_cast<char>(c));
          } else if ((c & 0xE0) == 0xC0 && k + 1 < u.size()) {
            unsigned cp = ((c & 0x1Fu) << 6) | (static_cast<uint8_t>(u[k + 1]) & 0x3Fu);
            if (cp > 0xFF) err("_codecs.encode: character U+{:04X} is not latin-1", cp);
            out.push_back(static_cast<char>(cp));
            ++k;
          } else {
            err("_codecs.encode: string is not latin-1");
          }
        }
        return add_string(ValueKind::kBytes, out);
      }
      case Callable::kSet: {
        ValueId s = add_kind(ValueKind::kSet);
        if (!args.empty()) val(s).items = tuple_items(args[0], "set items");
        return s;
      }
      case Callable::kRestoreTypeTag:
        if (args.empty()) err("restore_type_tag without arguments");
        return args[0];
      case Callable::kStorageClass: err("storage class {} called directly", f.s);
    }
    err("unsupported call");
  }

  ValueId persistent_load(ValueId pid) {
    const Value& p = val(pid);
    if (p.kind != ValueKind::kTuple || p.items.size() < 5)
      err("persistent id is not a ('storage', type, key, location, numel) tuple");
    const Value& tag = val(p.items[0]);
    if (tag.kind != ValueKind::kString || tag.s != "storage")
      err("persistent id of unknown kind (expected 'storage')");
    const Value& type = val(p.items[1]);
    if (type.kind != ValueKind::kGlobal || static_cast<Callable>(type.i) != Callable::kStorageClass)
      err("persistent id names no torch storage class");
    const Value& key = val(p.items[2]);
    const Value& loc = val(p.items[3]);
    if (key.kind != ValueKind::kString || loc.kind != ValueKind::kString)
      err("persistent id key/location are not strings");
    int64_t numel = as_int(p.items[4], "storage size");
    if (numel < 0) err("negative storage size {}", numel);
    DType dt = *dtype_from_torch_storage(type.s.substr(type.s.rfind('.') + 1));
    auto it = doc_.storage_by_key.find(key.s);
    size_t index;
    if (it == doc_.storage_by_key.end()) {
      index = doc_.storages.size();
      doc_.storages.push_back({key.s, dt, numel, loc.s});
      doc_.storage_by_key[key.s] = index;
    } else {
      index = it->second;
      const StorageRef& s = doc_.storages[index];
      if (s.dtype != dt || s.numel != numel)
        err("storage '{}' declared twice with different type or size", key.s);
    }
    Value v;
    v.kind = ValueKind::kStorage;
    v.i = static_cast<int64_t>(index);
    return add(std::move(v));
  }

  void build() {
    ValueId state = pop();
    ValueId target = top();
    Value& t = val(target);
    switch (t.kind) {
      case ValueKind::kDict:
      case ValueKind::kObject:
      case ValueKind::kTensor:  // _rebuild_parameter_with_state / tensor subclasses' __dict__
        t.attrs = state;
        return;
      default: err("BUILD on a value that takes no state");
    }
  }

  void setitems(const std::vector<ValueId>& kv) {
    if (kv.size() % 2) err("SETITEMS with an odd number of values");
    Value& d = val(top());
    if (d.kind != ValueKind::kDict) err("SETITEM on a value that is not a dict");
    // Python dict semantics: a repeated key replaces the earlier value.
    for (size_t k = 0; k < kv.size(); k += 2) {
      bool replaced = false;
      const Value& key = val(kv[k]);
      if (key.kind == ValueKind::kString || key.kind == ValueKind::kInt) {
        for (size_t e = 0; e < d.items.size(); e += 2) {
          const Value& old = val(d.items[e]);
          if (old.kind == key.kind && old.s == key.s && old.i == key.i) {
            d.items[e + 1] = kv[k + 1];
            replaced = true;
            break;
          }
        }
      }
      if (!replaced) {
        d.items.push_back(kv[k]);
        d.items.push_back(kv[k + 1]);
      }
    }
  }

  void appends(const std::vector<ValueId>& items, ValueKind want) {
    Value& l = val(top());
    if (l.kind != want && !(want == ValueKind::kList && l.kind == ValueKind::kObject))
      err("{} on a value of the wrong type", want == ValueKind::kSet ? "ADDITEMS" : "APPEND");
    l.items.insert(l.items.end(), items.begin(), items.end());
  }

  void step(uint8_t op) {
    switch (op) {
      case 0x80: {  // PROTO
        uint8_t v = in_.u8();
        if (v > 5) err("pickle protocol {} is not supported", v);
        return;
      }
      case 0x95: in_.skip(8); return;  // FRAME: length only, data follows inline
      case '(': marks_.push_back(stack_.size()); return;
      case '0': pop(); return;
      case '1': pop_mark(); return;
      case '2': push(top()); return;
      case 'N': push(add_kind(ValueKind::kNone)); return;
      case 0x88:
      case 0x89: {
        Value v;
        v.kind = ValueKind::kBool;
        v.i = op == 0x88;
        push(add(std::move(v)));
        return;
      }
      case 'I': {
        int64_t x = parse_text_int(in_.read_line(64));
        push(add_int(x));
        return;
      }
      case 'J': push(add_int(static_cast<int32_t>(read_le(4)))); return;
      case 'K': push(add_int(in_.u8())); return;
      case 'M': push(add_int(static_cast<int64_t>(read_le(2)))); return;
      case 'L': push(add_int(parse_text_int(in_.read_line(64)))); return;
      case 0x8a: push(make_long(read_str(in_.u8()))); return;
      case 0x8b: {
        uint64_t n = read_le(4);
        if (n > 0x7fffffff) err("LONG4 with negative length");
        push(make_long(read_str(n)));
        return;
      }
      case 'F': {
        std::string line = in_.read_line(64);
        char* end = nullptr;
        double d = std::strtod(line.c_str(), &end);
        if (line.empty() || end != line.c_str() + line.size()) err("bad float literal '{}'", line);
        Value v;
        v.kind = ValueKind::kFloat;
        v.f = d;
        push(add(std::move(v)));
        return;
      }
      case 'G': {
        uint64_t bits = 0;
        for (int k = 0; k < 8; ++k) bits = (bits << 8) | in_.u8();  // big-endian
        Value v;
        v.kind = ValueKind::kFloat;
        std::memcpy(&v.f, &bits, 8);
        push(add(std::move(v)));
        return;
      }
      case 'S': {  // protocol 0 string: repr with quotes
        std::string line = in_.read_line(1 << 20);
        if (line.size() < 2 || (line.front() != '\'' && line.front() != '"') || line.back() != line.front())
          err("bad STRING literal");
        push(add_string(ValueKind::kString, line.substr(1, line.size() - 2)));
        return;
      }
      case 'V': push(add_string(ValueKind::kString, in_.read_line(1 << 20))); return;
      case 'T': {
        uint64_t n = read_le(4);
        if (n > 0x7fffffff) err("BINSTRING with negative length");
        push(add_string(ValueKind::kString, read_str(n)));
        return;
      }
      case 'U': push(add_string(ValueKind::kString, read_str(in_.u8()))); return;
      case 'X': push(add_string(ValueKind::kString, read_str(read_le(4)))); return;
      case 0x8c: push(add_string(ValueKind::kString, read_str(in_.u8()))); return;
      case 0x8d: push(add_string(ValueKind::kString, read_str(read_le(8)))); return;
      case 'B': push(add_string(ValueKind::kBytes, read_str(read_le(4)))); return;
      case 'C': push(add_string(ValueKind::kBytes, read_str(in_.u8()))); return;
      case 0x8e:
      case 0x96: push(add_string(ValueKind::kBytes, read_str(read_le(8)))); return;
      case ']': push(add_kind(ValueKind::kList)); return;
      case ')': push(add_kind(ValueKind::kTuple)); return;
      case '}': push(add_kind(ValueKind::kDict)); return;
      case 0x8f: push(add_kind(ValueKind::kSet)); return;
      case 'l':
      case 't':
      case 0x91: {
        auto items = pop_mark();
        ValueId id = add_kind(op == 'l' ? ValueKind::kList : op == 't' ? ValueKind::kTuple : ValueKind::kSet);
        val(id).items = std::move(items);
        push(id);
        return;
      }
      case 0x85:
      case 0x86:
      case 0x87: {
        size_t n = op - 0x84;
        std::vector<ValueId> items(n);
        for (size_t k = n; k-- > 0;) items[k] = pop();
        ValueId id = add_kind(ValueKind::kTuple);
        val(id).items = std::move(items);
        push(id);
        return;
      }
      case 'd': {
        auto kv = pop_mark();
        push(add_kind(ValueKind::kDict));
        setitems(kv);
        return;
      }
      case 'a': {
        ValueId x = pop();
        appends({x}, ValueKind::kList);
        return;
      }
      case 'e': appends(pop_mark(), ValueKind::kList); return;
      case 0x90: appends(pop_mark(), ValueKind::kSet); return;
      case 's': {
        ValueId v = pop();
        ValueId k = pop();
        setitems({k, v});
        return;
      }
      case 'u': setitems(pop_mark()); return;
      case 'p': memo_put(static_cast<uint64_t>(parse_text_int(in_.read_line(32)))); return;
      case 'q': memo_put(in_.u8()); return;
      case 'r': memo_put(read_le(4)); return;
      case 0x94: memo_put(memo_.size()); return;
      case 'g': memo_get(static_cast<uint64_t>(parse_text_int(in_.read_line(32)))); return;
      case 'h': memo_get(in_.u8()); return;
      case 'j': memo_get(read_le(4)); return;
      case 'c': {
        std::string module = in_.read_line(256);
        std::string name = in_.read_line(256);
        global(module, name);
        return;
      }
      case 0x93: {
        ValueId name = pop();
        ValueId module = pop();
        if (val(module).kind != ValueKind::kString || val(name).kind != ValueKind::kString)
          err("STACK_GLOBAL needs two strings");
        global(val(module).s, val(name).s);
        return;
      }
      case 'R': {
        ValueId args = pop();
        ValueId fn = pop();
        push(call(fn, args));
        return;
      }
      case 0x81: {  // NEWOBJ: cls.__new__(cls, *args)
        ValueId args = pop();
        ValueId cls = pop();
        push(call(cls, args));
        return;
      }
      case 'b': build(); return;
      case 'Q': {
        ValueId pid = pop();
        push(persistent_load(pid));
        return;
      }
      case 'P': err("text persistent ids (PERSID) are not used by torch.save");
      default:
        if (op == 'i' || op == 'o' || op == 0x92)
          err("{} builds arbitrary objects; not allowed", opcode_name(op));
        err("unknown or unsupported opcode 0x{:02x}", op);
    }
  }

  Cursor& in_;
  PickleDoc& doc_;
  const PickleOptions& opt_;
  uint64_t op_pos_ = 0;
  std::vector<ValueId> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, ValueId> memo_;
};

}  // namespace

ValueId unpickle(Cursor& in, PickleDoc& doc, const PickleOptions& options) {
  return Unpickler(in, doc, options).run();
}

std::string value_summary(const PickleDoc& doc, ValueId id) {
  if (id >= doc.values.size()) return "<invalid>";
  const Value& v = doc.values[id];
  switch (v.kind) {
    case ValueKind::kNone: return "None";
    case ValueKind::kBool: return v.i ? "True" : "False";
    case ValueKind::kInt: return std::to_string(v.i);
    case ValueKind::kBigInt: return fmt::format("<int of {} bytes>", v.s.size());
    case ValueKind::kFloat: return fmt::format("{}", v.f);
    case ValueKind::kString: return v.s.size() <= 60 ? "'" + v.s + "'" : "'" + v.s.substr(0, 57) + "...'";
    case ValueKind::kBytes: return fmt::format("<bytes of length {}>", v.s.size());
    case ValueKind::kList: return fmt::format("list[{}]", v.items.size());
    case ValueKind::kTuple: return fmt::format("tuple[{}]", v.items.size());
    case ValueKind::kSet: return fmt::format("set[{}]", v.items.size());
    case ValueKind::kDict: return fmt::format("dict[{}]", v.items.size() / 2);
    case ValueKind::kTensor: {
      const TensorRef& t = doc.tensor(v);
      return fmt::format("tensor {} {}", dtype_name(doc.storages[t.storage].dtype), shape_str(t.sizes));
    }
    case ValueKind::kStorage:
      return fmt::format("storage '{}'", doc.storages.at(static_cast<size_t>(v.i)).key);
    case ValueKind::kGlobal: return "<global " + v.s + ">";
    case ValueKind::kObject: return "<opaque " + v.s + " object>";
  }
  return "?";
}

}  // namespace dmeval
