// Named evaluation setups for `dmeval run` and `dmeval sweep` (a table by name, as the SR presets):
// the UNet and its weights, the sampler, the sample count, the feature network and its weights, the
// reference, and the calibration budget per method. A profile fills every option the command line
// leaves unset; what it needs and cannot find is listed with hashes, URLs and how to make it.
//
//   shapes        the embedded default: everything is in the repository or made by dmeval
//   cifar10-ddim  the papers' setting: ddim CIFAR-10 EMA checkpoint, 100-step quad DDIM, 50,000
//                 samples, pt_inception weights, CIFAR-10 training-set reference statistics
#pragma once

#include <map>
#include <string>
#include <vector>

#include "generators/samplers.h"

namespace dmeval::cli {

// A file a profile needs: where dmeval looks for it, what it is, and how to get or make it.
struct ProfileFile {
  std::string role;           // "UNet weights", "feature network weights", "reference statistics"
  std::string path;           // where dmeval looks ($VARS and ~ expanded by profile_path)
  std::string known_name;     // its entry in core/known_files (checksums, URL); "" for files dmeval makes
  std::string known_variant;  // text in that entry's description when several share the name ("EMA")
  std::string how;            // how to get or make it
};

struct Profile {
  std::string name, summary;
  std::string model;  // UNet preset
  SamplerSpec sampler;
  int64_t samples = 1000, batch = 64, chunk = 256;
  std::string network;         // shapes-net | inception
  std::string inception_mode;  // preprocessing for the Inception network
  std::string ref;             // reference images or statistics (run's --ref)
  // The files the profile reads, in this order: UNet weights, feature network weights, reference
  // (the reference entry only when it is a file).
  ProfileFile unet, network_weights, reference;
  // key=value calibration settings per method (the budget this profile affords); --calib wins.
  std::map<std::string, std::vector<std::string>> calib;
  std::string notes;  // printed by `dmeval run --list-profiles`
};

const std::vector<Profile>& profiles();
const Profile& find_profile(const std::string& name);  // throws listing the profiles
std::vector<std::string> profile_names();

// `path` with a leading ~ and $VARS expanded; "profiles/..." falls back to $DMEVAL_PROFILES_DIR and
// to the repository dmeval was built from, so the embedded profile works from any directory.
std::string profile_path(const std::string& path);

// Throws one error naming every missing file of `files`: its role, where it was looked for, its
// checksums and public URL (core/known_files), and how to get or make it.
void require_profile_files(const Profile& p, const std::vector<const ProfileFile*>& files);

}  // namespace dmeval::cli
