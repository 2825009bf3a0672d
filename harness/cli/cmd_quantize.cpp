// `dmeval quantize --method M --bits W/A --model ... --checkpoint F [-o FILE]`: calibrates a quantization
// method on the model (or restores/imports a calibration), saves it with its provenance, and reports
// the quantized model's size and its ε error against the float model on held-out (x_t, t) pairs.
#include <fmt/format.h>
#include <torch/torch.h>

#include <cstdio>

#include "core/atomic_file.h"
#include "core/error.h"
#include "generators/model_cost.h"
#include "generators/quant/calibration_data.h"
#include "generators/quant/calibration_file.h"
#include "generators/quant/method_support.h"
#include "harness/cli/commands.h"
#include "harness/cli/generation_cli.h"
#include "harness/cli/model_cli.h"

namespace dmeval::cli {

void add_quantize_command(CLI::App& app) {
  struct Opts : GenerationOptions {
    std::string out, export_qdiff;
    int64_t eval_images = 4, eval_steps = 0, eval_seed = 777;
    bool json = false, list_settings = false, quiet = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("quantize", "calibrate a quantization method and save the calibration");
  // The generation group without what only sampling uses; a sampler given here is the one the
  // calibration trajectories follow (as `run` and `sample` calibrate), else the method's own.
  static const OptionTable<GenerationOptions> table = [] {
    OptionTable<GenerationOptions> t = generation_option_table();
    t.without("samples").without("batch").without("chunk").without("seed");
    t.help("sampler", "calibrate for this sampler (default: the method's own calibration trajectories)");
    return t;
  }();
  table.bind(cmd, *o);
  cmd->add_option("-o,--out", o->out, "also write the calibration here (default: only the store)");
  cmd->add_option(
      "--export-qdiff", o->export_qdiff,
      "also write q-diffusion's calibrated-checkpoint layout (torch zip, `model.` keys; method qdiffusion)");
  cmd->add_option("--eval-images", o->eval_images,
                  "held-out FP trajectories for the ε error figure (0 = skip)")
      ->capture_default_str();
  cmd->add_option("--eval-steps", o->eval_steps,
                  "steps of those trajectories (default: the method's calibration sampler, whose timesteps a "
                  "timestep-specific method such as PTQD knows)");
  cmd->add_option("--eval-seed", o->eval_seed, "their noise seed")->capture_default_str();
  cmd->add_flag("--list-settings", o->list_settings,
                "print the method's calibration settings and defaults, then stop");
  cmd->add_flag("--json", o->json, "print the summary as JSON");
  cmd->add_flag("--quiet", o->quiet, "no progress lines");
  cmd->callback([o, cmd] {
    const QuantMethod& method = quant_method(o->quant.method);
    if (o->list_settings) {
      std::printf("%s: %s\n%s\n", method.name().c_str(), method.description().c_str(),
                  merge_settings(method, o->quant.calib).dump(1).c_str());
      return;
    }
    GenerationBuild gb;
    gb.always_quantize = true;
    gb.keep_float_copy = true;
    gb.calibrate_on_sampler = false;
    for (const auto& e : sampler_option_table().entries())
      gb.calibrate_on_sampler |= table.given(*cmd, e.key);
    GenerationPipeline g = build_generation(
        *o,
        [o](const std::string& line) {
          if (!o->quiet) std::fprintf(stderr, "%s\n", line.c_str());
        },
        gb);
    const LoadedModel& m = g.model;
    const UNetRunOptions& run = g.run;
    std::shared_ptr<DiffusionModel> fp = g.float_model;
    QuantizedSetup& q = *g.quant;
    if (!o->out.empty()) save_calibration(o->out, q.record, q.model->state());
    auto* unet_model = dynamic_cast<UNetQuantizedModel*>(q.model.get());
    if (!o->export_qdiff.empty()) {
      DMEVAL_CHECK(q.record.method == "qdiffusion" && unet_model, "--export-qdiff needs --method qdiffusion");
      c10::Dict<std::string, at::Tensor> dict;
      for (auto& [k, v] : unet_model->qunet().state_dict()) dict.insert(k, v.detach().cpu().contiguous());
      const std::vector<char> bytes = torch::pickle_save(c10::IValue(dict));
      AtomicFile f(o->export_qdiff);
      f.write(bytes.data(), bytes.size());
      f.commit();
    }

    nlohmann::ordered_json j = q.describe();
    j["model"] = m.describe();
    if (!o->out.empty()) j["written"] = o->out;
    if (const auto rep = q.model->report(); !rep.empty()) j["report"] = rep;  // the method's own facts
    // Size: Conv/Linear weights at the method's bits, everything else float32 (the default convention).
    const double bytes =
        model_size_bytes(fp->network(), [&](const LayerInfo& l) { return q.model->weight_bits(l); });
    const ParameterCounts counts = count_parameters(fp->network());
    j["size_mb"] = bytes / 1e6;
    j["size_convention"] =
        "Conv2d/Linear weights at the method's bit widths, biases and normalisation in float32, no scale "
        "overhead; "
        "MB = 1e6 bytes";
    j["fp32_mb"] = model_size_bytes(counts, 32, SizeConvention::kAllParamsAtBits) / 1e6;
    // plus the quantizer parameters inference needs (Δ/z, TinyDM's weight and activation ranges)
    if (const double scales = q.model->scale_bytes(); scales >= 0)
      j["size_mb_with_scales"] = (bytes + scales) / 1e6;
    if (o->eval_images > 0) {
      SamplerSpec spec;
      const auto& st = q.record.settings;
      spec.skip_type = st.contains("traj_skip") ? st["traj_skip"].get<std::string>() : "quad";
      spec.steps = o->eval_steps > 0           ? o->eval_steps
                   : st.contains("traj_steps") ? st["traj_steps"].get<int64_t>()
                                               : 10;
      auto noise = make_noise_source("per-image", static_cast<uint64_t>(o->eval_seed));
      EpsModel fp_eps = fp->eps(run), q_eps = q.model->eps();
      Trajectories tr =
          record_trajectories(*fp, fp_eps, spec, *noise, o->eval_images, o->eval_images, run.device);
      torch::NoGradGuard no_grad;
      double sum = 0, sq = 0, ref = 0;
      int64_t count = 0;
      for (int64_t k = 0; k < tr.steps(); ++k) {
        torch::Tensor x = tr.xs[k].to(run.device), t = tr.ts[k].to(run.device);
        torch::Tensor e = fp_eps(x, t, k), d = q_eps(x, t, k) - e;
        sum += d.abs().sum().item<double>();
        sq += d.pow(2).sum().item<double>();
        ref += e.pow(2).sum().item<double>();
        count += d.numel();
      }
      j["eps_error"] = {{"mean_abs", sum / static_cast<double>(count)},
                        {"rmse", std::sqrt(sq / static_cast<double>(count))},
                        {"relative_rmse", std::sqrt(sq / ref)},
                        {"pairs", tr.steps() * o->eval_images},
                        {"trajectories", fmt::format("{} images, {} DDIM {} steps, seed {}", o->eval_images,
                                                     spec.skip_type, spec.steps, o->eval_seed)}};
    }
    if (o->json) {
      std::printf("%s\n", j.dump(1).c_str());
      return;
    }
    std::printf("%s %s (%s): %s\n", method.name().c_str(), q.record.bits.label().c_str(),
                q.record.bits.str().c_str(), q.source.c_str());
    if (!q.saved.empty()) std::printf("saved: %s\n", q.saved.c_str());
    if (!o->out.empty()) std::printf("written: %s\n", o->out.c_str());
    if (q.seconds > 0) std::printf("calibration: %.1f s\n", q.seconds);
    std::printf("size: %.3f MB (float32: %.3f MB; %s)\n", j["size_mb"].get<double>(),
                j["fp32_mb"].get<double>(), j["size_convention"].get<std::string>().c_str());
    if (j.contains("size_mb_with_scales"))
      std::printf("size with every quantizer's delta and zero point in float32: %.3f MB\n",
                  j["size_mb_with_scales"].get<double>());
    if (j.contains("eps_error"))
      std::printf(
          "eps error vs FP on %lld held-out (x_t, t) pairs: mean |d| %.4g, RMSE %.4g (%.2f %% of the FP eps "
          "RMS)\n",
          static_cast<long long>(j["eps_error"]["pairs"].get<int64_t>()),
          j["eps_error"]["mean_abs"].get<double>(), j["eps_error"]["rmse"].get<double>(),
          100 * j["eps_error"]["relative_rmse"].get<double>());
  });
}

}  // namespace dmeval::cli
