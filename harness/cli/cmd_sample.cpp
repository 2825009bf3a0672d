// `dmeval sample`: mass sampling of N images from a diffusion model with the DDIM or DDPM sampler,
// deterministic per image, chunked and resumable, shardable across processes, into a PNG folder or
// an ADM-style .npz batch (and optionally the float samples as .npy).
#include <fmt/format.h>
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>

#include "core/build_info.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/image_sinks.h"
#include "core/npy.h"
#include "core/runtime.h"
#include "core/torch_bridge.h"
#include "generators/diffusion_producer.h"
#include "generators/timestep_sequence.h"
#include "generators/unet_runner.h"
#include "harness/cli/commands.h"
#include "harness/cli/generation_cli.h"
#include "harness/cli/model_cli.h"
#include "harness/sampling/chunk_runner.h"

namespace dmeval::cli {

namespace fs = std::filesystem;

void add_sample_command(CLI::App& app) {
  struct Opts : GenerationOptions {
    std::string noise = "per-image", out, shard, format = "png", init_noise, raw_out;
    int64_t max_chunks = 0;
    int png_compression = 6;
    bool channels_last = false, json = false, quiet = false;
  };
  auto o = std::make_shared<Opts>();
  o->samples = 50000;
  o->chunk = 1024;
  auto* cmd = app.add_subcommand(
      "sample", "sample N images from a diffusion model (DDIM/DDPM), resumable and shardable");
  generation_option_table().bind(cmd, *o);
  // The name of earlier versions, kept so that scripts keep working (hidden from --help).
  cmd->add_option("--n", o->samples, "same as --samples")->group("");
  cmd->add_option(
         "--noise", o->noise,
         "per-image: noise depends only on (seed, image, step); reference: the ddim scripts' sequential "
         "CPU generator stream (depends on --batch; no shards)")
      ->check(CLI::IsMember({"per-image", "reference"}))
      ->capture_default_str();
  cmd->add_option("--out", o->out, "output folder (PNG files, or the .npz with --format npz)")->required();
  cmd->add_option("--format", o->format, "png: one <index>.png per image; npz: ADM-style samples_NxHxWx3.npz")
      ->check(CLI::IsMember({"png", "npz"}))
      ->capture_default_str();
  cmd->add_option("--shard", o->shard, "run only shard K of N (chunks k with k mod N = K)");
  cmd->add_option("--init-noise", o->init_noise, "x_T for every image from a float32 (N, C, H, W) .npy");
  cmd->add_option("--raw-out", o->raw_out,
                  "also write the float samples before conversion as (N, C, H, W) .npy");
  cmd->add_flag("--channels-last", o->channels_last, "channels-last convolutions (GPU fast path)");
  cmd->add_option("--png-compression", o->png_compression, "zlib level 0-9")->check(CLI::Range(0, 9));
  cmd->add_option("--max-chunks", o->max_chunks, "stop after this many chunks (the rest on a later run)");
  cmd->add_flag("--json", o->json, "print the run summary as JSON");
  cmd->add_flag("--quiet", o->quiet, "no progress output");
  cmd->callback([o] {
    DMEVAL_CHECK(o->samples >= 1, "--samples {} must be at least 1", o->samples);
    DMEVAL_CHECK(o->batch >= 1 && o->micro_batch >= 1, "--batch and --micro-batch must be at least 1");
    GenerationBuild gb;
    gb.channels_last = o->channels_last;
    // Quantized sampling: the method's model (a saved calibration is reused when one matches).
    GenerationPipeline g = build_generation(
        *o,
        [o](const std::string& line) {
          if (!o->quiet && !o->json) std::fprintf(stderr, "%s\n", line.c_str());
        },
        gb);
    const LoadedModel& m = g.model;
    const torch::Device device = g.device;
    const auto& seq = g.timesteps;
    const auto& shape = g.sample_shape;
    const std::optional<QuantizedSetup>& quant = g.quant;

    std::unique_ptr<NoiseSource> noise = make_noise_source(o->noise, static_cast<uint64_t>(o->seed));
    std::string init_sha;
    if (!o->init_noise.empty()) {
      torch::Tensor x_T = to_torch(read_npy_file(o->init_noise));
      DMEVAL_CHECK(x_T.dim() == 4 && x_T.size(0) == o->samples,
                   "{}: initial noise for {} images, --samples is {}", o->init_noise,
                   x_T.dim() == 4 ? x_T.size(0) : 0, o->samples);
      noise = with_initial_noise(std::move(noise), x_T, o->init_noise);
      init_sha = sha256_file(o->init_noise);
    }
    std::unique_ptr<DiffusionImageProducer> producer_ptr =
        g.producer(o->sampler, std::move(noise), !o->raw_out.empty());
    DiffusionImageProducer& producer = *producer_ptr;

    ChunkPlan plan;
    plan.total = o->samples;
    plan.chunk_size = round_chunk_size(o->chunk, o->batch);
    if (!o->shard.empty()) plan.shard = parse_shard(o->shard);

    // Everything that determines the output bytes.
    nlohmann::ordered_json id;
    id["command"] = "sample";
    id["model"] = m.identity();
    id["method"] = quant ? quant->record.method : "fp";
    id["bits"] = quant ? quant->record.bits.str() : "32/32";
    if (quant) {
      id["calibration_key"] = quant->record.key();
      id["calibration_settings"] = quant->record.settings;  // the method's decisions and quirk switches
    }
    id["sampler"] = g.describe_sampler(o->sampler);
    id["n"] = o->samples;  // the identity's key of earlier versions (resumes keep working)
    id["seed"] = o->seed;
    id["noise"] = producer.noise().describe();
    g.add_identity(id);
    if (!init_sha.empty()) id["init_noise_sha256"] = init_sha;
    id["micro_batch"] = o->micro_batch;
    if (producer.sequential()) id["batch"] = o->batch;  // the stream's layout depends on it
    id["chunk_size"] = plan.chunk_size;
    id["device"] = device.is_cuda() ? "cuda" : "cpu";
    id["channels_last"] = o->channels_last;
    id["format"] = o->format;
    if (!o->raw_out.empty()) id["raw_out"] = fs::absolute(o->raw_out).string();
    id["dmeval"] = fmt::format("{} {}", build_version(), build_git_revision());
    id["libtorch"] = runtime_info().torch_version;
    id["threads"] = runtime_info().intra_op_threads;

    fs::create_directories(o->out);
    const std::string record = o->out + "/.dmeval";
    ChunkLedger ledger(record, id);
    std::vector<std::unique_ptr<ImageSink>> owned;
    std::string npz_path;
    if (o->format == "png") {
      owned.push_back(
          std::make_unique<PngFolderSink>(o->out, PngFolderSink::digits_for(o->samples), o->png_compression));
    } else {
      npz_path = fmt::format("{}/samples_{}x{}x{}x3.npz", o->out, o->samples, shape[1], shape[2]);
      owned.push_back(std::make_unique<ChunkedArraySink>(ChunkedArraySink::Kind::kImagesNpz, npz_path,
                                                         record + "/parts-npz", o->samples));
    }
    if (!o->raw_out.empty())
      owned.push_back(std::make_unique<ChunkedArraySink>(ChunkedArraySink::Kind::kRawNpy, o->raw_out,
                                                         record + "/parts-raw", o->samples));
    std::vector<ImageSink*> sinks;
    for (auto& s : owned) sinks.push_back(s.get());

    if (!o->quiet && !o->json)
      std::fprintf(stderr, "%s\n%s; %lld images, seed %lld, %s; %s; chunks of %lld%s\n",
                   m.model->describe_line().c_str(), g.describe_sampler(o->sampler).c_str(),
                   static_cast<long long>(o->samples), static_cast<long long>(o->seed),
                   producer.noise().describe().c_str(), o->device.c_str(),
                   static_cast<long long>(plan.chunk_size),
                   plan.shard.count > 1 ? (", shard " + plan.shard.str()).c_str() : "");
    ChunkRunOptions co;
    co.batch = o->batch;
    co.progress = !o->quiet;
    co.max_chunks = o->max_chunks;
    ChunkRunResult r = run_chunks(producer, plan, ledger, sinks, co);

    nlohmann::ordered_json summary = id;
    summary["model"] = m.describe();
    if (quant) summary["quantization"] = quant->describe();
    summary["out"] = o->out;
    if (!npz_path.empty()) summary["npz"] = npz_path;
    summary["shard"] = plan.shard.str();
    summary["chunks_total"] = r.chunks_total;
    summary["chunks_done"] = r.chunks_done;
    summary["chunks_run_now"] = r.chunks_run;
    summary["chunks_skipped"] = r.chunks_skipped;
    summary["images_now"] = r.images;
    summary["seconds"] = r.seconds;
    summary["images_per_second"] = r.images_per_second;
    summary["complete"] = r.complete;
    summary["timesteps"] = seq;
    if (o->json) {
      std::printf("%s\n", summary.dump(1).c_str());
    } else {
      std::printf("%s: %lld of %lld chunks done (%lld now, %lld already there), %.2f images/s\n",
                  o->out.c_str(), static_cast<long long>(r.chunks_done),
                  static_cast<long long>(r.chunks_total), static_cast<long long>(r.chunks_run),
                  static_cast<long long>(r.chunks_skipped), r.images_per_second);
      if (r.complete)
        std::printf("complete: %lld images%s\n", static_cast<long long>(o->samples),
                    npz_path.empty() ? "" : (" in " + npz_path).c_str());
      else if (r.chunks_done < r.chunks_total && plan.shard.count > 1)
        std::printf(
            "this shard is done; run the other shards (the outputs are assembled when the last one ends)\n");
      else
        std::printf("incomplete: run the same command again to continue\n");
    }
  });
}

}  // namespace dmeval::cli
