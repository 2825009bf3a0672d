// torch.save legacy / zip and safetensors through one Checkpoint interface.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <fstream>
#include <map>

#include "core/checkpoint.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "core/torch_bridge.h"
#include "tests/support/pickle_builder.h"
#include "tests/support/temp_dir.h"

namespace dmeval {
namespace {

using test::LegacyTensor;

std::vector<float> iota(int n) {
  std::vector<float> v(n);
  for (int i = 0; i < n; ++i) v[i] = static_cast<float>(i);
  return v;
}

TEST(Checkpoint, LegacyFormatHonoursStridesAndOffsets) {
  // "w" is a transposed view [3, 2] of a [2, 3] storage; "tail" starts at element 4 of a shared one.
  std::string bytes = test::legacy_torch_file(
      {{"w", "10", 0, {3, 2}, {1, 3}}, {"tail", "20", 4, {2}, {1}}, {"all", "20", 0, {6}, {1}}},
      {{"10", iota(6)}, {"20", iota(6)}});
  Checkpoint ck = Checkpoint::from_memory("legacy.pth", test::to_bytes(bytes));
  EXPECT_EQ(ck.format(), CheckpointFormat::kTorchLegacy);
  auto entries = ck.tensors();
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].path, "w");
  TensorData w = ck.read("w");
  EXPECT_EQ(w.shape, (std::vector<int64_t>{3, 2}));
  // storage [[0,1,2],[3,4,5]] transposed -> [[0,3],[1,4],[2,5]]
  std::vector<float> expect = {0, 3, 1, 4, 2, 5};
  EXPECT_EQ(std::vector<float>(w.data<float>(), w.data<float>() + 6), expect);
  TensorData tail = ck.read("tail");
  EXPECT_EQ(tail.data<float>()[0], 4.0f);
  EXPECT_EQ(tail.data<float>()[1], 5.0f);
  EXPECT_EQ(ck.doc().storages.size(), 2u);  // "20" is shared, stored once
}

TEST(Checkpoint, LegacyTruncatedDataListsEntriesAndFailsOnRead) {
  std::string bytes = test::legacy_torch_file({{"a", "1", 0, {4}, {1}}, {"b", "2", 0, {1000}, {1}}},
                                              {{"1", iota(4)}, {"2", iota(1000)}});
  bytes.resize(bytes.size() - 3000);  // cut into storage "2"
  Checkpoint ck = Checkpoint::from_memory("cut.pth", test::to_bytes(bytes));
  ASSERT_EQ(ck.tensors().size(), 2u);
  EXPECT_EQ(ck.read("a").data<float>()[3], 3.0f);
  try {
    ck.read("b");
    FAIL() << "reading truncated data must throw";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("truncated"), std::string::npos) << m;
    EXPECT_NE(m.find("needs 4000 bytes"), std::string::npos) << m;
    EXPECT_NE(m.find("only 1000 bytes are present"), std::string::npos) << m;
  }
}

TEST(Checkpoint, ZipFormatFromLibtorchPickleSave) {
  // torch::pickle_save writes the same zip container as Python's torch.save.
  torch::manual_seed(0);
  c10::Dict<std::string, torch::Tensor> dict;
  dict.insert("conv.weight", torch::randn({4, 3, 3, 3}));
  dict.insert("fc.weight_t", torch::randn({5, 7}).t());  // non-contiguous view
  dict.insert("steps", torch::arange(10, torch::kInt64));
  dict.insert("half", torch::randn({3}).to(torch::kFloat16));
  std::vector<char> bytes = torch::pickle_save(c10::IValue(dict));
  test::TempDir dir;
  std::string path = dir.write("m.pt", std::string(bytes.begin(), bytes.end()));
  Checkpoint ck = Checkpoint::open(path);
  EXPECT_EQ(ck.format(), CheckpointFormat::kTorchZip);
  ASSERT_EQ(ck.tensors().size(), 4u);
  for (const auto& key : {"conv.weight", "fc.weight_t", "steps", "half"}) {
    torch::Tensor got = to_torch(ck.read(key));
    EXPECT_TRUE(torch::equal(got, dict.at(key))) << key;
  }
}

