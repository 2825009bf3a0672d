// `dmeval bench latency`: UNet step latency and end-to-end per-image sampling latency of a model at
// several batch sizes, on the CPU or a CUDA device, with warm-up, median and p10/p90 of repeats;
// parameter count, fp32 size and MACs per step alongside. Optionally recorded in the results db.
#include <fmt/format.h>
#include <torch/torch.h>

#include <cstdio>
#include <sstream>

#include "core/error.h"
#include "core/runtime.h"
#include "generators/diffusion_producer.h"
#include "generators/model_cost.h"
#include "generators/timestep_sequence.h"
#include "generators/unet_runner.h"
#include "harness/cli/commands.h"
#include "harness/cli/db_cli.h"
#include "harness/cli/generation_cli.h"
#include "harness/cli/model_cli.h"
#include "harness/sampling/timing.h"

namespace dmeval::cli {

namespace {
std::vector<int64_t> parse_list(const std::string& s, const char* what) {
  std::vector<int64_t> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) {
    try {
      size_t used = 0;
      const int64_t v = std::stoll(item, &used);
      if (used == item.size() && v >= 1) {
        out.push_back(v);
        continue;
      }
    } catch (const std::exception&) {
    }
    fail("{} '{}' must be a comma-separated list of positive integers", what, s);
  }
  DMEVAL_CHECK(!out.empty(), "{} is empty", what);
  return out;
}
}  // namespace

