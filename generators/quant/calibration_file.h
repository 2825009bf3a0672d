// Calibrated quantization states on disk: a safetensors file with the method's tensors and, in its
// metadata, what produced them (method, bits, model identity = architecture and weights SHA-256,
// settings, calibration report, dmeval version). Calibration is expensive, so dmeval keys a store of
// these files by that provenance and reuses a matching one instead of calibrating again.
#pragma once

#include <torch/types.h>
#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

#include "generators/quant/quant_method.h"

namespace dmeval {

struct CalibrationRecord {
  std::string method;
  BitWidths bits;
  nlohmann::ordered_json model;     // identity: architecture, weights id
  nlohmann::ordered_json settings;  // the method's settings as used
  nlohmann::ordered_json report;    // facts of the calibration run (losses, times)
  std::string dmeval_version, created;
  // SHA-256 (hex) of the canonical {method, bits, model, settings}: equal keys = interchangeable files.
  std::string key() const;
};

void save_calibration(const std::string& path, const CalibrationRecord& record,
                      const std::vector<std::pair<std::string, torch::Tensor>>& tensors);

struct LoadedCalibration {
  CalibrationRecord record;
  std::map<std::string, torch::Tensor> tensors;
};
// Errors name the file: not a dmeval calibration, truncated, unreadable metadata.
LoadedCalibration load_calibration(const std::string& path);

// $DMEVAL_CALIBRATION_DIR, else ~/.cache/dmeval/calibrations.
std::string calibration_store_dir();
// <dir>/<method>-<W4A8>-<first 16 hex digits of the key>.safetensors
std::string calibration_store_path(const CalibrationRecord& record);

}  // namespace dmeval
