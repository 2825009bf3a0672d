#include "tests/support/golden.h"

#include "core/hash.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

namespace dmeval::test {

namespace fs = std::filesystem;

std::string golden_dir() {
  std::string dir;
  if (const char* env = std::getenv("DMEVAL_GOLDEN_DIR"))
    dir = env;
  else
    dir = std::string(DMEVAL_SOURCE_DIR) + "/../shared/golden";
  std::error_code ec;
  return fs::is_directory(dir, ec) ? dir : "";
}

std::string project_golden_dir() {
  std::string dir = std::string(DMEVAL_SOURCE_DIR) + "/tests/data/golden";
  if (const char* env = std::getenv("DMEVAL_PROJECT_GOLDEN_DIR")) dir = env;
  std::error_code ec;
  return fs::is_directory(dir, ec) ? dir : "";
}

std::vector<std::string> golden_roots() {
  std::vector<std::string> roots;
  for (const std::string& r : {golden_dir(), project_golden_dir()})
    if (!r.empty()) roots.push_back(r);
  return roots;
}

std::vector<std::string> golden_dirs_with(const std::string& parent, const std::string& marker) {
  std::vector<std::string> out;
  for (const std::string& root : golden_roots()) {
    std::error_code ec;
    std::vector<std::string> found;
    for (const auto& e : fs::directory_iterator(root + "/" + parent, ec))
      if (e.is_directory() && fs::exists(e.path() / marker)) found.push_back(e.path().string());
    std::sort(found.begin(), found.end());
    out.insert(out.end(), found.begin(), found.end());
  }
  return out;
}

std::string find_in_golden_roots(const std::string& relative) {
  for (const std::string& root : golden_roots()) {
    std::error_code ec;
    if (fs::exists(root + "/" + relative, ec)) return root + "/" + relative;
  }
  return "";
}

std::string find_golden_unet(const std::string& weights_sha256) {
  for (const std::string& d : golden_dirs_with("generators", "weights.pt"))
    if (sha256_file(d + "/weights.pt") == weights_sha256) return d;
  return "";
}

std::vector<std::string> golden_files(const std::string& parent, const std::string& prefix,
                                      const std::string& suffix) {
  std::vector<std::string> out;
  for (const std::string& root : golden_roots()) {
    std::error_code ec;
    std::vector<std::string> found;
    for (const auto& e : fs::directory_iterator(root + "/" + parent, ec)) {
      const std::string n = e.path().filename().string();
      if (e.is_regular_file() && n.size() >= prefix.size() + suffix.size() && n.rfind(prefix, 0) == 0 &&
          n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0)
        found.push_back(e.path().string());
    }
    std::sort(found.begin(), found.end());
    out.insert(out.end(), found.begin(), found.end());
  }
  return out;
}

std::string golden_path(const std::string& relative) {
  return golden_dir() + "/" + relative;
}

std::string shared_path(const std::string& relative) {
  std::string r = relative;
  if (r.rfind("shared/", 0) == 0) r = r.substr(7);
  return golden_dir() + "/../" + r;
}

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

namespace {
std::string trim(std::string s) {
  size_t b = s.find_first_not_of(" \t\r");
  size_t e = s.find_last_not_of(" \t\r");
  if (b == std::string::npos) return "";
  s = s.substr(b, e - b + 1);
  if (s.size() >= 2 && s.front() == '`' && s.back() == '`') s = s.substr(1, s.size() - 2);
  return s;
}

std::vector<std::string> split_row(const std::string& line) {
  std::vector<std::string> cells;
  std::string cur;
  for (size_t i = 1; i < line.size(); ++i) {  // skip the leading '|'
    if (line[i] == '|') {
      cells.push_back(trim(cur));
      cur.clear();
    } else {
      cur.push_back(line[i]);
    }
  }
  return cells;
}
}  // namespace

std::string python_json_text(const std::string& text) {
  // Only outside strings: the tokens appear as values after ':' , '[' or ','.
  static const std::regex token("([:\\[,]\\s*)(-?Infinity|NaN)");
  return std::regex_replace(text, token, "$1null");
}

std::vector<std::vector<std::string>> markdown_table(const std::string& md, const std::string& first_header) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(md);
  std::string line;
  bool in_table = false;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] != '|') {
      in_table = false;
      continue;
    }
    auto cells = split_row(line);
    if (!in_table) {
      in_table = !cells.empty() && cells[0] == first_header;
      continue;
    }
    if (!cells.empty() && cells[0].find("---") != std::string::npos) continue;
    rows.push_back(cells);
  }
  return rows;
}

std::string markdown_section(const std::string& md, const std::string& heading) {
  std::istringstream in(md);
  std::string line, out;
  int level = 0;
  while (std::getline(in, line)) {
    int h = 0;
    while (h < static_cast<int>(line.size()) && line[h] == '#') ++h;
    if (level == 0) {
      if (h > 0 && line.find(heading) != std::string::npos) level = h;
      continue;
    }
    if (h > 0 && h <= level) break;
    out += line + "\n";
  }
  return out;
}

std::optional<std::string> regex_find(const std::string& text, const std::string& pattern, int group) {
  std::smatch m;
  if (!std::regex_search(text, m, std::regex(pattern))) return std::nullopt;
  return m[group].str();
}

long long parse_grouped_int(const std::string& s) {
  std::string digits;
  for (char c : s)
    if (c >= '0' && c <= '9') digits.push_back(c);
  return std::stoll(digits);
}

std::vector<int64_t> parse_dims(const std::string& s) {
  std::vector<int64_t> dims;
  std::regex num("\\d+");
  for (auto it = std::sregex_iterator(s.begin(), s.end(), num); it != std::sregex_iterator(); ++it)
    dims.push_back(std::stoll(it->str()));
  return dims;
}

}  // namespace dmeval::test
