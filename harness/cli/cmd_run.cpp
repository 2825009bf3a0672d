// `dmeval run`: one table cell end to end — the FP model, the method's quantized model (a stored
// calibration reused when one matches), its size, N samples streamed straight into the feature
// network (chunked: a killed run resumes, shards merge exactly), scores against a reference, the
// database row and the row as the tables print it.
//
// This increment scores with shapes-net (the embedded profile's feature network): FID[shapes-net],
// IS[shapes-net], precision/recall[shapes-net]. The Inception path and the named profiles follow
// (issue 9).
#include <fmt/format.h>
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "core/build_info.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/image_sinks.h"
#include "core/runtime.h"
#include "generators/diffusion_producer.h"
#include "generators/model_cost.h"
#include "generators/shapes_dataset.h"
#include "generators/timestep_sequence.h"
#include "generators/unet_runner.h"
#include "harness/cli/commands.h"
#include "harness/cli/db_cli.h"
#include "harness/cli/model_cli.h"
#include "harness/cli/quant_cli.h"
#include "harness/cli/run_cell.h"
#include "harness/sampling/chunk_runner.h"
#include "harness/sampling/timing.h"
#include "metrics/chunked_features.h"
#include "metrics/frechet.h"
#include "metrics/inception_score.h"
#include "metrics/moments.h"
#include "metrics/precision_recall.h"
#include "metrics/shapes_features.h"

