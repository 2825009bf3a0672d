#include "metrics/paired_folders.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <set>

#include "core/error.h"
#include "metrics/matlab_resize.h"

namespace dmeval {

namespace fs = std::filesystem;

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_image_name(const std::string& name) {
  static const std::set<std::string> kExt = {".png",  ".jpg",  ".jpeg", ".bmp", ".tif",
                                             ".tiff", ".webp", ".ppm",  ".pgm"};
  if (name.empty() || name[0] == '.') return false;
  return kExt.count(lower(fs::path(name).extension().string())) > 0;
}

std::string stem_of(const std::string& path) {
  return fs::path(path).stem().string();
}

bool is_separator(char c) {
  return c == '_' || c == '-' || c == '.' || c == 'x' || c == 'X';
}

void check_image(const Image& img, const std::string& path) {
  if (img.source_bit_depth > 8)
    fail(
        "{}: {}-bit image; SR metrics are defined on 8-bit images (BasicSR's IMREAD_COLOR would keep only "
        "the high byte). Convert it to 8 bits explicitly first",
        path, img.source_bit_depth);
}

}  // namespace

std::vector<std::string> list_pairable_images(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail("{}: not a directory", dir);
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (!is_image_name(name)) continue;
    if (!fs::is_regular_file(e.path(), ec)) continue;
    out.push_back(e.path().string());
  }
  if (ec) fail("{}: cannot list the folder: {}", dir, ec.message());
  if (out.empty()) fail("{}: no images (png, jpg, jpeg, bmp, tif, tiff, webp, ppm, pgm) in this folder", dir);
  std::sort(out.begin(), out.end());
  return out;
}

FolderPairing pair_folders(const std::string& reference_dir, const std::string& distorted_dir) {
  const auto refs = list_pairable_images(reference_dir);
  const auto dists = list_pairable_images(distorted_dir);
  std::map<std::string, std::string> ref_by_stem;
  for (const auto& r : refs) {
    const std::string s = stem_of(r);
    auto [it, fresh] = ref_by_stem.emplace(s, r);
    if (!fresh)
      fail("{}: two reference files share the name '{}': {} and {}", reference_dir, s, it->second, r);
  }
  std::map<std::string, std::string> dist_for_ref;  // ref stem -> distorted path
  std::map<std::string, bool> exact;
  FolderPairing out;
  for (const auto& d : dists) {
    const std::string ds = stem_of(d);
    std::string match;
    bool is_exact = false;
    if (ref_by_stem.count(ds)) {
      match = ds;
      is_exact = true;
    } else {
      for (const auto& [rs, rp] : ref_by_stem) {
        if (ds.size() > rs.size() + 1 && ds.compare(0, rs.size(), rs) == 0 && is_separator(ds[rs.size()]) &&
            rs.size() > match.size())
          match = rs;
      }
    }
    if (match.empty()) {
      out.unpaired_distorted.push_back(d);
      continue;
    }
    auto it = dist_for_ref.find(match);
    if (it != dist_for_ref.end()) {
      // An exact-name file wins over a suffixed one; two of the same kind are ambiguous.
      if (exact[match] == is_exact)
        fail("{}: two files pair with the reference '{}': {} and {}; keep one per reference", distorted_dir,
             ref_by_stem[match], it->second, d);
      if (exact[match]) {
        out.unpaired_distorted.push_back(d);
        continue;
      }
      out.unpaired_distorted.push_back(it->second);
    }
    dist_for_ref[match] = d;
    exact[match] = is_exact;
  }
  for (const auto& [rs, rp] : ref_by_stem) {
    auto it = dist_for_ref.find(rs);
    if (it == dist_for_ref.end()) {
      out.unpaired_reference.push_back(rp);
      continue;
    }
    out.pairs.push_back({rs, rp, it->second});
    if (!exact[rs]) ++out.by_suffix;
  }
  std::sort(out.unpaired_distorted.begin(), out.unpaired_distorted.end());
  return out;
}

LoadedPair load_sr_pair(const ImagePair& pair, int mod_crop_scale) {
  LoadedPair p;
  p.reference = decode_image_file(pair.reference_path);
  p.distorted = decode_image_file(pair.distorted_path);
  check_image(p.reference, pair.reference_path);
  check_image(p.distorted, pair.distorted_path);
  if (p.reference.source_gray != p.distorted.source_gray)
    fail(
        "{} is {} but {} is {}: a grey image cannot be scored against a colour one (Y-channel and RGB "
        "scores would both be wrong); convert one of them",
        pair.reference_path, p.reference.source_gray ? "greyscale" : "colour", pair.distorted_path,
        p.distorted.source_gray ? "greyscale" : "colour");
  if (mod_crop_scale > 1) p.reference = mod_crop(p.reference, mod_crop_scale);
  if (p.reference.height != p.distorted.height || p.reference.width != p.distorted.width) {
    fail("{} is {}x{} but {} is {}x{} (width x height{}); paired metrics need equal sizes",
         pair.distorted_path, p.distorted.width, p.distorted.height, pair.reference_path, p.reference.width,
         p.reference.height,
         mod_crop_scale > 1 ? ", reference after mod-crop to a multiple of " + std::to_string(mod_crop_scale)
                            : std::string(", no mod-crop: pass --scale S to mod-crop the reference"));
  }
  return p;
}

}  // namespace dmeval