TEST(Checkpoint, FindReportsWhatIsAvailable) {
  std::string bytes = test::legacy_torch_file({{"w", "1", 0, {2}, {1}}}, {{"1", iota(2)}});
  Checkpoint ck = Checkpoint::from_memory("x.pth", test::to_bytes(bytes));
  EXPECT_TRUE(ck.contains("w"));
  try {
    ck.find("state_dict/w");
    FAIL();
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("no entry 'state_dict'"), std::string::npos) << m;
    EXPECT_NE(m.find("available: w"), std::string::npos) << m;
  }
}

TEST(Checkpoint, SafetensorsRoundTrip) {
  test::TempDir dir;
  TensorData a{DType::kFloat32, {2, 3}, {}};
  a.bytes.resize(24);
  for (int i = 0; i < 6; ++i) a.mutable_data<float>()[i] = 0.5f * i;
  TensorData b{DType::kInt64, {2}, std::vector<uint8_t>(16, 0)};
  b.mutable_data<int64_t>()[1] = 42;
  write_safetensors(dir.file("m.safetensors"), {{"a", a}, {"b", b}}, {{"format", "pt"}});
  Checkpoint ck = Checkpoint::open(dir.file("m.safetensors"));
  EXPECT_EQ(ck.format(), CheckpointFormat::kSafetensors);
  EXPECT_EQ(ck.read("a").bytes, a.bytes);
  EXPECT_EQ(ck.read("b").data<int64_t>()[1], 42);
  EXPECT_EQ(ck.doc().at(ck.find("__metadata__/format")).s, "pt");
}

// A header length whose low byte is 0x80 (pickle's PROTO opcode) is still safetensors.
TEST(Checkpoint, SafetensorsWithHeaderLengthLowByte0x80) {
  test::TempDir dir;
  for (int len = 1; len < 1200; ++len) {
    std::map<std::string, std::string> meta = {{"pad", std::string(static_cast<size_t>(len), 'x')}};
    TensorData a{DType::kFloat32, {1}, std::vector<uint8_t>(4, 0)};
    write_safetensors(dir.file("m.safetensors"), {{"a", a}}, meta);
    std::ifstream in(dir.file("m.safetensors"), std::ios::binary);
    const int first = in.get();
    if (first != 0x80) continue;
    Checkpoint ck = Checkpoint::open(dir.file("m.safetensors"));
    EXPECT_EQ(ck.format(), CheckpointFormat::kSafetensors);
    EXPECT_EQ(ck.read("a").bytes, a.bytes);
    return;
  }
  FAIL() << "no metadata length gave a header length with low byte 0x80";
}

TEST(Checkpoint, SafetensorsBadHeadersAreClearErrors) {
  auto err = [](std::string header, std::string data) {
    std::string f(8, '\0');
    uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) f[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    f += header + data;
    try {
      Checkpoint::from_memory("bad.safetensors", test::to_bytes(f));
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(err(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", "xxxx").find("truncated"),
            std::string::npos);
  EXPECT_NE(err(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}})", std::string(8, 'x'))
                .find("needs 16 bytes"),
            std::string::npos);
  EXPECT_NE(err(R"({"a":{"dtype":"Q9","shape":[1],"data_offsets":[0,1]}})", "x").find("unsupported dtype"),
            std::string::npos);
  EXPECT_NE(err("{not json", "").find("not valid JSON"), std::string::npos);
}

TEST(Checkpoint, UnknownFormatsAreNamed) {
  EXPECT_THROW(Checkpoint::from_memory("e.pt", {}), Error);
  try {
    Checkpoint::from_memory("text.pt", test::to_bytes("hello world, not a checkpoint"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("text.pt: unknown checkpoint format"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace dmeval
