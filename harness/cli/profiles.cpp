#include "harness/cli/profiles.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/known_files.h"
#include "generators/quant/quant_method.h"
#include "harness/cli/run_options.h"

namespace dmeval::cli {

namespace fs = std::filesystem;

namespace {

// ${VAR:-default} (one level), $VAR and a leading ~.
std::string expand(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    if (s[i] == '$' && i + 1 < s.size() && s[i + 1] == '{') {
      const size_t close = s.find('}', i);
      DMEVAL_CHECK(close != std::string::npos, "unclosed ${{ in '{}'", s);
      const std::string body = s.substr(i + 2, close - i - 2);
      const size_t dash = body.find(":-");
      const std::string var = body.substr(0, dash);
      const char* v = std::getenv(var.c_str());
      out += v && *v                     ? std::string(v)
             : dash == std::string::npos ? std::string()
                                         : expand(body.substr(dash + 2));
      i = close + 1;
    } else if (s[i] == '$') {
      size_t j = i + 1;
      while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
      const char* v = std::getenv(s.substr(i + 1, j - i - 1).c_str());
      out += v ? v : "";
      i = j;
    } else if (s[i] == '~' && i == 0 && (s.size() == 1 || s[1] == '/')) {
      const char* home = std::getenv("HOME");
      out += home ? home : "~";
      ++i;
    } else {
      out += s[i++];
    }
  }
  return out;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  DMEVAL_CHECK(in.good(), "{}: cannot read", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const nlohmann::ordered_json& member(const nlohmann::ordered_json& j, const std::string& file,
                                     const std::string& key, nlohmann::json::value_t type, const char* what) {
  const nlohmann::ordered_json& v = j.at(key);
  const bool ok = type == nlohmann::json::value_t::string   ? v.is_string()
                  : type == nlohmann::json::value_t::object ? v.is_object()
                                                            : v.is_array();
  DMEVAL_CHECK(ok, "{}: key '{}' must be {}, not {}", file, key, what, v.dump());
  return v;
}

std::string default_profile_name() {
  return "shapes";
}

std::vector<std::pair<std::string, bool>> profile_roots() {  // (folder, embedded)
  std::vector<std::pair<std::string, bool>> roots;
  if (const char* env = std::getenv("DMEVAL_PROFILES_DIR"); env && *env) roots.emplace_back(env, false);
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg && *xdg)
    roots.emplace_back(std::string(xdg) + "/dmeval/profiles", false);
  else if (const char* home = std::getenv("HOME"); home && *home)
    roots.emplace_back(std::string(home) + "/.config/dmeval/profiles", false);
  roots.emplace_back(std::string(DMEVAL_REPO_ROOT) + "/profiles", true);
  return roots;
}

// Where an embedded profile's files are: $DMEVAL_PROFILES_DIR/<name> when set (it replaces the
// repository's profiles/ folder), else next to its profile.json.
std::string files_root_for(const std::string& name, bool embedded) {
  const char* env = std::getenv("DMEVAL_PROFILES_DIR");
  if (embedded && env && *env) return std::string(env) + "/" + name;
  return "";
}

}  // namespace

std::string Profile::option_text(const std::string& key) const {
  if (!options.contains(key)) return "";
  const auto& v = options.at(key);
  return v.is_string() ? v.get<std::string>() : v.dump();
}

Profile read_profile(const std::string& file, const std::string& files_root_in) {
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(read_text(file));
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not valid JSON ({})", file, e.what());
  }
  DMEVAL_CHECK(j.is_object(), "{}: a profile is a JSON object", file);
  static const std::vector<std::string> kKeys = {"name", "summary", "notes", "options",
                                                 "why",  "files",   "calib"};
  for (auto it = j.begin(); it != j.end(); ++it)
    DMEVAL_CHECK(std::find(kKeys.begin(), kKeys.end(), it.key()) != kKeys.end(),
                 "{}: unknown key '{}' (a profile has: {})", file, it.key(), fmt::join(kKeys, ", "));
  for (const char* k : {"name", "summary", "options"})
    DMEVAL_CHECK(j.contains(k), "{}: key '{}' is missing", file, k);
  using VT = nlohmann::json::value_t;
  Profile p;
  p.file = file;
  p.name = member(j, file, "name", VT::string, "a string").get<std::string>();
  p.summary = member(j, file, "summary", VT::string, "a string").get<std::string>();
  if (j.contains("notes")) p.notes = member(j, file, "notes", VT::string, "a string").get<std::string>();
  const std::string folder = fs::path(file).parent_path().string();
  const std::string folder_name = fs::path(file).parent_path().filename().string();
  DMEVAL_CHECK(fs::path(file).filename() != "profile.json" || folder_name == p.name,
               "{}: key 'name' is '{}' but the profile's folder is '{}'", file, p.name, folder_name);
  const std::string root = files_root_in.empty() ? folder : files_root_in;
  auto resolve = [&](const std::string& value) {
    const std::string e = expand(value);
    return e.empty() || fs::path(e).is_absolute() ? e : (fs::path(root) / e).lexically_normal().string();
  };

