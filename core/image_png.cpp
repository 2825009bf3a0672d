// PNG decoding and encoding with libpng. libpng reports errors by longjmp, so every libpng call
// runs inside small C-style functions that own no C++ objects; buffers are allocated by the
// callers between the phases.
#include <png.h>

#include <csetjmp>
#include <cstring>

#include "core/error.h"
#include "core/image.h"

namespace dmeval {

namespace {

struct PngIo {
  const uint8_t* data = nullptr;
  size_t size = 0;
  size_t pos = 0;
  char message[256] = {};
};

void on_error(png_structp png, png_const_charp msg) {
  auto* io = static_cast<PngIo*>(png_get_error_ptr(png));
  std::snprintf(io->message, sizeof io->message, "%s", msg ? msg : "libpng error");
  png_longjmp(png, 1);
}

void on_warning(png_structp, png_const_charp) {}

void on_read(png_structp png, png_bytep out, png_size_t n) {
  auto* io = static_cast<PngIo*>(png_get_io_ptr(png));
  if (n > io->size - io->pos) png_error(png, "file is truncated");
  std::memcpy(out, io->data + io->pos, n);
  io->pos += n;
}

struct PngReader {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~PngReader() { png_destroy_read_struct(&png, info ? &info : nullptr, nullptr); }
};

struct PngShape {
  png_uint_32 width = 0, height = 0;
  int channels = 0, bit_depth = 0;
  int source_color_type = 0, source_bit_depth = 0;
  size_t rowbytes = 0;
};

// Phase 1: header and transforms. Returns false on error (message in io).
bool read_header(PngReader& r, PngIo& io, PngShape& s) {
  if (setjmp(png_jmpbuf(r.png))) return false;
  png_set_read_fn(r.png, &io, on_read);
  png_set_user_limits(r.png, 1u << 20, 1u << 20);
  png_set_chunk_malloc_max(r.png, 64u << 20);
  png_read_info(r.png, r.info);
  int color = png_get_color_type(r.png, r.info);
  int depth = png_get_bit_depth(r.png, r.info);
  s.source_color_type = color;
  s.source_bit_depth = depth;
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(r.png);
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(r.png);
  png_set_interlace_handling(r.png);
  png_read_update_info(r.png, r.info);
  s.width = png_get_image_width(r.png, r.info);
  s.height = png_get_image_height(r.png, r.info);
  s.channels = png_get_channels(r.png, r.info);
  s.bit_depth = png_get_bit_depth(r.png, r.info);
  s.rowbytes = png_get_rowbytes(r.png, r.info);
  return true;
}

// Phase 2: pixel data into caller-owned rows.
bool read_rows(PngReader& r, PngIo& io, png_bytepp rows) {
  if (setjmp(png_jmpbuf(r.png))) return false;
  (void)io;
  png_read_image(r.png, rows);
  return true;
}

}  // namespace

Image decode_png(const std::string& name, const uint8_t* data, size_t size, const ImageLimits& limits) {
  if (size < 8 || png_sig_cmp(data, 0, 8) != 0) fail("{}: not a PNG file (bad signature)", name);
  PngIo io;
  io.data = data;
  io.size = size;
  PngReader r;
  r.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &io, on_error, on_warning);
  if (!r.png) fail("{}: cannot create PNG reader", name);
  r.info = png_create_info_struct(r.png);
  if (!r.info) fail("{}: cannot create PNG reader", name);
  PngShape s;
  if (!read_header(r, io, s)) fail("{}: corrupt PNG: {}", name, io.message);
  const int64_t pixels = static_cast<int64_t>(s.width) * s.height;
  if (s.width == 0 || s.height == 0) fail("{}: PNG has zero size", name);
  if (pixels > limits.max_pixels)
    fail("{}: PNG of {}x{} pixels exceeds the limit of {} pixels", name, s.width, s.height,
         limits.max_pixels);
  if (s.channels < 1 || s.channels > 4 || (s.bit_depth != 8 && s.bit_depth != 16))
    fail("{}: unsupported PNG layout ({} channels, {} bits)", name, s.channels, s.bit_depth);
  if (s.rowbytes != static_cast<size_t>(s.width) * s.channels * (s.bit_depth / 8))
    fail("{}: unexpected PNG row size", name);
  // A compressed PNG cannot hold more than ~1032x its size in pixels; refuse before allocating.
  if (s.rowbytes * s.height > static_cast<uint64_t>(size) * 1100 + (1u << 20))
    fail("{}: corrupt PNG: {}x{} pixels cannot come from {} bytes", name, s.width, s.height, size);
  std::vector<uint8_t> raw(s.rowbytes * s.height);
  std::vector<png_bytep> rows(s.height);
  for (png_uint_32 y = 0; y < s.height; ++y) rows[y] = raw.data() + y * s.rowbytes;
  if (!read_rows(r, io, rows.data())) fail("{}: corrupt PNG: {}", name, io.message);

