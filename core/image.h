// 8-bit RGB images: decoding exactly as PIL's Image.open(path).convert("RGB") does, which is what
// pytorch-fid, torch-fidelity and clean-fid feed their networks, and PNG writing.
//
// Decoding rules (one place for all of dmeval):
//   * gray (1/2/4/8-bit) is replicated to R=G=B; low bit depths scale to 0..255 (0,85,170,255 ...)
//   * palette images are expanded through the palette
//   * alpha (RGBA, gray+alpha, tRNS) is dropped without compositing: the stored colour is used
//   * 16-bit gray is clipped to 255 (PIL's mode "I" -> "RGB"), not rescaled
//   * 16-bit colour and gray+alpha keep the most significant byte (PIL's ";16B" unpackers)
// PNG goes through libpng; JPEG, BMP, TIFF, WebP, PGM/PPM through OpenCV's imdecode.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dmeval {

struct Image {
  int height = 0;
  int width = 0;
  std::vector<uint8_t> pixels;  // height * width * 3, row-major, RGB interleaved
  // What the file held before the conversion above, for callers that must refuse some inputs
  // (e.g. SR metrics on 16-bit files, or a grey image paired with a colour one).
  bool source_gray = false;  // grey or grey+alpha (palette images count as colour)
  int source_bit_depth = 8;  // bits per sample in the file: 1, 2, 4, 8 or 16
};

struct ImageLimits {
  int64_t max_pixels = int64_t{1} << 28;  // refuse larger images (hostile headers)
};

Image decode_image_file(const std::string& path, const ImageLimits& limits = {});
// `name` appears in error messages.
Image decode_image(const std::string& name, const uint8_t* data, size_t size, const ImageLimits& limits = {});
Image decode_png(const std::string& name, const uint8_t* data, size_t size, const ImageLimits& limits = {});

// PNG encoding of an RGB image; compression level 0..9 (zlib).
std::vector<uint8_t> encode_png(const Image& image, int compression_level = 6);
// Atomic write (temp file + rename); errors name the path (e.g. disk full).
void write_png(const std::string& path, const Image& image, int compression_level = 6);

}  // namespace dmeval