  // Options: every key and type checked against `dmeval run`'s table.
  p.options = member(j, file, "options", VT::object, "an object of options").get<nlohmann::ordered_json>();
  {
    RunCellOptions scratch;
    run_option_table().from_json(p.options, scratch, file + ": \"options\"", kProfile);
  }
  if (j.contains("why"))
    for (const auto& [k, v] : member(j, file, "why", VT::object, "an object").items()) {
      DMEVAL_CHECK(v.is_string(), "{}: key 'why.{}' must be a string", file, k);
      DMEVAL_CHECK(run_option_table().find(k) || k == "calib" || k.rfind("calib.", 0) == 0,
                   "{}: key 'why.{}' explains no option (an option key, calib or calib.METHOD)", file, k);
      p.why[k] = v.get<std::string>();
    }
  if (j.contains("files"))
    for (const auto& [k, v] : member(j, file, "files", VT::object, "an object").items()) {
      DMEVAL_CHECK(p.options.contains(k) && p.options[k].is_string(),
                   "{}: key 'files.{}' describes a file the profile's options do not name", file, k);
      DMEVAL_CHECK(v.is_object(), "{}: key 'files.{}' must be an object", file, k);
      ProfileFile f;
      for (const auto& [fk, fv] : v.items()) {
        DMEVAL_CHECK(fv.is_string(), "{}: key 'files.{}.{}' must be a string", file, k, fk);
        if (fk == "role")
          f.role = fv;
        else if (fk == "how")
          f.how = fv;
        else if (fk == "known_name")
          f.known_name = fv;
        else if (fk == "known_variant")
          f.known_variant = fv;
        else
          fail("{}: unknown key 'files.{}.{}' (role, how, known_name, known_variant)", file, k, fk);
      }
      DMEVAL_CHECK(!f.role.empty() && !f.how.empty(), "{}: key 'files.{}' needs a role and a how", file, k);
      f.path = resolve(p.options[k].get<std::string>());
      p.files[k] = f;
    }
  // Relative paths of file options point into the profile's folder (references given as specs such
  // as shapes:N:SEED are not paths).
  for (const auto& e : run_option_table().entries()) {
    if (!(e.traits & kPath) || !p.options.contains(e.key)) continue;
    const std::string v = p.options[e.key].get<std::string>();
    if (p.files.count(e.key))
      p.options[e.key] = p.files[e.key].path;
    else if (!v.empty() && v.find(':') == std::string::npos)
      p.options[e.key] = resolve(v);
  }
  const std::vector<std::string> methods = quant_method_names();
  if (j.contains("calib"))
    for (const auto& [method, kvs] : member(j, file, "calib", VT::object, "an object").items()) {
      DMEVAL_CHECK(std::find(methods.begin(), methods.end(), method) != methods.end(),
                   "{}: key 'calib.{}': no such method ({})", file, method, fmt::join(methods, ", "));
      DMEVAL_CHECK(kvs.is_array(), "{}: key 'calib.{}' must be a list of \"key=value\" strings", file,
                   method);
      std::vector<std::string> list;
      for (const auto& kv : kvs) {
        DMEVAL_CHECK(kv.is_string(), "{}: key 'calib.{}' must be a list of \"key=value\" strings", file,
                     method);
        list.push_back(kv.get<std::string>());
      }
      try {
        merge_settings(quant_method(method), list);  // unknown settings and bad values name the method's keys
      } catch (const Error& e) {
        fail("{}: key 'calib.{}': {}", file, method, e.what());
      }
      p.calib[method] = list;
    }
  return p;
}