  Image img;
  img.width = static_cast<int>(s.width);
  img.height = static_cast<int>(s.height);
  img.pixels.resize(static_cast<size_t>(pixels) * 3);
  img.source_gray = (s.source_color_type & PNG_COLOR_MASK_COLOR) == 0;
  img.source_bit_depth = s.source_bit_depth;
  const int c = s.channels;
  const bool gray = c <= 2;
  const bool wide = s.bit_depth == 16;
  uint8_t* out = img.pixels.data();
  for (int64_t p = 0; p < pixels; ++p) {
    const uint8_t* px = raw.data() + p * c * (wide ? 2 : 1);
    if (gray) {
      uint8_t v;
      if (!wide)
        v = px[0];
      else if (c == 1)
        v = static_cast<uint8_t>(std::min(255, (px[0] << 8) | px[1]));  // clip
      else
        v = px[0];  // gray+alpha 16-bit: high byte
      out[3 * p] = out[3 * p + 1] = out[3 * p + 2] = v;
    } else {
      for (int k = 0; k < 3; ++k) out[3 * p + k] = px[k * (wide ? 2 : 1)];  // high byte if 16-bit
    }
  }
  return img;
}

namespace {
struct PngWriter {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~PngWriter() { png_destroy_write_struct(&png, info ? &info : nullptr); }
};

struct PngOut {
  std::vector<uint8_t>* bytes;
};

void on_write(png_structp png, png_bytep data, png_size_t n) {
  auto* out = static_cast<PngOut*>(png_get_io_ptr(png));
  out->bytes->insert(out->bytes->end(), data, data + n);
}
void on_flush(png_structp) {}

bool write_all(PngWriter& w, PngOut& out, const Image& img, int level, png_bytepp rows) {
  if (setjmp(png_jmpbuf(w.png))) return false;
  png_set_write_fn(w.png, &out, on_write, on_flush);
  png_set_compression_level(w.png, level);
  png_set_IHDR(w.png, w.info, static_cast<png_uint_32>(img.width), static_cast<png_uint_32>(img.height), 8,
               PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(w.png, w.info);
  png_write_image(w.png, rows);
  png_write_end(w.png, nullptr);
  return true;
}
}  // namespace

std::vector<uint8_t> encode_png(const Image& img, int compression_level) {
  if (img.width <= 0 || img.height <= 0 ||
      img.pixels.size() != static_cast<size_t>(img.width) * img.height * 3)
    fail("encode_png: image {}x{} with {} bytes is not RGB", img.width, img.height, img.pixels.size());
  std::vector<uint8_t> bytes;
  PngOut out{&bytes};
  PngWriter w;
  w.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  if (!w.png) fail("encode_png: cannot create writer");
  w.info = png_create_info_struct(w.png);
  std::vector<png_bytep> rows(img.height);
  for (int y = 0; y < img.height; ++y)
    rows[y] = const_cast<png_bytep>(img.pixels.data() + static_cast<size_t>(y) * img.width * 3);
  PngIo err;  // receives libpng's error message
  png_set_error_fn(w.png, &err, on_error, on_warning);
  if (!write_all(w, out, img, compression_level, rows.data())) fail("encode_png: {}", err.message);
  return bytes;
}

}  // namespace dmeval
