// Named evaluation setups for `dmeval run` and `dmeval sweep` (a table by name), as data files: a
// profile is a folder holding `profile.json` (and usually the files it names). Adding one needs no
// rebuild. Profiles are found, first name wins, in
//   $DMEVAL_PROFILES_DIR/<name>/profile.json
//   $XDG_CONFIG_HOME/dmeval/profiles/<name>/profile.json (~/.config/dmeval/profiles without it)
//   <the repository dmeval was built from>/profiles/<name>/profile.json  (the embedded ones)
// or given as a path (`--profile my/profile.json`).
//
// profile.json (every key checked: an unknown key or a value of the wrong type is refused naming the
// file and the key):
//   "name", "summary", "notes"      strings; name = the folder's name
//   "options"   {key: value}        any option of `dmeval run` a profile may set (run_option_table,
//                                   e.g. "model", "checkpoint", "steps", "eta", "samples", "ref");
//                                   relative file paths are relative to the profile's folder
//   "why"       {key: text}         why a value departs from the reference setting (printed with it)
//   "files"     {key: {"role", "how", "known_name", "known_variant"}}   the files the options name:
//                                   what they are and how to get or make them (checksums and URLs
//                                   from core/known_files)
//   "calib"     {method: ["key=value", ...]}   the calibration budget per method (--calib wins)
// The embedded profiles' files are looked up in $DMEVAL_PROFILES_DIR/<name>/ when it is set.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

namespace dmeval::cli {

// A file a profile needs: where dmeval looks for it, what it is, and how to get or make it.
struct ProfileFile {
  std::string role;           // "UNet weights", "feature network weights", "reference statistics"
  std::string path;           // where dmeval looks (resolved)
  std::string known_name;     // its entry in core/known_files (checksums, URL); "" for files dmeval makes
  std::string known_variant;  // text in that entry's description when several share the name ("EMA")
  std::string how;            // how to get or make it
};

struct Profile {
  std::string name, summary, notes;
  std::string file;                                       // the profile.json it was read from
  nlohmann::ordered_json options;                         // checked against run_option_table; paths resolved
  std::map<std::string, std::string> why;                 // option key -> why
  std::map<std::string, ProfileFile> files;               // option key -> the file that option names
  std::map<std::string, std::vector<std::string>> calib;  // method -> key=value settings
  // The value of option `key` as a string ("" when the profile does not set it).
  std::string option_text(const std::string& key) const;
};

// Reads and checks one profile file; `files_root` is where its relative paths point ("" = its folder).
Profile read_profile(const std::string& file, const std::string& files_root = "");

// A profile found on the search path, or the error that refused its file.
struct ProfileEntry {
  std::string name, file, error;
  Profile profile;  // valid when error is empty
};
// Every profile on the search path: the default (shapes) first, then by name.
std::vector<ProfileEntry> find_profiles();
// By name or path; throws listing the profiles, or the file's error.
Profile find_profile(const std::string& name_or_path);
std::vector<std::string> profile_names();

// `path` with a leading ~ and $VARS expanded; "profiles/..." falls back to $DMEVAL_PROFILES_DIR and
// to the repository dmeval was built from, so the embedded profile works from any directory.
std::string profile_path(const std::string& path);

// Throws one error naming every missing file of `files`: its role, where it was looked for, its
// checksums and public URL (core/known_files), and how to get or make it.
void require_profile_files(const Profile& p, const std::vector<const ProfileFile*>& files);

}  // namespace dmeval::cli
