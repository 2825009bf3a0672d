// Image discovery in a folder, matching the reference tools' rules so the same files, in the same
// order, go into the statistics.
#pragma once

#include <string>
#include <vector>

namespace dmeval {

enum class FolderRule {
  // pytorch-fid: pathlib glob '*.{bmp,jpg,jpeg,pgm,png,ppm,tif,tiff,webp}', lowercase extensions
  // only (case-sensitive), not recursive, dotfiles included, sorted by name.
  kPytorchFid,
  // torch-fidelity: png, jpg, jpeg in any letter case, not recursive, dotfiles excluded, sorted.
  kTorchFidelity,
};

const char* folder_rule_name(FolderRule r);
// Sorted paths (dir + "/" + name) of regular files (or links to them) matching the rule.
// Throws if dir is not a readable directory.
std::vector<std::string> list_images(const std::string& dir, FolderRule rule = FolderRule::kPytorchFid);

}  // namespace dmeval
