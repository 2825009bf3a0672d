// PNG decoding follows PIL's convert("RGB") rules for every PNG colour type and bit depth.
#include <gtest/gtest.h>
#include <png.h>

#include <csetjmp>

#include "core/error.h"
#include "core/image.h"
#include "core/image_folder.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_png.h"

namespace dmeval {
namespace {

using test::make_png;

Image decode(const std::string& bytes) {
  return decode_image("t.png", reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

std::vector<uint8_t> px(const Image& img, int i) {
  return {img.pixels[3 * i], img.pixels[3 * i + 1], img.pixels[3 * i + 2]};
}

TEST(Png, RgbRoundTrip) {
  Image img{2, 3, {}};
  for (int i = 0; i < 18; ++i) img.pixels.push_back(static_cast<uint8_t>(i * 13));
  auto bytes = encode_png(img);
  Image back = decode_image("rt.png", bytes.data(), bytes.size());
  EXPECT_EQ(back.height, 2);
  EXPECT_EQ(back.width, 3);
  EXPECT_EQ(back.pixels, img.pixels);
}

TEST(Png, GrayIsReplicatedAndLowDepthsScale) {
  EXPECT_EQ(px(decode(make_png(2, 1, PNG_COLOR_TYPE_GRAY, 8, {7, 200})), 1),
            (std::vector<uint8_t>{200, 200, 200}));
  Image g2 = decode(make_png(4, 1, PNG_COLOR_TYPE_GRAY, 2, {0, 1, 2, 3}));
  EXPECT_EQ(px(g2, 1)[0], 85);
  EXPECT_EQ(px(g2, 3)[0], 255);
  Image g1 = decode(make_png(2, 1, PNG_COLOR_TYPE_GRAY, 1, {0, 1}));
  EXPECT_EQ(px(g1, 1)[0], 255);
  Image g4 = decode(make_png(2, 1, PNG_COLOR_TYPE_GRAY, 4, {1, 15}));
  EXPECT_EQ(px(g4, 0)[0], 17);
}

TEST(Png, SixteenBitGrayIsClippedColourKeepsHighByte) {
  Image g = decode(make_png(3, 1, PNG_COLOR_TYPE_GRAY, 16, {100, 255, 1000}));
  EXPECT_EQ(px(g, 0)[0], 100);
  EXPECT_EQ(px(g, 1)[0], 255);
  EXPECT_EQ(px(g, 2)[0], 255);  // clipped, not 1000 >> 8 = 3
  Image c = decode(make_png(1, 1, PNG_COLOR_TYPE_RGB, 16, {0x1234, 0xff00, 0x00ff}));
  EXPECT_EQ(px(c, 0), (std::vector<uint8_t>{0x12, 0xff, 0x00}));
}

TEST(Png, AlphaIsDroppedWithoutCompositing) {
  Image rgba = decode(make_png(1, 1, PNG_COLOR_TYPE_RGBA, 8, {10, 20, 30, 0}));
  EXPECT_EQ(px(rgba, 0), (std::vector<uint8_t>{10, 20, 30}));
  Image ga = decode(make_png(1, 1, PNG_COLOR_TYPE_GA, 8, {77, 0}));
  EXPECT_EQ(px(ga, 0), (std::vector<uint8_t>{77, 77, 77}));
  std::vector<png_color> pal = {{1, 2, 3}, {200, 100, 50}};
  Image p = decode(make_png(2, 1, PNG_COLOR_TYPE_PALETTE, 8, {1, 0}, pal, {0, 0}));
  EXPECT_EQ(px(p, 0), (std::vector<uint8_t>{200, 100, 50}));
  EXPECT_EQ(px(p, 1), (std::vector<uint8_t>{1, 2, 3}));
}

TEST(Png, CorruptFilesNameTheFile) {
  std::string good = make_png(8, 8, PNG_COLOR_TYPE_RGB, 8, {1, 2, 3});
  for (size_t cut : {size_t{4}, size_t{20}, good.size() / 2}) {
    try {
      decode_image("broken.png", reinterpret_cast<const uint8_t*>(good.data()), cut);
      FAIL() << "cut at " << cut;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("broken.png"), std::string::npos) << e.what();
    }
  }
  std::string flipped = good;
  flipped[good.size() / 2] ^= 0x5a;  // corrupt the compressed data
  EXPECT_THROW(decode(flipped), Error);
}

TEST(ImageFolder, PytorchFidAndTorchFidelityRules) {
  test::TempDir dir;
  for (auto n : {"b.png", "a.jpg", "c.PNG", ".hidden.png", "d.webp", "e.txt", "f.tiff", "g.JPEG"})
    dir.write(n, "x");
  std::filesystem::create_directory(dir.file("folder.png"));
  auto names = [&](FolderRule r) {
    std::vector<std::string> out;
    for (const auto& p : list_images(dir.path(), r)) out.push_back(p.substr(dir.path().size() + 1));
    return out;
  };
  EXPECT_EQ(names(FolderRule::kPytorchFid),
            (std::vector<std::string>{".hidden.png", "a.jpg", "b.png", "d.webp", "f.tiff"}));
  EXPECT_EQ(names(FolderRule::kTorchFidelity),
            (std::vector<std::string>{"a.jpg", "b.png", "c.PNG", "g.JPEG"}));
  EXPECT_THROW(list_images(dir.file("missing")), Error);
}

TEST(ImageFile, WritePngIsAtomicAndReadable) {
  test::TempDir dir;
  Image img{1, 1, {9, 8, 7}};
  write_png(dir.file("o.png"), img);
  EXPECT_EQ(decode_image_file(dir.file("o.png")).pixels, img.pixels);
  EXPECT_THROW(write_png(dir.file("no/such/dir/o.png"), img), Error);
}

}  // namespace
}  // namespace dmeval
