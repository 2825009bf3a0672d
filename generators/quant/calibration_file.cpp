#include "generators/quant/calibration_file.h"

#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>

#include "core/checkpoint.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/safetensors.h"
#include "core/torch_bridge.h"

namespace dmeval {

namespace {
constexpr const char* kFormat = "dmeval-calibration/1";

nlohmann::ordered_json identity(const CalibrationRecord& r) {
  nlohmann::ordered_json j;
  j["method"] = r.method;
  j["bits"] = r.bits.str();
  j["model"] = r.model;
  j["settings"] = r.settings;
  return j;
}
}  // namespace

std::string CalibrationRecord::key() const {
  const std::string text = identity(*this).dump();
  return sha256_hex(text.data(), text.size());
}

void save_calibration(const std::string& path, const CalibrationRecord& r,
                      const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  nlohmann::ordered_json meta = identity(r);
  meta["format"] = kFormat;
  meta["key"] = r.key();
  meta["report"] = r.report;
  meta["dmeval"] = r.dmeval_version;
  meta["created"] = r.created;
  std::vector<std::pair<std::string, TensorData>> data;
  for (const auto& [k, v] : tensors)
    data.emplace_back(k, from_torch(v.detach().to(torch::kCPU).contiguous()));
  std::error_code ec;
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  write_safetensors(path, data, {{"dmeval_calibration", meta.dump()}});
}

LoadedCalibration load_calibration(const std::string& path) {
  DMEVAL_CHECK(std::filesystem::exists(path), "{}: calibration file not found", path);
  Checkpoint ck = Checkpoint::open(path);
  DMEVAL_CHECK(ck.format() == CheckpointFormat::kSafetensors, "{}: not a dmeval calibration (a {} file)",
               path, checkpoint_format_name(ck.format()));
  std::string meta_text;
  if (ck.contains("__metadata__/dmeval_calibration")) {
    const Value& v = ck.doc().at(ck.find("__metadata__/dmeval_calibration"));
    if (v.kind == ValueKind::kString) meta_text = v.s;
  }
  DMEVAL_CHECK(!meta_text.empty(), "{}: not a dmeval calibration (no dmeval_calibration metadata)", path);
  nlohmann::ordered_json meta;
  try {
    meta = nlohmann::ordered_json::parse(meta_text);
  } catch (const std::exception& e) {
    fail("{}: unreadable calibration metadata: {}", path, e.what());
  }
  DMEVAL_CHECK(meta.value("format", "") == kFormat, "{}: calibration format '{}' is not {}", path,
               meta.value("format", "?"), kFormat);
  LoadedCalibration out;
  try {
    out.record.method = meta.at("method");
    out.record.bits = parse_bits(meta.at("bits").get<std::string>());
    out.record.model = meta.at("model");
    out.record.settings = meta.at("settings");
    out.record.report = meta.value("report", nlohmann::ordered_json::object());
    out.record.dmeval_version = meta.value("dmeval", "");
    out.record.created = meta.value("created", "");
  } catch (const nlohmann::json::exception& e) {
    fail("{}: incomplete calibration metadata: {}", path, e.what());
  }
  DMEVAL_CHECK(meta.value("key", "") == out.record.key(),
               "{}: the metadata does not match its key (edited file?)", path);
  for (const auto& e : ck.tensors()) {
    if (e.path.rfind("__metadata__", 0) == 0) continue;
    out.tensors[e.path] = to_torch(ck.read(e.value));
  }
  return out;
}

std::string calibration_store_dir() {
  if (const char* d = std::getenv("DMEVAL_CALIBRATION_DIR"); d && *d) return d;
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.cache/dmeval/calibrations";
}

std::string calibration_store_path(const CalibrationRecord& r) {
  return fmt::format("{}/{}-{}-{}.safetensors", calibration_store_dir(), r.method, r.bits.label(),
                     r.key().substr(0, 16));
}

}  // namespace dmeval
