#include "core/image_folder.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "core/error.h"

namespace dmeval {

namespace fs = std::filesystem;

const char* folder_rule_name(FolderRule r) {
  return r == FolderRule::kPytorchFid ? "pytorch-fid" : "torch-fidelity";
}

namespace {
bool matches(const std::string& name, FolderRule rule) {
  size_t dot = name.rfind('.');
  if (dot == std::string::npos) return false;
  std::string ext = name.substr(dot + 1);
  if (rule == FolderRule::kPytorchFid) {
    // pathlib's glob matches '*.png' against the whole name, hidden files (and ".png") included.
    static const char* kExt[] = {"bmp", "jpg", "jpeg", "pgm", "png", "ppm", "tif", "tiff", "webp"};
    return std::any_of(std::begin(kExt), std::end(kExt), [&](const char* e) { return ext == e; });
  }
  if (name[0] == '.') return false;
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == "png" || ext == "jpg" || ext == "jpeg";
}
}  // namespace

std::vector<std::string> list_images(const std::string& dir, FolderRule rule) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail("{}: not a directory", dir);
  std::vector<std::string> names;
  fs::directory_iterator it(dir, ec);
  if (ec) fail("{}: cannot list directory: {}", dir, ec.message());
  for (const auto& entry : it) {
    std::string name = entry.path().filename().string();
    if (!matches(name, rule)) continue;
    if (!entry.is_regular_file(ec)) continue;  // follows links; skips folders named x.png
    names.push_back(name);
  }
  std::sort(names.begin(), names.end());  // byte order == code point order for UTF-8
  std::string base = dir;
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  for (auto& n : names) n = base + "/" + n;
  return names;
}

}  // namespace dmeval
