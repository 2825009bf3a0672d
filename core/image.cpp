#include "core/image.h"

#ifdef DMEVAL_HAVE_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#endif

#include "core/atomic_file.h"
#include "core/byte_source.h"
#include "core/error.h"

namespace dmeval {

namespace {
constexpr uint64_t kMaxImageFileBytes = uint64_t{1} << 31;

#ifdef DMEVAL_HAVE_OPENCV
// Everything that is not PNG: OpenCV decodes with IMREAD_UNCHANGED (no EXIF rotation, as PIL's
// open() + convert() does not rotate either), then the same channel rules as the PNG path.
Image decode_with_opencv(const std::string& name, const uint8_t* data, size_t size,
                         const ImageLimits& limits) {
  cv::Mat m;
  try {
    cv::Mat buf(1, static_cast<int>(size), CV_8U, const_cast<uint8_t*>(data));
    m = cv::imdecode(buf, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    fail("{}: cannot decode image: {}", name, e.what());
  }
  if (m.empty()) fail("{}: not a readable image (unknown format or corrupt data)", name);
  if (static_cast<int64_t>(m.rows) * m.cols > limits.max_pixels)
    fail("{}: image of {}x{} pixels exceeds the limit of {} pixels", name, m.cols, m.rows, limits.max_pixels);
  const int c = m.channels();
  const bool wide = m.depth() == CV_16U;
  if (!(m.depth() == CV_8U || wide) || c < 1 || c > 4)
    fail("{}: unsupported pixel format (depth {}, {} channels)", name, m.depth(), c);
  Image img;
  img.height = m.rows;
  img.width = m.cols;
  img.pixels.resize(static_cast<size_t>(m.rows) * m.cols * 3);
  img.source_gray = c <= 2;
  img.source_bit_depth = wide ? 16 : 8;
  for (int y = 0; y < m.rows; ++y) {
    for (int x = 0; x < m.cols; ++x) {
      uint8_t* o = img.pixels.data() + (static_cast<size_t>(y) * m.cols + x) * 3;
      auto get = [&](int k) -> int {
        return wide ? m.ptr<uint16_t>(y)[x * c + k] : m.ptr<uint8_t>(y)[x * c + k];
      };
      if (c <= 2) {
        int v = get(0);
        uint8_t g = static_cast<uint8_t>(wide ? (c == 1 ? std::min(v, 255) : v >> 8) : v);
        o[0] = o[1] = o[2] = g;
      } else {  // OpenCV is BGR(A)
        for (int k = 0; k < 3; ++k) {
          int v = get(2 - k);
          o[k] = static_cast<uint8_t>(wide ? v >> 8 : v);
        }
      }
    }
  }
  return img;
}
#else
Image decode_with_opencv(const std::string& name, const uint8_t*, size_t, const ImageLimits&) {
  fail(
      "{}: not a PNG, and this dmeval was built without OpenCV (DMEVAL_OPENCV=OFF), which decodes "
      "JPEG, BMP, TIFF and WebP",
      name);
}
#endif
}  // namespace

Image decode_image(const std::string& name, const uint8_t* data, size_t size, const ImageLimits& limits) {
  if (size == 0) fail("{}: empty file", name);
  static const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (size >= 8 && std::equal(kPng, kPng + 8, data)) return decode_png(name, data, size, limits);
  return decode_with_opencv(name, data, size, limits);
}

Image decode_image_file(const std::string& path, const ImageLimits& limits) {
  std::vector<uint8_t> bytes = read_file_bytes(path, kMaxImageFileBytes);
  return decode_image(path, bytes.data(), bytes.size(), limits);
}

void write_png(const std::string& path, const Image& image, int compression_level) {
  std::vector<uint8_t> bytes = encode_png(image, compression_level);
  AtomicFile f(path);
  f.write(bytes.data(), bytes.size());
  f.commit();
}

}  // namespace dmeval
