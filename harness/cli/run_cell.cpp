// `dmeval run`'s cell: profile → model → method → size → latency → chunked sampling into the scoring
// network's features → scores against the reference → database row. See run_cell.h for the folder.
#include "harness/cli/run_cell.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "core/atomic_file.h"
#include "core/build_info.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/image_sinks.h"
#include "core/npy.h"
#include "core/runtime.h"
#include "generators/diffusion_producer.h"
#include "generators/model_cost.h"
#include "generators/shapes_dataset.h"
#include "generators/timestep_sequence.h"
#include "generators/unet_runner.h"
#include "harness/cli/inception_cli.h"
#include "harness/cli/profiles.h"
#include "harness/sampling/chunk_runner.h"
#include "harness/sampling/timing.h"
#include "metrics/bootstrap.h"
#include "metrics/chunked_features.h"
#include "metrics/frechet.h"
#include "metrics/image_source.h"
#include "metrics/inception_score.h"
#include "metrics/precision_recall.h"
#include "metrics/reference_stats.h"
#include "metrics/shapes_features.h"

namespace dmeval::cli {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  DMEVAL_CHECK(in.good(), "{}: cannot read", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json read_json(const std::string& path) {
  try {
    return json::parse(read_text(path));
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not valid JSON ({})", path, e.what());
  }
}

void write_json(const std::string& path, const json& j) {
  const std::string text = j.dump(1) + "\n";
  AtomicFile f(path);
  f.write(text.data(), text.size());
  f.commit();
}

json options_to_json(const RunCellOptions& o) {
  json j;
  j["profile"] = o.profile;
  j["model"] = {{"model", o.model.model},           {"config", o.model.config},
                {"checkpoint", o.model.checkpoint}, {"random_weights", o.model.random_weights},
                {"no_ema", o.model.no_ema},         {"allow_unknown", o.model.allow_unknown}};
  j["quant"] = {{"method", o.quant.method},
                {"bits", o.quant.bits},
                {"calib", o.quant.calib},
                {"calibration", o.quant.calibration},
                {"import_qdiff", o.quant.import_qdiff},
                {"recalibrate", o.quant.recalibrate},
                {"no_store", o.quant.no_store}};
  j["db"] = {{"db", o.db.db}, {"tag", o.db.tag}};
  j["sampler"] = {{"sampler", o.sampler.sampler},
                  {"skip_type", o.sampler.skip_type},
                  {"steps", o.sampler.steps},
                  {"eta", o.sampler.eta}};
  j["ref"] = o.ref;
  j["out"] = o.out;
  j["save_samples"] = o.save_samples;
  j["network"] = o.network;
  j["network_weights"] = o.network_weights;
  j["compat"] = o.compat;
  j["device"] = o.device;
  for (auto [k, v] : {std::pair{"samples", o.samples},
                      {"batch", o.batch},
                      {"micro_batch", o.micro_batch},
                      {"chunk", o.chunk},
                      {"seed", o.seed},
                      {"latency_repeats", o.latency_repeats},
                      {"e2e_repeats", o.e2e_repeats},
                      {"bootstrap", o.bootstrap},
                      {"feature_batch", o.feature_batch}})
    j[k] = v;
  j["no_db"] = o.no_db;
  return j;
}

RunCellOptions options_from_json(const json& j, const std::string& where) {
  RunCellOptions o;
  try {
    o.profile = j.at("profile");
    const auto& m = j.at("model");
    o.model.model = m.at("model");
    o.model.config = m.at("config");
    o.model.checkpoint = m.at("checkpoint");
    o.model.random_weights = m.at("random_weights");
    o.model.no_ema = m.at("no_ema");
    o.model.allow_unknown = m.at("allow_unknown");
    const auto& q = j.at("quant");
    o.quant.method = q.at("method");
    o.quant.bits = q.at("bits");
    o.quant.calib = q.at("calib").get<std::vector<std::string>>();
    o.quant.calibration = q.at("calibration");
    o.quant.import_qdiff = q.at("import_qdiff");
    o.quant.recalibrate = q.at("recalibrate");
    o.quant.no_store = q.at("no_store");
    o.db.db = j.at("db").at("db");
    o.db.tag = j.at("db").at("tag");
    const auto& s = j.at("sampler");
    o.sampler.sampler = s.at("sampler");
    o.sampler.skip_type = s.at("skip_type");
    o.sampler.steps = s.at("steps");
    o.sampler.eta = s.at("eta");
    o.ref = j.at("ref");
    o.out = j.at("out");
    o.save_samples = j.at("save_samples");
    o.network = j.at("network");
    o.network_weights = j.at("network_weights");
    o.compat = j.at("compat");
    o.device = j.at("device");
    o.samples = j.at("samples");
    o.batch = j.at("batch");
    o.micro_batch = j.at("micro_batch");
    o.chunk = j.at("chunk");
    o.seed = j.at("seed");
    o.latency_repeats = j.at("latency_repeats");
    o.e2e_repeats = j.at("e2e_repeats");
    o.bootstrap = j.at("bootstrap");
    o.feature_batch = j.at("feature_batch");
    o.no_db = j.at("no_db");
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not a dmeval run's options ({})", where, e.what());
  }
  return o;
}

// The scoring network the options name, loaded.
ScoringNetwork load_scoring_network(const RunCellOptions& o) {
  const std::string weights = profile_path(o.network_weights);
  if (o.network == "shapes-net") {
    DMEVAL_CHECK(fs::exists(weights), "feature network weights {}: no such file", weights);
    return shapes_scoring_network(weights, o.feature_batch > 0 ? o.feature_batch : 64);
  }
  DMEVAL_CHECK(o.network == "inception", "--network '{}' must be shapes-net or inception", o.network);
  InceptionOptions io;
  io.weights = weights;
  io.mode = o.compat == "adm" ? "tf" : "pytorch-fid";
  io.allow_unknown_weights = o.model.allow_unknown;
  InceptionSetup s = load_inception(io);
  return inception_scoring_network(s.net, s.mode, io.mode, s.weights_sha256,
                                   o.feature_batch > 0 ? o.feature_batch : 50, parse_device(o.device));
}

// The reference the run scores against: a statistics file as given, or statistics computed from
// images (shapes:N[:SEED], a folder, an .npz batch, CIFAR-10 batches) with the scoring network,
// cached in `cache_dir` under a name made of the images' definition and the network.
struct PreparedReference {
  std::string path, description, kind;
  // What the reference is: a given file's SHA-256; for statistics computed here, the SHA-256 of their
  // definition (images and network), so every run over the same reference names it alike (the .npz
  // bytes carry zip timestamps). file_sha256 guards the file against changes between shards.
  std::string sha256, file_sha256;
  int64_t count = -1;
};

PreparedReference prepare_reference(const std::string& spec, const ScoringNetwork& net,
                                    const std::string& cache_dir, bool quiet) {
  PreparedReference r;
  std::unique_ptr<ImageProducer> producer;
  std::unique_ptr<ImageSource> source;
  std::error_code ec;
  if (is_shapes_spec(spec)) {
    const ShapesSpec s = parse_shapes_spec(spec, "--ref");
    ShapesOptions so;
    so.seed = s.seed;
    auto p = std::make_unique<ShapesProducer>(so);
    r.count = s.n;
    r.description = fmt::format("{} images of {}", s.n, p->describe());
    r.kind = "generated";
    producer = std::move(p);
  } else if (fs::is_regular_file(spec, ec) && spec.size() > 4 && spec.substr(spec.size() - 4) == ".npz" &&
             !NpzReader::open(spec).contains("arr_0")) {
    ReferenceStats st = read_reference_stats(spec);  // checks it is one
    if (!st.provenance.empty() && st.provenance != net.key())
      fail(
          "{}: these reference statistics were computed with {}; this run scores with {}. Make the "
          "reference with the same network weights and preprocessing (dmeval stats ... --mode {})",
          spec, st.provenance, net.key(), net.mode);
    r.path = spec;
    r.kind = "statistics";
    r.count = st.count;
    r.description = fmt::format("statistics file {}{}", spec,
                                st.provenance.empty() ? " (its network and preprocessing not stated)" : "");
    r.sha256 = r.file_sha256 = sha256_file(spec);
    return r;
  } else {
    if (!fs::exists(spec) && spec.rfind("cifar10-", 0) != 0)
      fail(
          "--ref '{}': no such file or folder (give shapes:N[:SEED], an image folder, an .npz image batch, "
          "CIFAR-10 batches, or a statistics .npz from dmeval stats)",
          spec);
    source = open_image_source(spec, FolderRule::kPytorchFid);
    DMEVAL_CHECK(source->size() >= 2, "--ref {}: {} images; at least 2 are needed", spec, source->size());
    r.count = source->size();
    r.description = source->describe();
    r.kind = "images";
  }
  // The cache is keyed by the images' content, not only their description: a folder whose files
  // changed gets new statistics. Procedural references (shapes:N:SEED) are fully described by their spec.
  const std::string content = source ? sha256_of_files(source->files()) : "";
  const std::string key_text = r.description + "|" + content + "|" + net.key();
  const std::string key = sha256_hex(key_text.data(), key_text.size());
  r.path = fmt::format("{}/reference-{}.npz", cache_dir, key.substr(0, 16));
  if (!fs::exists(r.path)) {
    if (!quiet)
      std::fprintf(stderr, "reference: %s through %s -> %s\n", r.description.c_str(), net.name.c_str(),
                   r.path.c_str());
    MomentAccumulator pool(net.pool_dim), spatial(net.spatial_dim);
    std::vector<torch::Tensor> features;
    constexpr int64_t kBatch = 256;
    for (int64_t i = 0; i < r.count; i += kBatch) {
      const int64_t n = std::min(kBatch, r.count - i);
      ImageBatch b;
      if (producer) {
        b = producer->produce(i, n);
      } else {
        b.first_index = i;
        for (int64_t k = i; k < i + n; ++k) b.images.push_back(source->load(k));
      }
      auto rows = net.extract(b);
      pool.add(i, rows.at("pool"));
      spatial.add(i, rows.at("spatial"));
      features.push_back(rows.at("pool"));
    }
    ReferenceStats st;
    st.pool = pool.finalize();
    st.spatial = spatial.finalize();
    st.features = torch::cat(features, 0);
    st.count = r.count;
    st.provenance = net.key();
    fs::create_directories(cache_dir);
    write_reference_stats(r.path, st);
  }
  r.sha256 = key;
  r.file_sha256 = sha256_file(r.path);
  return r;
}

std::string bits_folder(const BitWidths& b) {
  return fmt::format("W{}A{}", b.weight, b.act);
}

// The method's calibration settings: the profile's budget for it, then --calib (which wins).
std::vector<std::string> merged_calib(const Profile* p, const std::string& method,
                                      const std::vector<std::string>& given) {
  std::vector<std::string> out;
  std::set<std::string> given_keys;
  for (const auto& kv : given) given_keys.insert(kv.substr(0, kv.find('=')));
  if (p)
    if (auto it = p->calib.find(method); it != p->calib.end())
      for (const auto& kv : it->second)
        if (!given_keys.count(kv.substr(0, kv.find('=')))) out.push_back(kv);
  out.insert(out.end(), given.begin(), given.end());
  return out;
}

// UNet step latency (one warm-up, then the median and p10/p90 of the repeats) and whole-sampling
// latency per image (noise, every step, conversion), each at batch 1 and --batch, with the network
// run at exactly that batch (not the evaluation micro-batch).
json measure_latency(QuantizedModel& model, const DiffusionSchedule& schedule,
                     const std::vector<int64_t>& shape, int64_t t_first, const RunCellOptions& o,
                     torch::Device device) {
  const UNetRunOptions saved = model.run_options();
  json latency = json::array();
  std::vector<int64_t> batches = {1};
  if (o.batch != 1) batches.push_back(o.batch);
  for (int64_t b : batches) {
    UNetRunOptions at_b = saved;
    at_b.micro_batch = b;
    model.set_run_options(at_b);
    EpsModel eps = model.eps();
    torch::NoGradGuard no_grad;
    torch::Tensor x = torch::randn({b, shape[0], shape[1], shape[2]}).to(device);
    torch::Tensor t =
        torch::full({b}, static_cast<float>(t_first), torch::dtype(torch::kFloat32).device(device));
    TimingStats ts = time_repeated([&] { eps(x, t, 0); }, 1, o.latency_repeats, device);
    latency.push_back({{"scope", "unet_step"},
                       {"batch", b},
                       {"median_ms", ts.median_ms},
                       {"p10_ms", ts.p10_ms},
                       {"p90_ms", ts.p90_ms},
                       {"per_image_ms", ts.median_ms / static_cast<double>(b)},
                       {"repeats", ts.repeats}});
    if (o.e2e_repeats > 0) {
      DiffusionImageProducer producer(eps, schedule, o.sampler, make_noise_source("per-image", 0), shape,
                                      device, false, model.quant_noise_std());
      TimingStats e2e = time_repeated([&] { producer.produce(0, b); }, 0, o.e2e_repeats, device);
      const double per = static_cast<double>(b);
      latency.push_back({{"scope", "image"},
                         {"batch", b},
                         {"median_ms", e2e.median_ms / per},
                         {"p10_ms", e2e.p10_ms / per},
                         {"p90_ms", e2e.p90_ms / per},
                         {"per_image_ms", e2e.median_ms / per},
                         {"repeats", e2e.repeats},
                         {"steps", o.sampler.steps}});
    }
  }
  model.set_run_options(saved);
  return latency;
}

}  // namespace

void add_run_cell_options(CLI::App* cmd, RunCellOptions& o) {
  cmd->add_option(
      "--profile", o.profile, "named setup filling every option not given: " + [] {
        std::string s;
        for (const auto& p : profiles()) s += (s.empty() ? "" : ", ") + p.name;
        return s;
      }() + " (default: shapes when no --model/--config is given)");
  add_model_options(cmd, o.model);
  add_quant_options(cmd, o.quant);
  add_db_options(cmd, o.db, /*step_and_bit_labels=*/false);
  cmd->add_flag("--no-db", o.no_db, "do not record the result in the database");
  cmd->add_option("--skip-type", o.sampler.skip_type, "timestep sequence: uniform or quad")
      ->check(CLI::IsMember({"uniform", "quad"}));
  cmd->add_option("--steps", o.sampler.steps, "DDIM steps");
  cmd->add_option("--eta", o.sampler.eta, "DDIM eta");
  cmd->add_option("--samples", o.samples, "number of generated images (exactly this many)");
  cmd->add_option("--seed", o.seed, "noise seed (per-image noise)")->capture_default_str();
  cmd->add_option("--batch", o.batch, "images sampled together");
  cmd->add_option("--micro-batch", o.micro_batch, "images per network evaluation (recorded)")
      ->capture_default_str();
  cmd->add_option("--chunk", o.chunk, "images per resumable chunk");
  cmd->add_option("--ref", o.ref,
                  "reference: shapes:N[:SEED], an image folder, an .npz image batch, CIFAR-10 batches, or a "
                  "statistics .npz (dmeval stats --sfid --features)");
  cmd->add_option("--network", o.network, "feature network: shapes-net or inception")
      ->check(CLI::IsMember({"shapes-net", "inception"}));
  cmd->add_option("--network-weights", o.network_weights, "feature network weights");
  cmd->add_option("--feature-batch", o.feature_batch,
                  "images per feature-network pass, fixed (recorded); default 64 for shapes-net, 50 for "
                  "Inception");
  cmd->add_option("--compat", o.compat,
                  "Inception scoring conventions: pytorch-fid (its preprocessing, torch-fidelity IS splits) "
                  "or adm (TF1 resize as ADM/torch-fidelity, ADM's IS splits)")
      ->check(CLI::IsMember({"pytorch-fid", "adm"}))
      ->capture_default_str();
  cmd->add_option("--device", o.device, "cpu or cuda[:N] (sampling and the feature network)")
      ->capture_default_str();
  cmd->add_option("--out", o.out,
                  "run folder (features per chunk, the run record; resumable). Default: "
                  "runs/<profile or model>/<method>-W<w>A<a>-<steps>steps-n<N>");
  cmd->add_option("--save-samples", o.save_samples, "also write the samples as PNGs into this folder");
  cmd->add_option("--shard", o.shard, "run only shard K of N (scores once every shard is done)");
  cmd->add_option("--max-chunks", o.max_chunks, "stop after this many chunks (the rest on a later run)");
  cmd->add_option("--latency-repeats", o.latency_repeats,
                  "UNet step timings at batch 1 and --batch after one warm-up (0 = no latency)")
      ->capture_default_str();
  cmd->add_option("--e2e-repeats", o.e2e_repeats,
                  "whole-sampling timings (per image) at batch 1 and --batch (0 = none)")
      ->capture_default_str();
  cmd->add_option(
         "--bootstrap", o.bootstrap,
         "resamples of the generated features for the FID and IS noise (regression reports; 0 = none)")
      ->capture_default_str();
  cmd->add_flag("--json", o.json, "print the result as JSON");
  cmd->add_flag("--quiet", o.quiet, "no progress output");
}

std::string cell_name(const RunCellOptions& o) {
  const BitWidths b = parse_bits(o.quant.bits);
  std::string s =
      fmt::format("{}-{}-{}steps-n{}", o.quant.method, bits_folder(b), o.sampler.steps, o.samples);
  if (o.seed != 0) s += fmt::format("-seed{}", o.seed);
  return s;
}

void resolve_run_options(const CLI::App& cmd, RunCellOptions& o) {
  auto given = [&cmd](const char* name) { return cmd.count(name) > 0; };
  const bool model_given = given("--model") || given("--config");
  if (o.profile.empty() && !model_given) o.profile = "shapes";
  if (!o.profile.empty()) {
    const Profile& p = find_profile(o.profile);
    if (!model_given) o.model.model = p.model;
    if (!given("--checkpoint") && !given("--random-weights")) o.model.checkpoint = p.unet.path;
    if (!given("--skip-type")) o.sampler.skip_type = p.sampler.skip_type;
    if (!given("--steps")) o.sampler.steps = p.sampler.steps;
    if (!given("--eta")) o.sampler.eta = p.sampler.eta;
    if (!given("--samples")) o.samples = p.samples;
    if (!given("--batch")) o.batch = p.batch;
    if (!given("--chunk")) o.chunk = p.chunk;
    if (!given("--network")) o.network = p.network;
    if (!given("--network-weights")) o.network_weights = p.network_weights.path;
    if (!given("--ref")) o.ref = p.ref;
    std::vector<const ProfileFile*> needed;
    if (o.model.checkpoint == p.unet.path) needed.push_back(&p.unet);
    if (o.network_weights == p.network_weights.path) needed.push_back(&p.network_weights);
    if (o.ref == p.ref && !p.reference.path.empty()) needed.push_back(&p.reference);
    require_profile_files(p, needed);
    o.model.checkpoint = o.model.checkpoint.empty() ? "" : profile_path(o.model.checkpoint);
    o.network_weights = profile_path(o.network_weights);
    if (!is_shapes_spec(o.ref)) o.ref = profile_path(o.ref);
  } else {
    if (o.ref.empty())
      fail("--ref is required with --model (or use --profile: {})", fmt::join(profile_names(), ", "));
    if (o.network_weights.empty()) {
      DMEVAL_CHECK(o.network == "shapes-net", "--network-weights is required with --network {}", o.network);
      o.network_weights = profile_path("profiles/shapes/shapes-net.safetensors");
    }
  }
}

std::string default_run_root(const RunCellOptions& o) {
  return fmt::format("runs/{}", o.profile.empty() ? fs::path(o.model.model).stem().string() : o.profile);
}

RunCellOptions read_run_options(const std::string& dir) {
  const std::string path = dir + "/options.json";
  DMEVAL_CHECK(fs::exists(path), "{}: not a dmeval run folder (no options.json)", dir);
  return options_from_json(read_json(path), path);
}

std::optional<json> run_cell(const RunCellOptions& options) {
  RunCellOptions o = options;
  if (!o.profile.empty())
    o.quant.calib = merged_calib(&find_profile(o.profile), o.quant.method, o.quant.calib);
  DMEVAL_CHECK(o.samples >= 2, "--samples {} must be at least 2", o.samples);
  DMEVAL_CHECK(!o.out.empty(), "no run folder (--out)");
  validate(o.sampler);
  // Unknown methods (listing the valid ones) and unsupported bits fail before any work.
  quant_method(o.quant.method).check_bits(parse_bits(o.quant.bits));
  auto log = [&o](const std::string& line) {
    if (!o.quiet) std::fprintf(stderr, "%s\n", line.c_str());
  };
  const torch::Device device = parse_device(o.device);
  std::error_code ec;
  fs::create_directories(o.out, ec);
  DMEVAL_CHECK(!ec, "{}: cannot create the run folder: {}", o.out, ec.message());

  // Feature network and reference first: missing files are named before any long work.
  ScoringNetwork net = load_scoring_network(o);
  const std::string cache_dir = fs::path(fs::absolute(o.out)).parent_path().string();
  PreparedReference ref = prepare_reference(o.ref, net, cache_dir, o.quiet);

  LoadedModel m = load_model(o.model);
  DiffusionSchedule schedule = make_schedule(m.config.diffusion);
  const auto seq = timestep_sequence(o.sampler.skip_type, o.sampler.steps, schedule.num_timesteps);
  UNetRunOptions ro;
  ro.micro_batch = o.micro_batch;
  ro.device = device;
  m.unet->to(device);
  DdimUNet fp = copy_unet(m.unet);
  QuantizedSetup q = prepare_quantized(m, o.quant, ro, log, &o.sampler);
  const double size_mb =
      model_size_bytes(*fp, [&](const LayerInfo& l) { return q.model->weight_bits(l); }) / 1e6;
  const double scale_bytes = q.model->scale_bytes();

  const std::vector<int64_t> shape = {m.config.unet.in_channels, m.config.unet.resolution,
                                      m.config.unet.resolution};
  DiffusionImageProducer producer(q.model->eps(), schedule, o.sampler,
                                  make_noise_source("per-image", static_cast<uint64_t>(o.seed)), shape,
                                  device, false, q.model->quant_noise_std());
  json id;
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
  id["feature_network"] = net.provenance;
  id["dmeval"] = fmt::format("{} {}", build_version(), build_git_revision());
  id["threads"] = runtime_info().intra_op_threads;
  id["device"] = device.str();
  // Saved PNGs are an output too: a resume must write them to the same folder (or none).
  id["save_samples"] = o.save_samples.empty() ? "" : fs::absolute(o.save_samples).lexically_normal().string();
  ChunkPlan plan;
  plan.total = o.samples;
  plan.chunk_size = round_chunk_size(o.chunk, o.batch);
  id["chunk_size"] = plan.chunk_size;
  if (!o.shard.empty()) plan.shard = parse_shard(o.shard);
  ChunkLedger ledger(o.out + "/.dmeval", id);               // refuses a folder that holds another run
  write_json(o.out + "/options.json", options_to_json(o));  // what --resume continues with

  // What the row needs besides the scores, written before sampling so any process can score.
  json cell;
  cell["profile"] = o.profile;
  cell["dataset"] = m.config.dataset;
  cell["model"] = m.config.name;
  cell["model_identity"] = m.identity();
  if (!m.weights.sha256.empty()) cell["checkpoint_sha256"] = m.weights.sha256;
  cell["method"] = q.record.method;
  cell["bits"] = q.record.bits.str();
  cell["w_bits"] = q.record.bits.weight;
  cell["a_bits"] = q.record.bits.act;
  cell["sampler"] = describe(o.sampler);
  cell["steps"] = static_cast<int64_t>(seq.size());
  cell["eta"] = o.sampler.eta;
  cell["samples"] = o.samples;
  cell["seed"] = o.seed;
  cell["size_mb"] = size_mb;
  if (scale_bytes >= 0) cell["size_mb_with_scales"] = size_mb + scale_bytes / 1e6;
  cell["size_counting"] = "Conv2d/Linear weights at the method's bits, the rest fp32, no scales";
  cell["calibration"] = q.describe();
  cell["network"] = {{"name", net.name},
                     {"label", net.label},
                     {"metric_suffix", net.metric_suffix},
                     {"weights_sha256", net.weights_sha256},
                     {"mode", net.mode},
                     {"provenance", net.provenance},
                     {"pool", net.pool_desc},
                     {"spatial", net.spatial_desc},
                     {"logits", net.logits_desc}};
  cell["compat"] = net.name == "shapes-net" ? "dmeval" : o.compat;
  cell["reference"] = {{"spec", o.ref},        {"path", fs::absolute(ref.path).string()},
                       {"sha256", ref.sha256}, {"file_sha256", ref.file_sha256},
                       {"kind", ref.kind},     {"description", ref.description},
                       {"count", ref.count}};
  cell["device"] = device.is_cuda() ? runtime_info().cuda_device_name : "cpu";
  cell["bootstrap"] = o.bootstrap;
  write_json(o.out + "/cell.json", cell);

  // Latency, once per folder (a resumed run keeps the first measurement).
  const std::string latency_file = o.out + "/latency.json";
  if (o.latency_repeats > 0 && !fs::exists(latency_file)) {
    log(fmt::format("latency: UNet step at batch 1 and {} ({} repeats), whole sampling per image ({})",
                    o.batch, o.latency_repeats, o.e2e_repeats));
    write_json(latency_file, measure_latency(*q.model, schedule, shape, seq.back(), o, device));
  }

  // Sampling into the features, chunk by chunk.
  ChunkedFeatureSink features(o.out + "/features", net.extract, net.provenance);
  std::vector<ImageSink*> sinks = {&features};
  std::unique_ptr<PngFolderSink> png;
  if (!o.save_samples.empty()) {
    fs::create_directories(o.save_samples, ec);
    DMEVAL_CHECK(!ec, "{}: cannot create the samples folder: {}", o.save_samples, ec.message());
    png = std::make_unique<PngFolderSink>(o.save_samples, PngFolderSink::digits_for(o.samples), 6);
    sinks.push_back(png.get());
  }
  ChunkRunOptions co;
  co.batch = o.batch;
  co.progress = !o.quiet;
  co.max_chunks = o.max_chunks;
  ChunkRunResult r;
  try {
    r = run_chunks(producer, plan, ledger, sinks, co);
  } catch (const Error& e) {
    // Disk full, a NaN sample, a killed feature file...: what was committed stays committed.
    fail(
        "{}\n{}: {} of {} chunks are committed and kept; fix the cause and run the same command again "
        "(or dmeval run --resume {}) to continue from there",
        e.what(), o.out, ledger.done_count(plan.num_chunks()), plan.num_chunks(), o.out);
  }
  if (!r.complete) {
    std::printf("%s: %lld of %lld chunks done; run the same command again (or the other shards) to finish\n",
                o.out.c_str(), static_cast<long long>(r.chunks_done), static_cast<long long>(r.chunks_total));
    return std::nullopt;
  }
  return score_run_folder(o.out, o.no_db ? nullptr : &o.db, o.quiet);
}

namespace {
void record_cell(const std::string& dir, const DbOptions& d, const json& cell, const json& metrics,
                 json& res);
}

json score_run_folder(const std::string& dir, const DbOptions* db_options, bool quiet) {
  const json cell = read_json(dir + "/cell.json");
  const json& netj = cell.at("network");
  const std::string suffix = netj.at("metric_suffix");
  const std::string provenance = netj.at("provenance");
  const int64_t n = cell.at("samples");
  const json& refj = cell.at("reference");
  const std::string ref_path = refj.at("path");
  DMEVAL_CHECK(
      fs::exists(ref_path),
      "{}: the reference file {} (SHA-256 {}) is not on this machine; copy it there or run one shard "
      "here to make it",
      dir, ref_path, refj.at("file_sha256").get<std::string>());
  DMEVAL_CHECK(sha256_file(ref_path) == refj.at("file_sha256"),
               "{}: the reference file {} changed since the run started (SHA-256 differs)", dir, ref_path);
  ReferenceStats ref = read_reference_stats(ref_path);
  const std::string fdir = dir + "/features";
  if (!quiet)
    std::fprintf(stderr, "scoring %lld samples against %s\n", static_cast<long long>(n), ref_path.c_str());

  // Exact moments streamed from the chunks (resumed and sharded runs agree bit for bit).
  const FeatureStats gen_pool = chunked_moments(fdir, "pool", n, provenance).finalize();
  torch::Tensor gen_features = load_chunked_features(fdir, "pool", n, provenance);
  torch::Tensor gen_logits = load_chunked_features(fdir, "logits", n, provenance);
  const int64_t boot = cell.value("bootstrap", int64_t{0});
  const bool adm = cell.at("compat") == "adm";

  json metrics;  // name -> {value, noise, features}
  FrechetResult fd = frechet_distance(gen_pool, ref.pool);
  metrics["fid" + suffix] = {
      {"value", fd.value}, {"features", netj.at("pool")}, {"route", frechet_route_name(fd.route)}};
  if (boot > 1) metrics["fid" + suffix]["noise"] = fid_bootstrap_std(gen_features, ref.pool, {boot, 2020});
  if (ref.spatial) {
    const FeatureStats gen_spatial = chunked_moments(fdir, "spatial", n, provenance).finalize();
    FrechetResult sf = frechet_distance(gen_spatial, *ref.spatial);
    metrics["sfid" + suffix] = {
        {"value", sf.value}, {"features", netj.at("spatial")}, {"route", frechet_route_name(sf.route)}};
  }
  auto is_of = [&](const torch::Tensor& l) {
    return adm ? inception_score_adm(l) : inception_score_torch_fidelity(l, std::min<int64_t>(10, l.size(0)));
  };
  InceptionScore is = is_of(gen_logits);
  metrics["is" + suffix] = {
      {"value", is.mean}, {"std", is.std}, {"scheme", is.scheme}, {"features", netj.at("logits")}};
  if (boot > 1)
    metrics["is" + suffix]["noise"] =
        bootstrap_std(gen_logits, [&](const torch::Tensor& x) { return is_of(x).mean; }, {boot, 2020});
  if (ref.features.defined()) {
    PrecisionRecall pr = precision_recall(ref.features, gen_features);
    metrics["precision" + suffix] = {{"value", pr.precision},
                                     {"k", 3},
                                     {"features", netj.at("pool")},
                                     {"noise", binomial_std(pr.precision, n)}};
    metrics["recall" + suffix] = {{"value", pr.recall},
                                  {"k", 3},
                                  {"features", netj.at("pool")},
                                  {"noise", binomial_std(pr.recall, ref.features.size(0))}};
  }

  json res;
  for (const char* k : {"method", "bits", "steps", "samples", "size_mb"}) res[k] = cell.at(k);
  if (cell.contains("size_mb_with_scales")) res["size_mb_with_scales"] = cell["size_mb_with_scales"];
  res["profile"] = cell.at("profile");
  res["metric_suffix"] = suffix;
  for (auto it = metrics.begin(); it != metrics.end(); ++it) res[it.key()] = it.value()["value"];
  if (!ref.features.defined())
    res["precision_recall"] =
        "not computed: the reference file holds no per-image features (dmeval stats --features)";
  res["metrics"] = metrics;
  res["reference"] = refj;
  res["feature_network"] = provenance;
  const std::string latency_file = dir + "/latency.json";
  res["latency"] = fs::exists(latency_file) ? read_json(latency_file) : json::array();
  res["calibration"] = cell.at("calibration");

  if (db_options) {
    DbOptions d = *db_options;
    if (d.db.empty()) d.db = db::default_db_path();
    try {
      record_cell(dir, d, cell, metrics, res);
    } catch (const Error& e) {
      // A locked or unwritable database loses nothing: the scores come from the run folder.
      fail(
          "{}\nThe samples' features are kept in {}: run `dmeval merge {}` (or the same command) to score "
          "and "
          "record them again",
          e.what(), dir, dir);
    }
  }
  return res;
}

namespace {
void record_cell(const std::string& dir, const DbOptions& d, const json& cell, const json& metrics,
                 json& res) {
  const json& netj = cell.at("network");
  const json& refj = cell.at("reference");
  const std::string ref_path = refj.at("path");
  const int64_t n = cell.at("samples");
  const std::string provenance = netj.at("provenance");
  std::unique_ptr<RunRecorder> rec = RunRecorder::start(d);
  if (rec) {
    db::RunConfig rc;
    rc.method = cell.at("method").get<std::string>();
    rc.model = cell.at("model").get<std::string>();
    if (cell.contains("checkpoint_sha256"))
      rc.checkpoint_sha256 = cell["checkpoint_sha256"].get<std::string>();
    rc.sampler = cell.at("sampler").get<std::string>();
    rc.steps = cell.at("steps").get<int64_t>();
    rc.seed = cell.at("seed").get<int64_t>();
    rc.samples = n;
    rc.eta = cell.at("eta").get<double>();
    rc.w_bits = cell.at("w_bits").get<int64_t>();
    rc.a_bits = cell.at("a_bits").get<int64_t>();
    rc.calibration_json = cell.at("calibration").dump();
    rc.extra_json = json({{"profile", cell.at("profile")},
                          {"run_folder", fs::absolute(dir).string()},
                          {"feature_network", provenance},
                          {"device", cell.at("device")}})
                        .dump();
    rec->db().set_config(rec->run(), rc);
    db::ModelSize ms;
    ms.size_mb = cell.at("size_mb").get<double>();
    ms.counting = cell.at("size_counting").get<std::string>();
    rec->db().set_model_size(rec->run(), ms);
    const int64_t ref_id = rec->db().add_reference_set(
        {refj.at("spec").get<std::string>(), ref_path, refj.at("kind").get<std::string>(),
         refj.at("sha256").get<std::string>(),
         refj.at("count").get<int64_t>() >= 0 ? std::optional<int64_t>(refj.at("count").get<int64_t>())
                                              : std::nullopt});
    std::vector<db::MetricRow> rows;
    for (auto it = metrics.begin(); it != metrics.end(); ++it) {
      db::MetricRow row;
      row.name = it.key();  // named with their network when not Inception: no table mixes them
      row.value = it.value()["value"].get<double>();
      if (it.value().contains("std")) row.std = it.value()["std"].get<double>();
      if (it.value().contains("noise")) row.noise = it.value()["noise"].get<double>();
      row.n = n;
      row.dataset = cell.at("dataset").get<std::string>();
      row.feature_network = netj.at("label").get<std::string>();
      row.weights_sha256 = netj.at("weights_sha256").get<std::string>();
      row.mode = netj.at("mode").get<std::string>();
      row.compat = cell.at("compat").get<std::string>();
      row.details_json = it.value().dump();
      row.reference_set_id = ref_id;
      rows.push_back(row);
    }
    rec->add_metrics(rows);
    for (const auto& l : res["latency"])
      rec->db().add_latency(rec->run(), {l.at("scope").get<std::string>(), l.at("batch").get<int64_t>(),
                                         l.at("repeats").get<int64_t>(), cell.at("device").get<std::string>(),
                                         l.at("median_ms").get<double>(), l.at("p10_ms").get<double>(),
                                         l.at("p90_ms").get<double>()});
    rec->finish();
    res["db_run"] = rec->run();
    res["db"] = rec->db().path();
  }
}
}  // namespace

std::string format_cell_row(const json& res) {
  const std::string s = res.value("metric_suffix", std::string());
  auto num = [&](const std::string& k, int digits) {
    return res.contains(k) && res[k].is_number() ? fmt::format("{:.{}f}", res[k].get<double>(), digits)
                                                 : std::string("–");
  };
  std::string out = fmt::format(
      "| Method | W/A | Steps | N | Size (MB) | FID{0} ↓ | sFID{0} ↓ | IS{0} ↑ | Precision{0} ↑ | Recall{0} "
      "↑ |\n"
      "|---|---|---|---|---|---|---|---|---|---|\n",
      s);
  out += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                     res.at("method").get<std::string>(), res.at("bits").get<std::string>(),
                     res.at("steps").get<int64_t>(), res.at("samples").get<int64_t>(), num("size_mb", 2),
                     num("fid" + s, 2), num("sfid" + s, 2), num("is" + s, 3), num("precision" + s, 4),
                     num("recall" + s, 4));
  return out;
}

}  // namespace dmeval::cli
