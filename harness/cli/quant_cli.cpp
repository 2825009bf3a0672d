#include "harness/cli/quant_cli.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>
#include <filesystem>

#include "core/build_info.h"
#include "core/checkpoint.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/torch_bridge.h"
#include "db/results.h"
#include "generators/quant/method_support.h"
#include "harness/cli/training_data.h"

namespace dmeval::cli {

const OptionTable<QuantOptions>& quant_option_table() {
  static const OptionTable<QuantOptions> table = [] {
    std::string names;
    for (const auto& n : quant_method_names()) names += (names.empty() ? "" : ", ") + n;
    // A profile states per-method calibration budgets ("calib"), not a method or a calibration.
    OptionTable<QuantOptions> t;
    t.add("--method", &QuantOptions::method,
          "quantization method: " + names +
              " (tinydm-attn is dmeval's own construction, not a published method; "
              "--list-settings describes each)",
          kSaved);
    t.add("--bits", &QuantOptions::bits, "weight/activation bits W/A (e.g. 4/8; 32 = float)", kSaved);
    t.add("--calib", &QuantOptions::calib,
          "override a calibration setting of the method, key=value (repeatable; `dmeval quantize --method M "
          "--list-settings` shows them)",
          kSaved, {}, false);
    t.add("--calibration", &QuantOptions::calibration,
          "use this calibration file (written by dmeval quantize)", kSaved | kPath, {}, false);
    t.add("--import-qdiff", &QuantOptions::import_qdiff,
          "import q-diffusion's calibrated ckpt.pth (method qdiffusion; --bits and --calib must match how "
          "it was calibrated)",
          kSaved | kPath, {}, false);
    t.add("--recalibrate", &QuantOptions::recalibrate,
          "calibrate again even if the store holds a matching calibration", kSaved);
    t.add("--no-store", &QuantOptions::no_store, "do not save a new calibration in the store", kSaved);
    return t;
  }();
  return table;
}

void add_quant_options(CLI::App* cmd, QuantOptions& o) {
  quant_option_table().bind(cmd, o);
}

nlohmann::ordered_json QuantizedSetup::describe() const {
  nlohmann::ordered_json j;
  j["method"] = record.method;
  j["bits"] = record.bits.str();
  j["calibration_key"] = record.key();
  j["calibration_source"] = source;
  if (!saved.empty()) j["calibration_saved"] = saved;
  j["settings"] = record.settings;
  // What departs from the method's own defaults (the reference code's settings): reduced budgets,
  // trajectories that follow the evaluation sampler, changed behaviour. Tables print it per method.
  nlohmann::ordered_json changed = nlohmann::ordered_json::object();
  const nlohmann::ordered_json defaults = quant_method(record.method).default_settings();
  for (const auto& [k, v] : record.settings.items())
    if (!defaults.contains(k) || defaults.at(k) != v) changed[k] = v;
  j["changed_settings"] = changed;
  // A method on a family its reference code has no path for (TinyDM on LDM UNets): labelled.
  if (record.report.contains("construction")) j["construction"] = record.report["construction"];
  // Trained methods: the loss per logged step of the whole training (reports plot it).
  if (record.report.contains("training_curve")) j["training_curve"] = record.report["training_curve"];
  if (record.report.contains("training")) j["training"] = record.report["training"];
  if (seconds > 0) j["calibration_seconds"] = seconds;
  return j;
}

namespace {
std::string differences(const CalibrationRecord& want, const CalibrationRecord& have) {
  std::vector<std::string> d;
  if (want.method != have.method) d.push_back(fmt::format("method {} vs {}", want.method, have.method));
  if (want.bits.str() != have.bits.str())
    d.push_back(fmt::format("bits {} vs {}", want.bits.str(), have.bits.str()));
  if (want.model != have.model)
    d.push_back(fmt::format("model {} vs {}", want.model.dump(), have.model.dump()));
  if (want.settings != have.settings) d.push_back("settings differ");
  return fmt::format("{}", fmt::join(d, "; "));
}
}  // namespace

QuantizedSetup prepare_quantized(LoadedModel& m, const QuantOptions& o_in, const UNetRunOptions& run,
                                 const std::function<void(const std::string&)>& log,
                                 const SamplerSpec* sampler,
                                 std::function<Conditioning(int64_t first, int64_t n)> conditioning,
                                 const std::string& conditioning_text) {
  const QuantMethod& method = quant_method(o_in.method);
  QuantOptions o = o_in;
  if (sampler && o_in.calibration.empty()) {  // a given file keeps its own settings
    const auto defaults = method.default_settings();
    std::vector<std::string> first;
    if (defaults.contains("traj_steps")) {
      first.push_back(fmt::format("traj_steps={}", sampler->steps));
      first.push_back(fmt::format("traj_skip={}", sampler->skip_type));
      first.push_back(fmt::format("traj_eta={}", sampler->eta));
    }
    o.calib.insert(o.calib.begin(), first.begin(), first.end());
  }
  QuantizedSetup out;
  out.record.method = method.name();
  out.record.bits = parse_bits(o.bits);
  check_method_bits(method, out.record.bits);
  out.record.model = m.identity();
  if (!conditioning_text.empty()) out.record.model["calibration_conditioning"] = conditioning_text;
  out.record.dmeval_version = fmt::format("{} {}", build_version(), build_git_revision());
  out.record.created = db::utc_now();

  QuantContext ctx;
  ctx.model = m.model;
  ctx.schedule = m.model->schedule();
  ctx.model_id = m.weights_id();
  ctx.bits = out.record.bits;
  ctx.run = run;
  ctx.log = log;
  ctx.conditioning = std::move(conditioning);
  m.model->to(run.device);
  std::shared_ptr<DiffusionModel> model = m.model;
  const torch::Device device = run.device;
  ctx.training_data = [model, device](const std::string& spec) {
    // The images the model produces are its training images' size (latent models: the first stage's).
    int64_t size = 0;
    {
      torch::NoGradGuard no_grad;
      std::vector<int64_t> shape = model->sample_shape();
      shape.insert(shape.begin(), 1);
      size = model->decode(torch::zeros(shape, torch::TensorOptions().device(device))).size(-1);
    }
    TrainingData d = load_training_data(spec, size);
    return std::make_pair(d.images, d.labels);
  };

  if (!o.import_qdiff.empty()) {
    DMEVAL_CHECK(method.name() == "qdiffusion", "--import-qdiff needs --method qdiffusion");
    DMEVAL_CHECK(o.calibration.empty(), "give either --import-qdiff or --calibration");
    ctx.settings = merge_settings(method, o.calib);
    out.record.settings = ctx.settings;
    // Structure from the method, values from the file (UNet weights included: they must be the model's).
    auto restored_from = [&]() {
      Checkpoint ck = Checkpoint::open(o.import_qdiff);
      std::map<std::string, torch::Tensor> dict;
      for (const auto& e : ck.tensors()) dict[e.path] = to_torch(ck.read(e.value));
      return dict;
    }();
    std::map<std::string, torch::Tensor> quantizers;
    for (auto& [k, v] : restored_from)
      if (k.rfind("model.", 0) == 0 && k.find("_quantizer") != std::string::npos)
        quantizers[k.substr(6)] = v;
      else if (k.rfind("model.", 0) == 0) {
        auto params = m.model->network().named_parameters(true);
        const std::string pk = k.substr(6);
        DMEVAL_CHECK(params.contains(pk), "{}: '{}' is not a parameter of {}", o.import_qdiff, k,
                     m.model->describe_line());
        DMEVAL_CHECK(params[pk].sizes() == v.sizes(), "{}: '{}' has another shape than the model's",
                     o.import_qdiff, k);
        DMEVAL_CHECK(torch::equal(params[pk].to(torch::kCPU), v.to(torch::kFloat32)),
                     "{}: the UNet weights differ from --checkpoint's ({}): calibrated for another model?",
                     o.import_qdiff, k);
      }
    out.model = method.restore(ctx, quantizers);
    out.record.report = {{"imported_from", o.import_qdiff}, {"sha256", sha256_file(o.import_qdiff)}};
    out.source = "imported: " + o.import_qdiff;
    return out;
  }

  if (!o.calibration.empty()) {
    LoadedCalibration c = load_calibration(o.calibration);
    CalibrationRecord want = out.record;
    want.settings = o.calib.empty() ? c.record.settings : merge_settings(method, o.calib);
    DMEVAL_CHECK(want.key() == c.record.key(), "{}: the calibration does not match this run: {}",
                 o.calibration, differences(want, c.record));
    ctx.settings = c.record.settings;
    out.record = c.record;
    out.model = method.restore(ctx, c.tensors);
    out.source = "file: " + o.calibration;
    return out;
  }

  ctx.settings = merge_settings(method, o.calib);
  out.record.settings = ctx.settings;
  const bool stores = method.name() != "fp";
  const std::string store = calibration_store_path(out.record);
  if (stores && !o.recalibrate && std::filesystem::exists(store)) {
    LoadedCalibration c = load_calibration(store);
    if (c.record.key() == out.record.key()) {
      out.record = c.record;
      out.model = method.restore(ctx, c.tensors);
      out.source = "store: " + store;
      log(fmt::format("using the saved calibration {}", store));
      return out;
    }
  }
  const auto t0 = std::chrono::steady_clock::now();
  out.model = method.calibrate(ctx);
  if (method.has_fit()) {  // training methods: resumable state next to the store entry
    const std::string state_dir = store + ".fit";
    log(fmt::format("fitting {} (state in {})", method.name(), state_dir));
    method.fit(ctx, *out.model, state_dir);
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  out.record.report = out.model->report();
  out.record.report["seconds"] = out.seconds;
  out.source = "calibrated now";
  if (stores && !o.no_store) {
    save_calibration(store, out.record, out.model->state());
    out.saved = store;
    log(fmt::format("calibration saved: {}", store));
  }
  return out;
}

}  // namespace dmeval::cli
