#include <gtest/gtest.h>

#include "core/error.h"
#include "core/npy.h"
#include "tests/support/pickle_builder.h"
#include "tests/support/temp_dir.h"

namespace dmeval {
namespace {

TensorData make(DType t, std::vector<int64_t> shape) {
  TensorData d{t, shape, {}};
  d.bytes.resize(static_cast<size_t>(d.numel()) * dtype_size(t));
  for (size_t i = 0; i < d.bytes.size(); ++i) d.bytes[i] = static_cast<uint8_t>(i * 7 + 1);
  return d;
}

std::string npy_bytes(const std::string& header_dict, const std::string& data) {
  std::string h = header_dict;
  while ((10 + h.size() + 1) % 64) h.push_back(' ');
  h.push_back('\n');
  std::string out("\x93NUMPY\x01\x00", 8);
  out.push_back(static_cast<char>(h.size() & 0xff));
  out.push_back(static_cast<char>(h.size() >> 8));
  return out + h + data;
}

TEST(Npy, RoundTripsEveryDtypeAndShape) {
  test::TempDir dir;
  for (DType t : {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kUInt8, DType::kInt8,
                  DType::kInt16, DType::kInt32, DType::kInt64, DType::kBool}) {
    for (auto shape : {std::vector<int64_t>{}, {5}, {2, 3}, {2, 0, 4}, {1, 2, 3, 4}}) {
      TensorData d = make(t, shape);
      write_npy(dir.file("a.npy"), d);
      TensorData r = read_npy_file(dir.file("a.npy"));
      EXPECT_EQ(r.dtype, t);
      EXPECT_EQ(r.shape, shape);
      EXPECT_EQ(r.bytes, d.bytes);
    }
  }
}

TEST(Npy, HeaderIsWhatNumpyWrites) {
  TensorData d = make(DType::kFloat32, {3});
  auto bytes = encode_npy(d);
  std::string s(bytes.begin(), bytes.end());
  EXPECT_EQ(s.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  EXPECT_NE(s.find("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }"), std::string::npos);
  EXPECT_EQ((bytes.size() - 12) % 64, 0u);  // data 64-byte aligned
}

TEST(Npy, FortranOrderAndBigEndianBecomeCOrderLittleEndian) {
  // 2x3 float64 in Fortran order, big-endian: values 0..5 row-major are stored column-major.
  std::string data;
  for (double v : {0.0, 3.0, 1.0, 4.0, 2.0, 5.0}) {
    uint64_t bits;
    std::memcpy(&bits, &v, 8);
    for (int i = 7; i >= 0; --i) data.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
  }
  MemorySource src(
      "f.npy", test::to_bytes(npy_bytes("{'descr': '>f8', 'fortran_order': True, 'shape': (2, 3), }", data)));
  TensorData t = read_npy(src);
  ASSERT_EQ(t.shape, (std::vector<int64_t>{2, 3}));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(t.data<double>()[i], i);
}

TEST(Npy, BadInputIsAClearError) {
  auto err = [](const std::string& bytes) {
    try {
      MemorySource src("bad.npy", test::to_bytes(bytes));
      read_npy(src);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(err("not numpy at all").find("bad magic"), std::string::npos);
  EXPECT_NE(
      err(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", "abc")).find("truncated"),
      std::string::npos);
  EXPECT_NE(err(npy_bytes("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", "12345678"))
                .find("unsupported dtype"),
            std::string::npos);
  EXPECT_NE(err(npy_bytes("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", "1234"))
                .find("structured"),
            std::string::npos);
  EXPECT_NE(
      err(npy_bytes(
              "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999, 99999999999), }",
              ""))
          .find("bad.npy"),
      std::string::npos);
}

TEST(Npz, StoredAndDeflatedRoundTrip) {
  test::TempDir dir;
  TensorData mu = make(DType::kFloat64, {8});
  TensorData sigma = make(DType::kFloat64, {8, 8});
  for (bool compressed : {false, true}) {
    write_npz(dir.file("s.npz"), {{"mu", mu}, {"sigma", sigma}}, compressed);
    NpzReader z = NpzReader::open(dir.file("s.npz"));
    EXPECT_EQ(z.names(), (std::vector<std::string>{"mu", "sigma"}));
    EXPECT_EQ(z.read("mu").bytes, mu.bytes);
    EXPECT_EQ(z.read("sigma").shape, sigma.shape);
    try {
      z.read("arr_0");
      FAIL();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("available: mu, sigma"), std::string::npos) << e.what();
    }
  }
}

TEST(Npz, NotAZipIsAClearError) {
  test::TempDir dir;
  std::string p = dir.write("x.npz", "garbage");
  EXPECT_THROW(NpzReader::open(p), Error);
}

}  // namespace
}  // namespace dmeval
