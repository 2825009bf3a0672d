// A restricted unpickler for torch.save files.
//
// Python's pickle can call any importable function while loading, so a `.pth` file can run
// arbitrary code in Python. This reader never executes anything: it interprets the opcodes into a
// tree of plain values and accepts only the few globals that tensors and containers need
// (kAllowedGlobals in pickle.cpp). Any other global is rejected with its name, unless the caller
// explicitly asks to keep unknown objects as opaque, inert records.
//
// Values live in an arena (PickleDoc::values) and refer to each other by index, so hostile input
// cannot cause deep recursive destruction or leaks through reference cycles.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/byte_source.h"
#include "core/dtype.h"

namespace dmeval {

using ValueId = uint32_t;
constexpr ValueId kNoValue = UINT32_MAX;

enum class ValueKind : uint8_t {
  kNone,
  kBool,
  kInt,
  kBigInt,  // an integer that does not fit in int64: `s` holds its little-endian bytes
  kFloat,
  kString,
  kBytes,
  kList,
  kTuple,
  kSet,
  kDict,     // `items` holds key, value, key, value, ...
  kTensor,   // `i` indexes PickleDoc::tensors
  kStorage,  // `i` indexes PickleDoc::storages
  kGlobal,   // an allowed callable/class, `s` = "module.name"
  kObject,   // opaque record of an unknown class (only with PickleOptions::opaque_objects)
};

struct Value {
  ValueKind kind = ValueKind::kNone;
  int64_t i = 0;
  double f = 0.0;
  std::string s;
  std::vector<ValueId> items;
  ValueId attrs = kNoValue;  // state applied by BUILD (e.g. an OrderedDict's _metadata)
};

// One torch storage referenced by the pickle (a persistent id).
struct StorageRef {
  std::string key;  // file-internal name ("0", "94290829541936", ...)
  DType dtype = DType::kFloat32;
  int64_t numel = 0;     // elements, as declared by the persistent id
  std::string location;  // "cpu", "cuda:0", ...
};

// A tensor as torch._utils._rebuild_tensor_v2 describes it: a strided view of a storage.
struct TensorRef {
  size_t storage = 0;
  int64_t offset = 0;  // in elements
  std::vector<int64_t> sizes;
  std::vector<int64_t> strides;
  bool requires_grad = false;
};

struct PickleDoc {
  std::vector<Value> values;
  std::vector<TensorRef> tensors;
  std::vector<StorageRef> storages;
  std::map<std::string, size_t> storage_by_key;

  const Value& at(ValueId id) const { return values.at(id); }
  const TensorRef& tensor(const Value& v) const { return tensors.at(static_cast<size_t>(v.i)); }
};

struct PickleOptions {
  // Keep instances of classes outside the allow-list as inert kObject records instead of
  // rejecting the file. Nothing is executed either way.
  bool opaque_objects = false;
  // Upper bound on values created, so hostile input cannot exhaust memory.
  size_t max_values = 1u << 24;
};

// Interprets one pickle starting at the cursor (consumes through STOP) and returns its root value.
// Errors name the source, the byte offset and the opcode.
ValueId unpickle(Cursor& in, PickleDoc& doc, const PickleOptions& options = {});

// Short human-readable rendering of a value (containers summarised), for errors and `inspect`.
std::string value_summary(const PickleDoc& doc, ValueId id);

}  // namespace dmeval
