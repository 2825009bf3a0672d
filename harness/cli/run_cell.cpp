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
#include "harness/cli/scoring_cli.h"
#include "harness/sampling/chunk_runner.h"
#include "harness/sampling/timing.h"
#include "metrics/bootstrap.h"
#include "metrics/chunked_features.h"
#include "metrics/fid_suite.h"
#include "metrics/frechet.h"
#include "metrics/image_source.h"
#include "metrics/inception_score.h"
#include "metrics/metric_suite.h"
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

// The scoring network the options name, loaded (harness/cli/scoring_cli: the registry).
ScoringNetwork load_scoring_network(const RunCellOptions& o) {
  ScoringNetworkRequest r;
  r.weights = profile_path(o.network_weights);
  r.compat = o.compat;
  r.feature_batch = o.feature_batch;
  r.device = parse_device(o.device);
  r.allow_unknown_weights = o.model.allow_unknown;
  return scoring_network_kind(o.network).load(r);
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

// The method's calibration settings: the profile's budget for it, then --calib (which wins).
std::vector<std::string> merged_calib(const std::optional<Profile>& p, const std::string& method,
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
json measure_latency(QuantizedModel& model, const GenerationPipeline& g, const std::vector<int64_t>& shape,
                     int64_t t_first, const RunCellOptions& o, torch::Device device) {
  const UNetRunOptions saved = model.run_options();
  json latency = json::array();
  std::vector<int64_t> batches = {1};
  if (o.batch != 1) batches.push_back(o.batch);
  for (int64_t b : batches) {
    UNetRunOptions at_b = saved;
    at_b.micro_batch = b;
    model.set_run_options(at_b);
    EpsModel eps = model.eps(g.conditioning_for(0, b));
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
      DiffusionImageProducer producer(g.model.model, eps, o.sampler, make_noise_source("per-image", 0),
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

std::optional<json> run_cell(const RunCellOptions& options) {
  RunCellOptions o = options;
  if (!o.profile.empty())
    o.quant.calib = merged_calib(find_profile(o.profile), o.quant.method, o.quant.calib);
  DMEVAL_CHECK(o.samples >= 2, "--samples {} must be at least 2", o.samples);
  DMEVAL_CHECK(!o.out.empty(), "no run folder (--out)");
  // Unknown methods (listing the valid ones) and unsupported bits fail before any work.
  check_method_bits(quant_method(o.quant.method), parse_bits(o.quant.bits));
  DMEVAL_CHECK(o.batch >= 1 && o.micro_batch >= 1, "--batch and --micro-batch must be at least 1");
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

  GenerationBuild gb;
  gb.always_quantize = true;  // every cell carries a calibration record, fp included
  GenerationPipeline g = build_generation(o, log, gb);
  const LoadedModel& m = g.model;
  const QuantizedSetup& q = *g.quant;
  const auto& seq = g.timesteps;
  const auto& shape = g.sample_shape;
  const double size_mb = g.size_mb, scale_bytes = g.scale_bytes;
  std::unique_ptr<DiffusionImageProducer> producer_ptr =
      g.producer(o.sampler, make_noise_source("per-image", static_cast<uint64_t>(o.seed)));
  DiffusionImageProducer& producer = *producer_ptr;
  json id;
  id["command"] = "run";
  id["model"] = m.identity();
  id["method"] = q.record.method;
  id["bits"] = q.record.bits.str();
  id["calibration_key"] = q.record.key();
  id["calibration_settings"] = q.record.settings;
  id["sampler"] = g.describe_sampler(o.sampler);
  id["samples"] = o.samples;
  id["seed"] = o.seed;
  id["noise"] = producer.noise().describe();
  g.add_identity(id);
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
  ChunkLedger ledger(o.out + "/.dmeval", id);                   // refuses a folder that holds another run
  write_json(o.out + "/options.json", run_options_to_json(o));  // what --resume continues with

  // What the row needs besides the scores, written before sampling so any process can score.
  json cell;
  cell["profile"] = o.profile;
  cell["dataset"] = m.model->dataset();
  cell["model"] = m.model->name();
  cell["model_identity"] = m.identity();
  if (!m.model->weights_sha256().empty()) cell["checkpoint_sha256"] = m.model->weights_sha256();
  cell["method"] = q.record.method;
  cell["bits"] = q.record.bits.str();
  cell["w_bits"] = q.record.bits.weight;
  cell["a_bits"] = q.record.bits.act;
  cell["sampler"] = g.describe_sampler(o.sampler);
  g.add_identity(cell);
  cell["steps"] = static_cast<int64_t>(seq.size());
  cell["eta"] = o.sampler.eta;
  cell["samples"] = o.samples;
  cell["seed"] = o.seed;
  cell["size_mb"] = size_mb;
  if (scale_bytes >= 0) cell["size_mb_with_scales"] = size_mb + scale_bytes / 1e6;
  cell["size_counting"] = "Conv2d/Linear weights at the method's bits, the rest fp32, no scales";
  if (q.record.report.contains("cost")) {
    // Trained binarized methods count as their papers do (spec binarydm.md §9), formulas recorded.
    const json& c = q.record.report["cost"];
    cell["size_mb"] = c.at("size_mb");
    cell["size_counting"] = c.at("size_formula");
    cell["fp_size_mb"] = c.at("fp32_mb");
    const json& macs = c.at("macs");
    const double flops = macs.at("float").get<double>() + macs.at("attention").get<double>();
    cell["flops"] = flops;
    cell["bops"] = (c.at("ops_g").get<double>() * 1e9 - flops) * 64.0;
    cell["ops_formula"] = c.at("ops_formula");
  } else if (q.record.method == "fp") {
    // The float cell: MACs of one network pass at batch 1, as FLOPs (attention matmuls included).
    MacCount mc = count_macs([&] {
      std::vector<int64_t> s1 = shape;
      s1.insert(s1.begin(), 1);
      Conditioning c1;
      if (m.model->num_classes() > 0) c1.class_labels = torch::zeros({1}, torch::kLong);
      m.model->forward(torch::zeros(s1, torch::TensorOptions().device(device)),
                       torch::zeros({1}, torch::TensorOptions().dtype(torch::kLong).device(device)), c1);
    });
    cell["flops"] = static_cast<double>(mc.total());
  }
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
  cell["suite"] = "fid-family";  // generation runs score features against a reference
  if (!o.sources.empty()) cell["option_sources"] = json(o.sources);
  write_json(o.out + "/cell.json", cell);

  // Latency, once per folder (a resumed run keeps the first measurement).
  const std::string latency_file = o.out + "/latency.json";
  if (o.latency_repeats > 0 && !fs::exists(latency_file)) {
    log(fmt::format("latency: UNet step at batch 1 and {} ({} repeats), whole sampling per image ({})",
                    o.batch, o.latency_repeats, o.e2e_repeats));
    write_json(latency_file, measure_latency(*q.model, g, shape, seq.back(), o, device));
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

  // The suite the cell was set up with (folders of earlier versions: the FID family).
  const std::string suite_name = cell.value("suite", std::string("fid-family"));
  const MetricSuite& suite = metric_suite(suite_name);
  DMEVAL_CHECK(suite.name == "fid-family", "{}: suite {} scores image pairs, not a generation run's features",
               dir, suite.name);
  FidSuiteInputs in;
  in.features_dir = fdir;
  in.n = n;
  in.provenance = provenance;
  in.options.suffix = suffix;
  in.options.pool_desc = netj.at("pool").get<std::string>();
  in.options.spatial_desc = netj.at("spatial").get<std::string>();
  in.options.logits_desc = netj.at("logits").get<std::string>();
  in.options.bootstrap = cell.value("bootstrap", int64_t{0});
  in.options.adm = cell.at("compat") == "adm";
  const json metrics = fid_family_scores(in, ref);

  json res;
  for (const char* k : {"method", "bits", "steps", "samples", "size_mb"}) res[k] = cell.at(k);
  if (cell.contains("size_mb_with_scales")) res["size_mb_with_scales"] = cell["size_mb_with_scales"];
  res["profile"] = cell.at("profile");
  res["suite"] = suite.name;
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
    if (cell.contains("flops")) ms.flops = cell["flops"].get<double>();
    if (cell.contains("bops")) ms.bops = cell["bops"].get<double>();
    if (cell.contains("fp_size_mb")) ms.fp_size_mb = cell["fp_size_mb"].get<double>();
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
  const MetricSuite& suite = metric_suite(res.value("suite", std::string("fid-family")));
  const std::string size = res.contains("size_mb") && res["size_mb"].is_number()
                               ? fmt::format("{:.2f}", res["size_mb"].get<double>())
                               : "–";
  return markdown_row({{"Method", res.at("method").get<std::string>()},
                       {"W/A", res.at("bits").get<std::string>()},
                       {"Steps", std::to_string(res.at("steps").get<int64_t>())},
                       {"N", std::to_string(res.at("samples").get<int64_t>())},
                       {"Size (MB)", size}},
                      suite.columns(res.value("metric_suffix", std::string())), res);
}

}  // namespace dmeval::cli
