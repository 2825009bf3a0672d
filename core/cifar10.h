// CIFAR-10 as it is distributed, read directly (no Python): the python version's batches
// (`data_batch_1` ... `data_batch_5`, `test_batch`: Python 2 pickles of a dict whose `data` is a
// numpy uint8 array 10000 x 3072, each row the red, green and blue 32x32 planes, and `labels` a list)
// and the binary version's (`data_batch_1.bin` ...: records of one label byte and 3072 pixel bytes in
// the same plane order). The numpy objects are interpreted by the restricted unpickler as inert
// records: nothing is executed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/image.h"

namespace dmeval {

struct Cifar10Batch {
  std::string path;
  int64_t count = 0;
  std::vector<uint8_t> planes;  // count x 3072: R plane, G plane, B plane (32x32 each) per image
  std::vector<int64_t> labels;  // count

  Image image(int64_t i) const;  // RGB interleaved, 32x32
};

// A python or binary batch, by content (a pickle starts with the PROTO opcode 0x80).
Cifar10Batch read_cifar10_batch(const std::string& path);
class ByteSource;
Cifar10Batch read_cifar10_batch(const ByteSource& source);

// The batch files of a split ("train": data_batch_1..5; "test": test_batch) in `dir`, python or
// binary (`.bin`); empty if the folder holds neither.
std::vector<std::string> cifar10_batch_files(const std::string& dir, const std::string& split);

}  // namespace dmeval
