// CIFAR-10 batch files in the distributed layouts, for tests: the python version (a Python 2
// cPickle, protocol 2, of {'data': numpy uint8 N x 3072, 'labels': [...], 'batch_label': ...,
// 'filenames': [...]}, with numpy's _reconstruct/BUILD and 1-byte strings as the real files have
// them) and the binary version (label byte + 3072 pixel bytes per image).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tests/support/pickle_builder.h"

namespace dmeval::test {

// Python 2 str: SHORT_BINSTRING below 256 bytes, BINSTRING above.
inline void py2_str(PickleBuilder& b, const std::string& s) {
  if (s.size() < 256) {
    b.op('U').byte(static_cast<int>(s.size())).raw(s);
  } else {
    b.op('T');
    for (int i = 0; i < 4; ++i) b.byte(static_cast<int>((s.size() >> (8 * i)) & 0xff));
    b.raw(s);
  }
}

// `planes`: N x 3072 bytes (R, G, B planes per image); labels 0..9. `dtype` and `shape_cols` may be
// changed to make invalid files.
inline std::string cifar10_python_batch(const std::string& planes, const std::vector<int>& labels,
                                        const std::string& dtype = "u1", int64_t shape_cols = 3072) {
  PickleBuilder b;
  b.proto(2).empty_dict().binput(1).mark();
  py2_str(b, "data");
  b.global("numpy.core.multiarray", "_reconstruct").global("numpy", "ndarray").integer(0).op(0x85);
  py2_str(b, "b");
  b.op(0x87).reduce().mark().integer(1);
  b.integer(static_cast<int64_t>(labels.size())).integer(shape_cols).op(0x86);
  b.global("numpy", "dtype");
  py2_str(b, dtype);
  b.integer(0).integer(1).op(0x87).reduce().mark().integer(3);
  py2_str(b, "|");
  b.none().none().none().integer(-1).integer(-1).integer(0).tuple().build();
  b.boolean(false);
  py2_str(b, planes);
  b.tuple().build();
  py2_str(b, "labels");
  b.empty_list().mark();
  for (int l : labels) b.integer(l);
  b.appends();
  py2_str(b, "batch_label");
  py2_str(b, "training batch 1 of 5");
  py2_str(b, "filenames");
  b.empty_list().mark();
  for (size_t i = 0; i < labels.size(); ++i) py2_str(b, "img_" + std::to_string(i) + ".png");
  b.appends();
  b.setitems().stop();
  return b.bytes();
}

inline std::string cifar10_binary_batch(const std::string& planes, const std::vector<int>& labels) {
  std::string out;
  for (size_t i = 0; i < labels.size(); ++i) {
    out.push_back(static_cast<char>(labels[i]));
    out += planes.substr(i * 3072, 3072);
  }
  return out;
}

// Deterministic pixels for n images (image i, channel c, pixel p).
inline std::string cifar10_test_planes(int64_t n, int64_t seed = 0) {
  std::string s(static_cast<size_t>(n * 3072), '\0');
  for (int64_t i = 0; i < n * 3072; ++i)
    s[static_cast<size_t>(i)] = static_cast<char>((i * 31 + seed * 17 + i / 97) & 0xff);
  return s;
}

}  // namespace dmeval::test
