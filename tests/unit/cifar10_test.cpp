// CIFAR-10 batches read directly: the python version (Python 2 pickle with numpy objects, never
// executed) and the binary version give the same images and labels; a folder's training split is
// found in order; malformed files are refused naming the file and the problem.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/cifar10.h"
#include "core/error.h"
#include "metrics/image_source.h"
#include "tests/support/cifar10_files.h"
#include "tests/support/temp_dir.h"

namespace dmeval {
namespace {

using namespace dmeval::test;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Cifar10, PythonAndBinaryBatchesGiveTheSameImages) {
  TempDir d;
  const std::string planes = cifar10_test_planes(3);
  const std::vector<int> labels = {6, 9, 0};
  Cifar10Batch py = read_cifar10_batch(d.write("data_batch_1", cifar10_python_batch(planes, labels)));
  Cifar10Batch bin = read_cifar10_batch(d.write("data_batch_1.bin", cifar10_binary_batch(planes, labels)));
  ASSERT_EQ(py.count, 3);
  ASSERT_EQ(bin.count, 3);
  EXPECT_EQ(py.labels, (std::vector<int64_t>{6, 9, 0}));
  EXPECT_EQ(bin.labels, py.labels);
  EXPECT_EQ(py.planes, bin.planes);
  // Planes to interleaved RGB: pixel (y, x) channel c = planes[c * 1024 + y * 32 + x].
  Image im = py.image(1);
  ASSERT_EQ(im.width, 32);
  for (int px : {0, 33, 1023})
    for (int c = 0; c < 3; ++c)
      EXPECT_EQ(im.pixels[px * 3 + c], static_cast<uint8_t>(planes[3072 + c * 1024 + px]));
}

TEST(Cifar10, FolderSplitInOrder) {
  TempDir d;
  for (int k = 1; k <= 5; ++k)
    d.write("data_batch_" + std::to_string(k), cifar10_python_batch(cifar10_test_planes(2, k), {k, k}));
  d.write("test_batch", cifar10_python_batch(cifar10_test_planes(1, 9), {3}));
  auto src = open_image_source(d.path(), FolderRule::kPytorchFid);  // a batches folder: its training split
  ASSERT_EQ(src->size(), 10);
  EXPECT_EQ(src->load(2).pixels, read_cifar10_batch(d.file("data_batch_2")).image(0).pixels);
  EXPECT_NE(src->name(9).find("data_batch_5"), std::string::npos);
  auto test = open_image_source("cifar10-test:" + d.path(), FolderRule::kPytorchFid);
  EXPECT_EQ(test->size(), 1);
  std::filesystem::remove(d.file("data_batch_3"));
  std::string msg = error_of([&] { cifar10_batch_files(d.path(), "train"); });
  EXPECT_NE(msg.find("data_batch_3"), std::string::npos) << msg;
}

TEST(Cifar10, MalformedFilesAreNamed) {
  TempDir d;
  const std::string planes = cifar10_test_planes(2);
  struct Case {
    std::string name, bytes, expect;
  };
  const std::string good = cifar10_python_batch(planes, {1, 2});
  const std::vector<Case> cases = {
      {"dtype", cifar10_python_batch(planes, {1, 2}, "f4"), "dtype"},
      {"shape", cifar10_python_batch(planes, {1, 2}, "u1", 3000), "3072"},
      {"labels", cifar10_python_batch(planes, {1}), "labels"},
      {"label_range", cifar10_python_batch(planes, {1, 12}), "class"},
      {"truncated", good.substr(0, good.size() / 2), "truncated"},
      {"binary_size", cifar10_binary_batch(planes, {1, 2}).substr(0, 5000), "records"},
      {"binary_label", std::string(1, '\x0b') + planes.substr(0, 3072), "label"},
  };
  for (const auto& c : cases) {
    const std::string path = d.write(c.name, c.bytes);
    const std::string msg = error_of([&] { read_cifar10_batch(path); });
    EXPECT_NE(msg.find(path), std::string::npos) << c.name << ": " << msg;
    EXPECT_NE(msg.find(c.expect), std::string::npos) << c.name << ": " << msg;
  }
  // A pickle whose globals are not numpy's array machinery is refused, never run.
  PickleBuilder evil;
  evil.proto(2).global("os", "system").mark();
  py2_str(evil, "echo hi");
  evil.tuple().reduce().stop();
  const std::string msg = error_of([&] { read_cifar10_batch(d.write("evil", evil.bytes())); });
  EXPECT_NE(msg.find("not a CIFAR-10 batch"), std::string::npos) << msg;
}

}  // namespace
}  // namespace dmeval
