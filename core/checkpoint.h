// PyTorch checkpoints without Python: torch.save files (legacy and zip formats, Lightning .ckpt)
// and safetensors, presented as one tree of dicts/lists whose leaves include tensors.
//
// Opening a file parses only its structure; tensor values are read on demand, so a truncated
// file still lists every entry and fails only when missing data is read, with bytes expected vs
// present in the message.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/pickle.h"
#include "core/tensor_data.h"

namespace dmeval {

enum class CheckpointFormat { kTorchLegacy, kTorchZip, kSafetensors };
const char* checkpoint_format_name(CheckpointFormat f);

struct CheckpointOptions {
  bool opaque_objects = false;  // see PickleOptions::opaque_objects
};

// A tensor leaf of the tree with its key path ("state_dict/conv.weight", "4/conv.weight").
struct TensorEntry {
  std::string path;
  ValueId value;
};

class Checkpoint {
 public:
  static Checkpoint open(const std::string& path, const CheckpointOptions& options = {});
  // Parses bytes already in memory (tests, fuzzing); `name` appears in errors.
  static Checkpoint from_memory(const std::string& name, std::vector<uint8_t> bytes,
                                const CheckpointOptions& options = {});

  const std::string& path() const;
  CheckpointFormat format() const;
  const PickleDoc& doc() const;
  ValueId root() const;

  // Every tensor reachable from the root, depth first in file order. Key paths join dict keys and
  // list indices with '/'.
  std::vector<TensorEntry> tensors() const;
  std::vector<TensorEntry> tensors_under(ValueId node, const std::string& prefix) const;
  // The value at a key path ("" = root); throws naming the first missing component.
  ValueId find(std::string_view key_path) const;
  bool contains(std::string_view key_path) const;

  DType dtype(ValueId tensor) const;
  const std::vector<int64_t>& shape(ValueId tensor) const;
  // Reads a tensor's values (honouring storage offset and strides) into contiguous C order.
  TensorData read(ValueId tensor) const;
  TensorData read(std::string_view key_path) const { return read(find(key_path)); }
  // A whole storage as a 1-D tensor (index into doc().storages).
  TensorData read_storage(size_t storage) const;
  // Empty if the storage's bytes are all present, else a description of what is missing.
  std::string storage_problem(size_t storage) const;

  struct Impl;

 private:
  std::shared_ptr<const Impl> impl_;
};

}  // namespace dmeval
