// What the commands that use quantized models share (quantize, sample; later run): --method, --bits,
// --calib key=value settings, --calibration FILE; finding a matching saved calibration in the store
// (or calibrating and saving one), importing q-diffusion's calibrated ckpt.pth.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "generators/quant/calibration_file.h"
#include "generators/quant/quant_method.h"
#include "harness/cli/model_cli.h"

namespace dmeval::cli {

struct QuantOptions {
  std::string method = "fp";
  std::string bits = "32/32";
  std::vector<std::string> calib;  // key=value overrides of the method's settings
  std::string calibration;         // a calibration file to use
  std::string import_qdiff;        // q-diffusion ckpt.pth to import (method qdiffusion)
  bool recalibrate = false;        // ignore a matching file in the store
  bool no_store = false;           // do not save a new calibration in the store
};

// --method, --bits, --calib, --calibration, --import-qdiff, --recalibrate, --no-store.
const OptionTable<QuantOptions>& quant_option_table();
void add_quant_options(CLI::App* cmd, QuantOptions& o);

struct QuantizedSetup {
  std::unique_ptr<QuantizedModel> model;
  CalibrationRecord record;
  std::string source;  // "calibrated now", "store: PATH", "file: PATH", "imported: PATH"
  std::string saved;   // where a new calibration was written ("" if not)
  double seconds = 0;  // calibration time (0 when loaded)
  nlohmann::ordered_json describe() const;
};

// Quantizes (or restores) `m.unet` in place as the options say. `log` gets progress lines.
// `sampler`: the sampler the model will be used with; calibration trajectories default to it (the
// methods calibrate on their evaluation sampler, and timestep-specific state such as PTQD's correction
// exists only for its timesteps); --calib overrides win.
// `conditioning` (conditional models): each calibration image's conditioning and guidance, described
// by `conditioning_text` in the calibration record (so calibrations for other conditioning differ).
QuantizedSetup prepare_quantized(LoadedModel& m, const QuantOptions& o, const UNetRunOptions& run,
                                 const std::function<void(const std::string&)>& log,
                                 const SamplerSpec* sampler = nullptr,
                                 std::function<Conditioning(int64_t first, int64_t n)> conditioning = {},
                                 const std::string& conditioning_text = "");

}  // namespace dmeval::cli