std::vector<ProfileEntry> find_profiles() {
  std::vector<ProfileEntry> out;
  std::set<std::string> seen;
  for (const auto& [root, embedded] : profile_roots()) {
    std::error_code ec;
    if (!fs::is_directory(root, ec)) continue;
    std::vector<fs::path> dirs;
    for (const auto& d : fs::directory_iterator(root, ec))
      if (fs::exists(d.path() / "profile.json")) dirs.push_back(d.path());
    std::sort(dirs.begin(), dirs.end());
    for (const auto& d : dirs) {
      ProfileEntry e;
      e.name = d.filename().string();
      e.file = (d / "profile.json").string();
      if (!seen.insert(e.name).second) continue;  // an earlier root's profile of that name wins
      try {
        e.profile = read_profile(e.file, files_root_for(e.name, embedded));
      } catch (const Error& err) {
        e.error = err.what();
      }
      out.push_back(std::move(e));
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const ProfileEntry& a, const ProfileEntry& b) {
    return (a.name == default_profile_name()) > (b.name == default_profile_name());
  });
  return out;
}

std::vector<std::string> profile_names() {
  std::vector<std::string> n;
  for (const auto& e : find_profiles()) n.push_back(e.name);
  return n;
}

Profile find_profile(const std::string& name) {
  if (name.find('/') != std::string::npos || (name.size() > 5 && name.substr(name.size() - 5) == ".json")) {
    DMEVAL_CHECK(fs::is_regular_file(name), "--profile {}: no such file", name);
    return read_profile(name);
  }
  for (auto& e : find_profiles())
    if (e.name == name) {
      if (!e.error.empty()) throw Error(e.error);
      return e.profile;
    }
  fail("unknown profile '{}' (profiles: {})", name, fmt::join(profile_names(), ", "));
}

std::string profile_path(const std::string& path) {
  const std::string p = expand(path);
  if (fs::exists(p) || p.rfind("profiles/", 0) != 0) return p;
  const char* env = std::getenv("DMEVAL_PROFILES_DIR");
  const std::string root = env && *env ? std::string(env) : std::string(DMEVAL_REPO_ROOT) + "/profiles";
  const std::string alt = root + "/" + p.substr(9);
  return fs::exists(alt) || fs::is_directory(root) ? alt : p;
}

void require_profile_files(const Profile& p, const std::vector<const ProfileFile*>& files) {
  std::string missing;
  int count = 0;
  for (const ProfileFile* f : files) {
    if (!f || f->path.empty()) continue;
    const std::string path = profile_path(f->path);
    if (fs::exists(path)) continue;
    ++count;
    missing += fmt::format("\n  - {}: {}", f->role, path);
    for (const KnownFile& k : known_files()) {
      if (f->known_name.empty() || k.name != f->known_name ||
          k.description.find(f->known_variant) == std::string::npos)
        continue;
      missing += fmt::format("\n      {}", k.description);
      if (!k.sha256.empty()) missing += fmt::format("\n      SHA-256 {}", k.sha256);
      if (!k.md5.empty()) missing += fmt::format("\n      MD5 {}", k.md5);
      if (k.size_bytes >= 0) missing += fmt::format("\n      size {} bytes", k.size_bytes);
      if (!k.url.empty()) missing += fmt::format("\n      URL {}", k.url);
      break;
    }
    missing += fmt::format("\n      how: {}", f->how);
  }
  if (count)
    fail("profile '{}' needs {} file{} that {} not here:{}", p.name, count, count == 1 ? "" : "s",
         count == 1 ? "is" : "are", missing);
}

}  // namespace dmeval::cli