void add_bench_command(CLI::App& app) {
  struct Opts : GenerationOptions {
    DbOptions db;
    std::string batches = "1,64";
    int64_t warmup = 2, repeats = 10, e2e_repeats = 3;
    bool channels_last = false, json = false, no_e2e = false;
  };
  auto o = std::make_shared<Opts>();
  o->sampler.steps = 100;
  // The generation group; --batch is a list of batch sizes here (each measured), and no images are kept.
  static const OptionTable<GenerationOptions> table = [] {
    OptionTable<GenerationOptions> t = generation_option_table();
    t.without("samples").without("batch").without("chunk").without("micro_batch");
    t.help("steps", "sampler steps for the end-to-end figure");
    return t;
  }();
  auto* bench = app.add_subcommand("bench", "measure speed");
  bench->require_subcommand(1);
  auto* cmd = bench->add_subcommand("latency", "UNet step and per-image sampling latency at batch sizes");
  table.bind(cmd, *o);
  cmd->add_option("--batch", o->batches, "batch sizes, comma-separated")->capture_default_str();
  cmd->add_option("--warmup", o->warmup, "untimed runs first")->capture_default_str();
  cmd->add_option("--repeats", o->repeats, "timed UNet steps per batch size")->capture_default_str();
  cmd->add_option("--e2e-repeats", o->e2e_repeats, "timed whole sampling runs per batch size")
      ->capture_default_str();
  cmd->add_flag("--no-e2e", o->no_e2e, "UNet step only");
  cmd->add_flag("--channels-last", o->channels_last, "channels-last convolutions");
  cmd->add_flag("--json", o->json, "print JSON");
  add_db_options(cmd, o->db, /*step_and_bit_labels=*/false);
  cmd->callback([o] {
    auto recorder = RunRecorder::start(o->db);
    const std::vector<int64_t> batches = parse_list(o->batches, "--batch");
    // A quantized model (fake quantization) when --method is given; calibrations come from the store.
    GenerationBuild gb;
    gb.keep_float_copy = true;  // parameters and MACs of the float network
    GenerationPipeline g = build_generation(
        *o,
        [o](const std::string& l) {
          if (!o->json) std::fprintf(stderr, "%s\n", l.c_str());
        },
        gb);
    LoadedModel& m = g.model;
    const torch::Device device = g.device;
    const auto& seq = g.timesteps;
    const int64_t ch = g.sample_shape[0], h = g.sample_shape[1], w = g.sample_shape[2];
    const ParameterCounts counts = count_parameters(g.float_model->network());
    const MacCount macs = count_macs([&] {
      UNetRunOptions one;
      one.device = device;
      one.micro_batch = 1;
      g.float_model->eps(one, g.conditioning_for(0, 1))(
          torch::zeros({1, ch, h, w}).to(device),
          torch::full({1}, 500.0f, torch::dtype(torch::kFloat32).device(device)), 0);
    });
    const RuntimeInfo rt = runtime_info();

    nlohmann::ordered_json out;
    out["model"] = m.describe();
    out["params"] = counts.total;
    out["fp32_mb"] = model_size_bytes(counts, 32, SizeConvention::kAllParamsAtBits) / 1e6;
    out["gmacs_per_step"] = static_cast<double>(macs.total()) / 1e9;
    out["device"] = device.is_cuda() ? rt.cuda_device_name : "cpu";
    out["threads"] = rt.intra_op_threads;
    out["libtorch"] = rt.torch_version;
    out["channels_last"] = o->channels_last;
    out["sampler"] = g.describe_sampler(o->sampler);
    out["timing"] = device.is_cuda() ? "wall clock between device synchronisations" : "wall clock";
    out["results"] = nlohmann::ordered_json::array();
    if (!o->json)
      std::printf("%s\n%lld parameters (%.1f MB fp32), %.3f GMACs per UNet step; %s, %d threads\n",
                  m.model->describe_line().c_str(), static_cast<long long>(counts.total),
                  out["fp32_mb"].get<double>(), out["gmacs_per_step"].get<double>(),
                  out["device"].get<std::string>().c_str(), rt.intra_op_threads);
    const std::optional<QuantizedSetup>& quant = g.quant;
    if (quant) out["quantization"] = quant->describe();
    for (int64_t b : batches) {
      UNetRunOptions ro;
      ro.device = device;
      ro.micro_batch = b;  // the network at exactly this batch
      ro.channels_last = o->channels_last;
      EpsModel eps = m.model->eps(ro, g.conditioning_for(0, b));
      torch::Tensor x = torch::randn({b, ch, h, w}).to(device);
      torch::Tensor t = torch::full({b}, 500.0f, torch::dtype(torch::kFloat32).device(device));
      TimingStats step = time_repeated([&] { eps(x, t, 0); }, o->warmup, o->repeats, device);
      nlohmann::ordered_json row;
      row["batch"] = b;
      row["unet_step_ms"] = {
          {"median", step.median_ms}, {"p10", step.p10_ms}, {"p90", step.p90_ms}, {"repeats", step.repeats}};
      row["unet_step_per_image_ms"] = step.median_ms / static_cast<double>(b);
      if (recorder)
        recorder->db().add_latency(recorder->run(), {"unet_step", b, step.repeats, std::string(out["device"]),
                                                     step.median_ms, step.p10_ms, step.p90_ms});
      std::string e2e_text;
      if (!o->no_e2e) {
        DiffusionImageProducer producer(m.model, eps, o->sampler, make_noise_source("per-image", o->seed),
                                        device, false,
                                        quant ? quant->model->quant_noise_std() : QuantNoiseStd{});
        // `eps` carries the conditioning of images 0 .. b-1, the batch produced here.
        TimingStats e2e =
            time_repeated([&] { producer.produce(0, b); }, o->warmup > 0 ? 1 : 0, o->e2e_repeats, device);
        const double per_image = e2e.median_ms / static_cast<double>(b);
        row["sample_batch_ms"] = {{"median", e2e.median_ms},
                                  {"p10", e2e.p10_ms},
                                  {"p90", e2e.p90_ms},
                                  {"repeats", e2e.repeats},
                                  {"steps", seq.size()}};
        row["image_ms"] = per_image;
        row["images_per_second"] = 1000.0 / per_image;
        e2e_text =
            fmt::format("; {} steps: {:.1f} ms per image ({:.3f} images/s; batch p10-p90 {:.0f}-{:.0f} ms)",
                        seq.size(), per_image, 1000.0 / per_image, e2e.p10_ms, e2e.p90_ms);
        if (recorder)
          recorder->db().add_latency(
              recorder->run(), {"image", b, e2e.repeats, std::string(out["device"]), per_image,
                                e2e.p10_ms / static_cast<double>(b), e2e.p90_ms / static_cast<double>(b)});
      }
      if (!o->json)
        std::printf("batch %lld: UNet step %.2f ms (p10 %.2f, p90 %.2f; %.2f ms per image)%s\n",
                    static_cast<long long>(b), step.median_ms, step.p10_ms, step.p90_ms,
                    step.median_ms / static_cast<double>(b), e2e_text.c_str());
      out["results"].push_back(row);
    }
    if (recorder) {
      db::RunConfig rc;
      rc.model = m.model->name();
      if (!m.model->weights_sha256().empty()) rc.checkpoint_sha256 = m.model->weights_sha256();
      rc.sampler = g.describe_sampler(o->sampler);
      rc.steps = static_cast<int64_t>(seq.size());
      rc.method = quant ? quant->record.method : std::string("fp");
      if (quant) {
        rc.w_bits = quant->record.bits.weight;
        rc.a_bits = quant->record.bits.act;
      }
      rc.extra_json = out.dump();
      recorder->db().set_config(recorder->run(), rc);
      db::ModelSize ms;
      ms.params = counts.total;
      ms.size_mb = ms.fp_size_mb = out["fp32_mb"].get<double>();
      ms.flops = 2.0 * static_cast<double>(macs.total());
      ms.counting = "all parameters fp32; FLOPs = 2 x MACs of conv + linear + attention bmm per UNet step";
      recorder->db().set_model_size(recorder->run(), ms);
      recorder->finish();
    }
    if (o->json) std::printf("%s\n", out.dump(1).c_str());
  });
}

}  // namespace dmeval::cli