namespace dmeval::cli {

namespace fs = std::filesystem;

namespace {

// Reference images: `shapes:N[:SEED]` (the procedural data) or a PNG folder (sorted names).
std::unique_ptr<ImageProducer> reference_producer(const std::string& spec, int64_t* count,
                                                  std::string* describe) {
  if (is_shapes_spec(spec)) {
    const ShapesSpec s = parse_shapes_spec(spec, "--ref");
    ShapesOptions so;
    so.seed = s.seed;
    auto p = std::make_unique<ShapesProducer>(so);
    *count = s.n;
    *describe = p->describe();
    return p;
  }
  fail("--ref '{}': this increment of dmeval run takes shapes:N[:SEED] references", spec);
}

}  // namespace

void add_run_cell_options(CLI::App* cmd, RunCellOptions& o) {
  add_model_options(cmd, o.model);
  add_quant_options(cmd, o.quant);
  add_db_options(cmd, o.db, /*step_and_bit_labels=*/false);
  cmd->add_option("--skip-type", o.sampler.skip_type, "timestep sequence: uniform or quad")
      ->check(CLI::IsMember({"uniform", "quad"}))
      ->capture_default_str();
  cmd->add_option("--steps", o.sampler.steps, "DDIM steps")->capture_default_str();
  cmd->add_option("--eta", o.sampler.eta, "DDIM eta")->capture_default_str();
  cmd->add_option("--samples", o.samples, "number of generated images (exactly this many)")
      ->capture_default_str();
  cmd->add_option("--seed", o.seed, "noise seed (per-image noise)")->capture_default_str();
  cmd->add_option("--batch", o.batch, "images sampled together")->capture_default_str();
  cmd->add_option("--micro-batch", o.micro_batch, "images per network evaluation (recorded)")
      ->capture_default_str();
  cmd->add_option("--chunk", o.chunk, "images per resumable chunk")->capture_default_str();
  cmd->add_option("--ref", o.ref, "reference images: shapes:N[:SEED]")->required();
  cmd->add_option("--network", o.network, "feature network: shapes-net")
      ->check(CLI::IsMember({"shapes-net"}))
      ->capture_default_str();
  cmd->add_option("--network-weights", o.network_weights, "feature network weights")->capture_default_str();
  cmd->add_option("--out", o.out, "run folder (features per chunk, the run record; resumable)")->required();
  cmd->add_option("--save-samples", o.save_samples, "also write the samples as PNGs into this folder");
  cmd->add_option("--shard", o.shard, "run only shard K of N (scores once every shard is done)");
  cmd->add_option("--max-chunks", o.max_chunks, "stop after this many chunks (the rest on a later run)");
  cmd->add_option("--latency-repeats", o.latency_repeats,
                  "UNet step timings at batch 1 and --batch after one warm-up (0 = none)")
      ->capture_default_str();
  cmd->add_flag("--json", o.json, "print the result as JSON");
  cmd->add_flag("--quiet", o.quiet, "no progress output");
}

// A profile file: as given if it exists, else under $DMEVAL_PROFILES_DIR, else in the repository
// dmeval was built from (the default weights are named "profiles/...").
std::string profile_file(const std::string& path) {
  if (fs::exists(path) || path.rfind("profiles/", 0) != 0) return path;
  const char* env = std::getenv("DMEVAL_PROFILES_DIR");
  const std::string root = env ? std::string(env) : std::string(DMEVAL_REPO_ROOT) + "/profiles";
  const std::string alt = root + "/" + path.substr(9);
  return fs::exists(alt) ? alt : path;
}

std::optional<nlohmann::ordered_json> run_cell(const RunCellOptions& o) {
  DMEVAL_CHECK(o.samples >= 2, "--samples {} must be at least 2", o.samples);
  validate(o.sampler);
  auto log = [&o](const std::string& line) {
    if (!o.quiet) std::fprintf(stderr, "%s\n", line.c_str());
  };
  // Feature network and reference first: missing files are named before any long work.
  const std::string weights_sha = sha256_file(profile_file(o.network_weights));
  ShapesNet net = load_shapes_net(profile_file(o.network_weights));
  const std::string provenance =
      fmt::format("shapes-net {}; uint8/127.5-1; micro-batch 64", weights_sha.substr(0, 16));
  FeatureExtractor extract = [&net](const ImageBatch& b) { return shapes_net_extract(net, b, 64); };
  int64_t ref_n = 0;
  std::string ref_desc;
  auto ref = reference_producer(o.ref, &ref_n, &ref_desc);
  ShapesFeatureSink ref_sink(net, 64);
  for (int64_t i = 0; i < ref_n; i += 256)
    ref_sink.consume(ref->produce(i, std::min<int64_t>(256, ref_n - i)));

  LoadedModel m = load_model(o.model);
  DiffusionSchedule schedule = make_schedule(m.config.diffusion);
  const auto seq = timestep_sequence(o.sampler.skip_type, o.sampler.steps, schedule.num_timesteps);
  UNetRunOptions ro;
  ro.micro_batch = o.micro_batch;
  DdimUNet fp = copy_unet(m.unet);
  QuantizedSetup q = prepare_quantized(m, o.quant, ro, log, &o.sampler);
  const double size_mb =
      model_size_bytes(*fp, [&](const LayerInfo& l) { return q.model->weight_bits(l); }) / 1e6;
  const double scale_bytes = q.model->scale_bytes();

  // Sampling into the features, chunk by chunk.
  const std::vector<int64_t> shape = {m.config.unet.in_channels, m.config.unet.resolution,
                                      m.config.unet.resolution};
  DiffusionImageProducer producer(q.model->eps(), schedule, o.sampler,
                                  make_noise_source("per-image", static_cast<uint64_t>(o.seed)), shape,
                                  torch::kCPU, false, q.model->quant_noise_std());
  nlohmann::ordered_json id;
  id["command"] = "run";
  id["model"] = m.identity();
  id["method"] = q.record.method;
  id["bits"] = q.record.bits.str();
  id["calibration_key"] = q.record.key();
  id["calibration_settings"] = q.record.settings;
  id["sampler"] = describe(o.sampler);
  id["samples"] = o.samples;
  id["seed"] = o.seed;
  id["noise"] = producer.noise().describe();
  id["micro_batch"] = o.micro_batch;
  id["feature_network"] = provenance;
  id["dmeval"] = fmt::format("{} {}", build_version(), build_git_revision());
  id["threads"] = runtime_info().intra_op_threads;
  ChunkPlan plan;
  plan.total = o.samples;
  plan.chunk_size = round_chunk_size(o.chunk, o.batch);
  id["chunk_size"] = plan.chunk_size;
  if (!o.shard.empty()) plan.shard = parse_shard(o.shard);
  fs::create_directories(o.out);
  ChunkLedger ledger(o.out + "/.dmeval", id);
  ChunkedFeatureSink features(o.out + "/features", extract, provenance);
  std::vector<ImageSink*> sinks = {&features};
  std::unique_ptr<PngFolderSink> png;
  if (!o.save_samples.empty()) {
    fs::create_directories(o.save_samples);
    png = std::make_unique<PngFolderSink>(o.save_samples, PngFolderSink::digits_for(o.samples), 6);
    sinks.push_back(png.get());
  }
  ChunkRunOptions co;
  co.batch = o.batch;
  co.progress = !o.quiet;
  co.max_chunks = o.max_chunks;
  ChunkRunResult r = run_chunks(producer, plan, ledger, sinks, co);
  if (!r.complete) {
    std::printf("%s: %lld of %lld chunks done; run the same command again (or the other shards) to finish\n",
                o.out.c_str(), static_cast<long long>(r.chunks_done), static_cast<long long>(r.chunks_total));
    return std::nullopt;
  }

  // Latency of the (quantized) UNet step at batch 1 and --batch, at the first sampler step.
  nlohmann::ordered_json latency = nlohmann::ordered_json::array();
  if (o.latency_repeats > 0) {
    EpsModel eps = q.model->eps();
    for (int64_t b : {int64_t{1}, o.batch}) {
      torch::Tensor x = torch::randn({b, shape[0], shape[1], shape[2]});
      torch::Tensor t = torch::full({b}, static_cast<float>(seq.back()));
      torch::NoGradGuard no_grad;
      TimingStats ts = time_repeated([&] { eps(x, t, 0); }, 1, o.latency_repeats, torch::kCPU);
      latency.push_back({{"batch", b},
                         {"unet_step_ms", ts.median_ms},
                         {"p10_ms", ts.p10_ms},
                         {"p90_ms", ts.p90_ms},
                         {"per_image_ms", ts.median_ms / static_cast<double>(b)},
                         {"repeats", ts.repeats}});
      if (b == o.batch) break;
    }
  }

  // Scores: exact moments from the features in index order, so resumed and sharded runs agree.
  torch::Tensor gen_f = load_chunked_features(o.out + "/features", "features", o.samples, provenance);
  torch::Tensor gen_l = load_chunked_features(o.out + "/features", "logits", o.samples, provenance);
  MomentAccumulator acc(kShapesFeatureDim);
  acc.add(0, gen_f);
  FrechetResult fd = frechet_distance(acc.finalize(), ref_sink.stats());
  InceptionScore is = inception_score_torch_fidelity(gen_l, std::min<int64_t>(10, o.samples), true, 2020);
  PrecisionRecall pr = precision_recall(ref_sink.features(), gen_f);
  nlohmann::ordered_json res;
  res["method"] = q.record.method;
  res["bits"] = q.record.bits.str();
  res["steps"] = static_cast<int64_t>(seq.size());
  res["samples"] = o.samples;
  res["size_mb"] = size_mb;
  if (scale_bytes >= 0) res["size_mb_with_scales"] = size_mb + scale_bytes / 1e6;
  res["fid[shapes-net]"] = fd.value;
  res["is[shapes-net]"] = is.mean;
  res["precision[shapes-net]"] = pr.precision;
  res["recall[shapes-net]"] = pr.recall;
  res["reference"] = fmt::format("{} images of {}", ref_n, ref_desc);
  res["feature_network"] = provenance;
  res["latency_cpu"] = latency;
  res["calibration"] = q.describe();

  if (auto rec = RunRecorder::start(o.db)) {
    db::RunConfig rc;
    rc.method = q.record.method;
    rc.model = m.config.name;
    if (!m.weights.sha256.empty()) rc.checkpoint_sha256 = m.weights.sha256;
    rc.sampler = describe(o.sampler);
    rc.steps = static_cast<int64_t>(seq.size());
    rc.seed = o.seed;
    rc.samples = o.samples;
    rc.eta = o.sampler.eta;
    rc.w_bits = q.record.bits.weight;
    rc.a_bits = q.record.bits.act;
    rc.calibration_json = q.describe().dump();
    rec->db().set_config(rec->run(), rc);
    db::ModelSize ms;
    ms.size_mb = size_mb;
    ms.counting = "Conv2d/Linear weights at the method's bits, the rest fp32, no scales";
    rec->db().set_model_size(rec->run(), ms);
    // A generated reference: named by its definition (deterministic), hashed over that definition.
    const std::string ref_def = fmt::format("{} images of {}", ref_n, ref_desc);
    const int64_t ref_id = rec->db().add_reference_set(
        {o.ref, ref_def, "generated", sha256_hex(ref_def.data(), ref_def.size()), ref_n});
    std::vector<db::MetricRow> rows;
    for (auto [name, value] :
         // named with their network so no table can take them for Inception figures
         {std::pair{"fid[shapes-net]", fd.value},
          {"is[shapes-net]", is.mean},
          {"precision[shapes-net]", pr.precision},
          {"recall[shapes-net]", pr.recall}}) {
      db::MetricRow row;
      row.name = name;
      row.value = value;
      row.n = o.samples;
      row.feature_network = "shapes-net";
      row.weights_sha256 = weights_sha;
      row.mode = "shapes-net uint8/127.5-1";
      row.compat = "dmeval";
      row.reference_set_id = ref_id;
      rows.push_back(row);
    }
    rec->add_metrics(rows);
    for (const auto& l : latency)
      rec->db().add_latency(rec->run(), {"unet_step", l["batch"].get<int64_t>(), l["repeats"].get<int64_t>(),
                                         std::string("cpu"), l["unet_step_ms"].get<double>(),
                                         l["p10_ms"].get<double>(), l["p90_ms"].get<double>()});
    rec->finish();
    res["db_run"] = rec->run();
  }
  return res;
}

void add_run_command(CLI::App& app) {
  auto o = std::make_shared<RunCellOptions>();
  auto* cmd = app.add_subcommand("run", "one table cell end to end: quantize, sample, score, record");
  add_run_cell_options(cmd, *o);
  cmd->callback([o] {
    auto res = run_cell(*o);
    if (!res) return;
    if (o->json) {
      std::printf("%s\n", res->dump(1).c_str());
    } else {
      std::printf(
          "| Method | W/A | Steps | N | Size (MB) | FID[shapes-net] | IS[shapes-net] | Prec. | Rec. |\n");
      std::printf("| %s | %s | %lld | %lld | %.2f | %.2f | %.3f | %.4f | %.4f |\n",
                  (*res)["method"].get<std::string>().c_str(), (*res)["bits"].get<std::string>().c_str(),
                  static_cast<long long>((*res)["steps"].get<int64_t>()), static_cast<long long>(o->samples),
                  (*res)["size_mb"].get<double>(), (*res)["fid[shapes-net]"].get<double>(),
                  (*res)["is[shapes-net]"].get<double>(), (*res)["precision[shapes-net]"].get<double>(),
                  (*res)["recall[shapes-net]"].get<double>());
    }
  });
}

}  // namespace dmeval::cli
