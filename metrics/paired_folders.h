// Pairing the reference (HR) and distorted (SR) images of two folders by file name, and loading a
// pair the way SR evaluation needs it (BasicSR reads both with cv2.imread(IMREAD_COLOR)).
#pragma once

#include <string>
#include <vector>

#include "core/image.h"

namespace dmeval {

struct ImagePair {
  std::string name;  // the reference's file stem ("baby")
  std::string reference_path;
  std::string distorted_path;
};

struct FolderPairing {
  std::vector<ImagePair> pairs;  // sorted by name
  std::vector<std::string> unpaired_reference;
  std::vector<std::string> unpaired_distorted;
  int by_suffix = 0;  // pairs matched by "stem + separator + suffix" rather than the exact stem
};

// Image files of a folder (png, jpg/jpeg, bmp, tif/tiff, webp, ppm/pgm, any letter case; no dotfiles;
// not recursive), sorted. Throws naming the folder if it is missing or holds no image.
std::vector<std::string> list_pairable_images(const std::string& dir);

// Pairs by stem: the same stem first; otherwise a distorted stem made of the reference stem, one of
// '_', '-', '.', 'x' and a suffix (BasicSR's "baby_BI-DiffSR.png", the benchmarks' "babyx4.png"),
// the longest such reference stem winning. A distorted file claimed by two references, or two files
// claiming one reference, is an error naming them.
FolderPairing pair_folders(const std::string& reference_dir, const std::string& distorted_dir);

struct LoadedPair {
  Image reference;
  Image distorted;
};

// Decodes both files and checks them: 8-bit samples only (16-bit files would be silently reduced),
// both grey or both colour (grey files become three equal channels, as IMREAD_COLOR does), and the
// same size after the reference is mod-cropped to `mod_crop_scale` (1 = no crop). Errors name the files.
LoadedPair load_sr_pair(const ImagePair& pair, int mod_crop_scale);

}  // namespace dmeval
