#include "reports/published.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

#ifndef DMEVAL_PUBLISHED_DIR
#define DMEVAL_PUBLISHED_DIR ""
#endif

namespace dmeval::reports {

namespace {
std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string canonical_method(const std::string& m) {
  std::string l = lower(m);
  if (l == "fp" || l == "full prec." || l == "full precision" || l == "fp32") return "fp";
  l.erase(std::remove_if(l.begin(), l.end(), [](char c) { return c == '-' || c == '_' || c == ' '; }),
          l.end());
  return l;
}
}  // namespace

std::vector<PublishedValue> load_published(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot read the published-results file", path);
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(ss.str());
  } catch (const std::exception& e) {
    fail("{}: not valid JSON: {}", path, e.what());
  }
  if (!j.is_object() || !j.contains("rows") || !j["rows"].is_array())
    fail("{}: expected an object with a \"rows\" array", path);
  std::vector<PublishedValue> out;
  size_t i = 0;
  for (const auto& r : j["rows"]) {
    try {
      PublishedValue p;
      auto str = [&](const char* k) {
        return r.contains(k) && r[k].is_string() ? r[k].get<std::string>() : "";
      };
      auto num = [&](const char* k) {
        return r.contains(k) && r[k].is_number_integer() ? std::optional<int64_t>(r[k].get<int64_t>())
                                                         : std::nullopt;
      };
      p.paper = str("paper"), p.table = str("table"), p.dataset = str("dataset"), p.model = str("model");
      p.sampler = str("sampler"), p.method = str("method"), p.metric = str("metric"),
      p.fid_tool = str("fid_tool");
      p.note = str("note");
      p.steps = num("steps"), p.w_bits = num("w_bits"), p.a_bits = num("a_bits"),
      p.n_samples = num("n_samples");
      if (!r.contains("value") || !r["value"].is_number()) fail("no numeric \"value\"");
      if (p.method.empty() || p.metric.empty()) fail("\"method\" and \"metric\" are required");
      p.value = r["value"].get<double>();
      out.push_back(p);
    } catch (const std::exception& e) {
      fail("{}: row {}: {}", path, i, e.what());
    }
    ++i;
  }
  return out;
}

std::string default_published_path() {
  if (const char* env = std::getenv("DMEVAL_PUBLISHED"); env && *env) return env;
  const std::string built = std::string(DMEVAL_PUBLISHED_DIR) + "/paper-results.json";
  std::error_code ec;
  if (std::filesystem::exists(built, ec)) return built;
  return "/usr/local/share/dmeval/paper-results.json";
}

std::optional<PublishedName> published_name(const std::string& m) {
  static const std::pair<const char*, PublishedName> kNames[] = {
      {"fid", {"FID", 1}},         {"sfid", {"sFID", 1}},
      {"is", {"IS", 1}},           {"precision", {"Precision", 100}},
      {"recall", {"Recall", 100}}, {"psnr", {"PSNR", 1}},
      {"ssim", {"SSIM", 1}},       {"lpips", {"LPIPS", 1}},
      {"size_mb", {"Size_MB", 1}}, {"params_m", {"Params_M", 1}},
      {"flops_g", {"Ops_G", 1}}};
  for (const auto& [k, v] : kNames)
    if (m == k) return v;
  return std::nullopt;
}

const PublishedValue* find_published(const std::vector<PublishedValue>& table, const std::string& method,
                                     std::optional<int64_t> w_bits, std::optional<int64_t> a_bits,
                                     std::optional<int64_t> steps, const std::string& dataset,
                                     const std::string& metric) {
  const std::string cm = canonical_method(method), ld = lower(dataset);
  for (const auto& p : table) {
    if (p.metric != metric || canonical_method(p.method) != cm) continue;
    if (w_bits && p.w_bits && *w_bits != *p.w_bits) continue;
    if (a_bits && p.a_bits && *a_bits != *p.a_bits) continue;
    if (steps && p.steps && *steps != *p.steps) continue;
    if (!ld.empty() && lower(p.dataset) != ld) continue;
    return &p;
  }
  return nullptr;
}

}  // namespace dmeval::reports
