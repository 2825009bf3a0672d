#include "generators/shapes_dataset.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "generators/philox.h"

namespace dmeval {

namespace {

constexpr double kPi = 3.14159265358979323846;

// Uniform doubles for one image, draw by draw (see the header for the counter layout).
class ImageRng {
 public:
  ImageRng(uint64_t seed, int64_t index)
      : key_{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)},
        lo_(static_cast<uint32_t>(static_cast<uint64_t>(index))),
        hi_(static_cast<uint32_t>(static_cast<uint64_t>(index) >> 32)) {}
  double uniform() {
    if (used_ == 4) {
      words_ = philox4x32_10({draw_++, 0, lo_, hi_}, key_);
      used_ = 0;
    }
    return (static_cast<double>(words_[used_++]) + 0.5) / 4294967296.0;
  }
  double between(double a, double b) { return a + (b - a) * uniform(); }
  int below(int n) { return std::min(n - 1, static_cast<int>(uniform() * n)); }

 private:
  PhiloxKey key_;
  uint32_t lo_, hi_, draw_ = 0;
  PhiloxCounter words_{};
  int used_ = 4;
};

using Rgb = std::array<double, 3>;

Rgb random_colour(ImageRng& r) {
  return {r.uniform(), r.uniform(), r.uniform()};
}

double distance(const Rgb& a, const Rgb& b) {
  return std::sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) +
                   (a[2] - b[2]) * (a[2] - b[2]));
}

// Inside test of the shape in its own frame (u, v in units of the half size, rotated).
bool inside(int cls, double u, double v) {
  switch (cls) {
    case 0: return u * u + v * v <= 1.0;                                // circle
    case 1: return std::abs(u) <= 0.8 && std::abs(v) <= 0.8;            // square
    case 2: return v <= 0.7 && v >= -0.9 + 1.6 * std::abs(u) * 1.1547;  // triangle, apex up
    default:
      return (std::abs(u) <= 0.3 && std::abs(v) <= 0.95) || (std::abs(v) <= 0.3 && std::abs(u) <= 0.95);
  }
}

}  // namespace

const std::vector<std::string>& shape_class_names() {
  static const std::vector<std::string> kNames = {"circle", "square", "triangle", "cross"};
  return kNames;
}

Image render_shape_image(const ShapesOptions& o, int64_t index, int* label) {
  DMEVAL_CHECK(o.size >= 8 && o.size <= 1024, "shapes image size {} (8..1024)", o.size);
  DMEVAL_CHECK(index >= 0, "shapes image index {}", index);
  ImageRng r(o.seed, index);
  const int cls = r.below(static_cast<int>(shape_class_names().size()));
  // Background: a random colour with a gentle gradient (each channel moves by at most 0.2 across the
  // image) and a faint sinusoidal texture. v2 keeps the background's entropy low so that a small UNet
  // trained on the CPU spends its capacity on the shapes (v1's strong two-colour gradients and
  // stripes left it drawing blobs).
  const Rgb c0 = random_colour(r);
  Rgb c1;
  for (int k = 0; k < 3; ++k) c1[k] = std::clamp(c0[k] + r.between(-0.2, 0.2), 0.0, 1.0);
  const double g_angle = r.between(0, 2 * kPi);
  const double tex_amp = r.between(0.0, 0.04), tex_freq = r.between(1.0, 3.0), tex_angle = r.between(0, kPi),
               tex_phase = r.between(0, 2 * kPi);
  const Rgb mean_bg = {(c0[0] + c1[0]) / 2, (c0[1] + c1[1]) / 2, (c0[2] + c1[2]) / 2};
  Rgb fg = random_colour(r);
  for (int tries = 0; tries < 32 && distance(fg, mean_bg) < 0.6; ++tries) fg = random_colour(r);
  if (distance(fg, mean_bg) < 0.6)
    for (int k = 0; k < 3; ++k) fg[k] = mean_bg[k] < 0.5 ? 1.0 : 0.0;  // far enough by construction
  const double half = r.between(0.2, 0.34);                            // half size as a fraction of the image
  const double cx = r.between(half, 1 - half), cy = r.between(half, 1 - half);
  const double rot = r.between(0, 2 * kPi);
  const bool stripes = r.uniform() < 0.5;
  const double s_freq = r.between(1.0, 2.0), s_angle = r.between(0, kPi);
  const Rgb fg2 = {fg[0] * 0.6, fg[1] * 0.6, fg[2] * 0.6};

  Image img;
  img.height = img.width = o.size;
  img.pixels.resize(static_cast<size_t>(o.size) * o.size * 3);
  const int ss = 4;
  const double cr = std::cos(rot), sr = std::sin(rot);
  for (int y = 0; y < o.size; ++y)
    for (int x = 0; x < o.size; ++x) {
      Rgb acc = {0, 0, 0};
      for (int sy = 0; sy < ss; ++sy)
        for (int sx = 0; sx < ss; ++sx) {
          const double px = (x + (sx + 0.5) / ss) / o.size, py = (y + (sy + 0.5) / ss) / o.size;
          const double g =
              0.5 + 0.5 * ((px - 0.5) * std::cos(g_angle) + (py - 0.5) * std::sin(g_angle)) * 1.41421356;
          const double tex =
              tex_amp * std::sin(2 * kPi * tex_freq * (px * std::cos(tex_angle) + py * std::sin(tex_angle)) +
                                 tex_phase);
          Rgb c;
          for (int k = 0; k < 3; ++k) c[k] = c0[k] * (1 - g) + c1[k] * g + tex;
          const double dx = (px - cx) / half, dy = (py - cy) / half;
          const double u = cr * dx + sr * dy, v = -sr * dx + cr * dy;
          if (inside(cls, u, v)) {
            const bool dark =
                stripes && std::sin(2 * kPi * s_freq * (u * std::cos(s_angle) + v * std::sin(s_angle))) > 0.5;
            c = dark ? fg2 : fg;
          }
          for (int k = 0; k < 3; ++k) acc[k] += std::clamp(c[k], 0.0, 1.0);
        }
      for (int k = 0; k < 3; ++k)
        img.pixels[(static_cast<size_t>(y) * o.size + x) * 3 + k] =
            static_cast<uint8_t>(std::floor(acc[k] / (ss * ss) * 255.0 + 0.5));
    }
  if (label) *label = cls;
  return img;
}

bool is_shapes_spec(const std::string& spec) {
  return spec.rfind("shapes:", 0) == 0;
}

ShapesSpec parse_shapes_spec(const std::string& spec, const std::string& option) {
  ShapesSpec s;
  unsigned long long seed = 0;
  long long n = 0;
  char extra = 0;
  const int got = is_shapes_spec(spec) ? std::sscanf(spec.c_str() + 7, "%lld:%llu%c", &n, &seed, &extra) : 0;
  DMEVAL_CHECK((got == 1 || got == 2) && n >= 2, "{} '{}': write shapes:N or shapes:N:SEED (N >= 2)", option,
               spec);
  s.n = n;
  s.seed = seed;
  return s;
}

ImageBatch ShapesProducer::produce(int64_t first, int64_t count) {
  ImageBatch b;
  b.first_index = first;
  for (int64_t i = 0; i < count; ++i) b.images.push_back(render_shape_image(options_, first + i));
  return b;
}

std::string ShapesProducer::describe() const {
  return fmt::format("dmeval shapes v2 ({}x{}, seed {}, classes {})", options_.size, options_.size,
                     options_.seed, fmt::format("{}", fmt::join(shape_class_names(), "/")));
}

}  // namespace dmeval
