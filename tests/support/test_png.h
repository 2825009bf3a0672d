// Writes PNGs of any colour type and bit depth with libpng (grey, 16-bit, palette, tRNS test files).
#pragma once

#include <png.h>

#include <string>
#include <vector>

namespace dmeval::test {

// `samples` are per-channel values, row-major.
inline std::string make_png(int w, int h, int color_type, int depth, const std::vector<int>& samples,
                            const std::vector<png_color>& palette = {},
                            const std::vector<png_byte>& trns = {}) {
  std::string out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  png_set_write_fn(
      png, &out,
      [](png_structp p, png_bytep d, png_size_t n) {
        static_cast<std::string*>(png_get_io_ptr(p))->append(reinterpret_cast<char*>(d), n);
      },
      nullptr);
  png_set_IHDR(png, info, w, h, depth, color_type, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (!palette.empty()) png_set_PLTE(png, info, palette.data(), static_cast<int>(palette.size()));
  if (!trns.empty()) png_set_tRNS(png, info, trns.data(), static_cast<int>(trns.size()), nullptr);
  png_write_info(png, info);
  int channels = color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_PALETTE ? 1
                 : color_type == PNG_COLOR_TYPE_GA                                         ? 2
                 : color_type == PNG_COLOR_TYPE_RGB                                        ? 3
                                                                                           : 4;
  if (depth < 8) png_set_packing(png);
  std::vector<png_byte> row(static_cast<size_t>(w) * channels * (depth == 16 ? 2 : 1));
  for (int y = 0; y < h; ++y) {
    for (int i = 0; i < w * channels; ++i) {
      int v = samples[(y * w * channels + i) % samples.size()];
      if (depth == 16) {
        row[2 * i] = static_cast<png_byte>(v >> 8);
        row[2 * i + 1] = static_cast<png_byte>(v & 0xff);
      } else {
        row[i] = static_cast<png_byte>(v);
      }
    }
    png_write_row(png, row.data());
  }
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

}  // namespace dmeval::test
