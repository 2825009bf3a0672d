// `dmeval resize --matlab-bicubic --scale 1/4 IN OUT`: MATLAB-compatible bicubic resize of one image
// or a folder, to make SR inputs exactly like the benchmark LR_bicubic files (uint8 two-pass, the
// default) or like BasicSR's imresize (float).
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "core/image.h"
#include "harness/cli/commands.h"
#include "metrics/matlab_resize.h"
#include "metrics/paired_folders.h"

#include <CLI/CLI.hpp>

namespace dmeval::cli {

namespace {
namespace fs = std::filesystem;

// "1/4", "0.25", "4" -> the scale; the integer factor (4) when it is one of k or 1/k.
double parse_scale(const std::string& text, int& factor) {
  double v = 0;
  try {
    size_t slash = text.find('/');
    size_t used = 0;
    if (slash == std::string::npos) {
      v = std::stod(text, &used);
      if (used != text.size()) throw std::invalid_argument(text);
    } else {
      double num = std::stod(text.substr(0, slash), &used);
      if (used != slash) throw std::invalid_argument(text);
      const std::string den_text = text.substr(slash + 1);
      double den = std::stod(den_text, &used);
      if (used != den_text.size() || den == 0) throw std::invalid_argument(text);
      v = num / den;
    }
  } catch (const std::exception&) {
    fail("--scale '{}': expected a number or a fraction such as 1/4", text);
  }
  if (!(v > 0) || !std::isfinite(v)) fail("--scale '{}' must be positive", text);
  factor = 0;
  if (v >= 1 && std::floor(v) == v) factor = static_cast<int>(v);
  if (v < 1 && std::abs(1 / v - std::round(1 / v)) < 1e-9) factor = static_cast<int>(std::round(1 / v));
  return v;
}
}  // namespace

void add_resize_command(CLI::App& app) {
  struct Opts {
    std::string in, out, scale, arithmetic = "uint8", suffix;
    bool matlab = false;
    int mod_crop = -1;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd =
      app.add_subcommand("resize", "MATLAB-compatible bicubic resize of an image or a folder (PNG out)");
  cmd->add_flag("--matlab-bicubic", o->matlab,
                "MATLAB imresize bicubic (antialiased when shrinking, symmetric borders); required, the only "
                "method so far")
      ->required();
  cmd->add_option("--scale", o->scale, "scale factor: 1/4 (make x4 LR inputs), 0.5, 2, 4 ...")->required();
  cmd->add_option("--arithmetic", o->arithmetic,
                  "uint8: MATLAB on uint8 images, rounding between the two passes (reproduces the benchmark "
                  "LR_bicubic files bit-exactly); float: BasicSR's imresize on [0,1] floats, rounded once")
      ->check(CLI::IsMember({"uint8", "float"}));
  cmd->add_option("--mod-crop", o->mod_crop,
                  "crop the input to a multiple of this first (default: the factor k when shrinking by 1/k, "
                  "as the benchmark folders do; 1 = none)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--suffix", o->suffix, "appended to each output file stem, e.g. x4 for babyx4.png");
  cmd->add_option("in", o->in, "input image or folder")->required();
  cmd->add_option("out", o->out, "output PNG (for an image) or folder (for a folder)")->required();
  cmd->callback([o] {
    int factor = 0;
    const double scale = parse_scale(o->scale, factor);
    int mod = o->mod_crop;
    if (mod < 0) mod = scale < 1 && factor > 0 ? factor : 1;
    std::vector<std::pair<std::string, std::string>> jobs;
    std::error_code ec;
    if (fs::is_directory(o->in, ec)) {
      fs::create_directories(o->out, ec);
      if (ec) fail("{}: cannot create the output folder: {}", o->out, ec.message());
      for (const auto& f : list_pairable_images(o->in))
        jobs.emplace_back(f,
                          (fs::path(o->out) / (fs::path(f).stem().string() + o->suffix + ".png")).string());
    } else {
      if (!fs::exists(o->in, ec)) fail("{}: no such file or folder", o->in);
      std::string out = o->out;
      if (fs::is_directory(out, ec))
        out = (fs::path(out) / (fs::path(o->in).stem().string() + o->suffix + ".png")).string();
      jobs.emplace_back(o->in, out);
    }
    for (const auto& [in, out] : jobs) {
      Image img = decode_image_file(in);
      if (img.source_bit_depth > 8)
        fail("{}: {}-bit image; resize works on 8-bit images (convert it explicitly first)", in,
             img.source_bit_depth);
      if (mod > 1) img = mod_crop(img, mod);
      Image r =
          o->arithmetic == "uint8" ? matlab_imresize_uint8(img, scale) : matlab_imresize_float(img, scale);
      write_png(out, r);
      std::printf("%s (%dx%d) -> %s (%dx%d)\n", in.c_str(), img.width, img.height, out.c_str(), r.width,
                  r.height);
    }
    std::printf("MATLAB bicubic, scale %s, %s arithmetic, mod-crop %d, %zu image(s)\n", o->scale.c_str(),
                o->arithmetic.c_str(), mod, jobs.size());
  });
}

}  // namespace dmeval::cli
