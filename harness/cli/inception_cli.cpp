#include "harness/cli/inception_cli.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include <unistd.h>

#include "core/checkpoint.h"
#include "core/cifar10.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/image_folder.h"
#include "core/known_files.h"
#include "core/npy.h"
#include "core/torch_bridge.h"
#include "harness/cli/db_cli.h"

namespace dmeval::cli {

namespace {
constexpr const char* kWeightsName = "pt_inception-2015-12-05-6726825d.pth";

std::string default_weights_path() {
  if (const char* env = std::getenv("DMEVAL_WEIGHTS")) return env;
  std::string hub;
  if (const char* th = std::getenv("TORCH_HOME"))
    hub = std::string(th) + "/hub/checkpoints";
  else if (const char* home = std::getenv("HOME"))
    hub = std::string(home) + "/.cache/torch/hub/checkpoints";
  return hub + "/" + kWeightsName;
}
}  // namespace

void add_inception_options(CLI::App* cmd, InceptionOptions& o, bool with_mode) {
  cmd->add_option("--weights", o.weights,
                  "FID Inception weights (default: $DMEVAL_WEIGHTS, else ~/.cache/torch/hub/checkpoints/" +
                      std::string(kWeightsName) + ")");
  if (with_mode)
    cmd->add_option("--mode", o.mode, "preprocessing of the tool to reproduce")
        ->check(CLI::IsMember(preprocess_mode_names()));
  cmd->add_option("--batch", o.batch, "images per network batch")->check(CLI::PositiveNumber);
  cmd->add_flag("--skip-bad", o.skip_bad, "report unreadable images and continue without them");
  cmd->add_flag("--allow-unknown-weights", o.allow_unknown_weights,
                "accept a weight file whose SHA-256 is not the published one (recorded with the result)");
  cmd->add_flag(
      "--reference-network", o.reference_network,
      "run the network exactly as the tools do (conv, BN, ReLU) instead of the fast path (BN folded into "
      "the convolutions, channels-last; equal within the golden tolerance, about 2x faster)");
  cmd->add_flag("--json", o.json, "machine-readable output");
  cmd->add_option(
      "--feature-dir", o.feature_dir,
      "keep the per-image features that precision/recall, KID and IS need as float32 .npy files in "
      "this folder (memory-mapped, not held in memory). Without it, sets of more than 20000 images "
      "use a temporary file that is deleted as soon as it is mapped");
}

void configure_feature_storage(InceptionFeatureSink& sink, const InceptionOptions& o, int64_t images,
                               const std::string& label) {
  if (!o.feature_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(o.feature_dir, ec);
    if (ec) fail("{}: cannot create the feature folder: {}", o.feature_dir, ec.message());
    sink.spill_to(o.feature_dir, label + "-", /*keep_files=*/true);
  } else if (images > kSpillFeaturesAbove) {
    sink.spill_to(std::filesystem::temp_directory_path().string(),
                  "dmeval-" + std::to_string(getpid()) + "-" + label + "-", /*keep_files=*/false);
  }
}

void add_dims_option(CLI::App* cmd, InceptionOptions& o) {
  cmd->add_option("--dims", o.dims,
                  "features for the statistics, as pytorch-fid's --dims: 2048 (pool3), 768 (Mixed_6e), 192 "
                  "(second max "
                  "pool), 64 (first max pool)")
      ->check(CLI::IsMember({2048, 768, 192, 64}));
}

std::string dims_tap(int dims) {
  switch (dims) {
    case 2048: return "pool3";
    case 768: return "mixed-6e-768";
    case 192: return "pool-192";
    case 64: return "pool-64";
  }
  fail("--dims {} is not one of 2048, 768, 192, 64", dims);
}

InceptionSetup load_inception(const InceptionOptions& o) {
  InceptionSetup s;
  s.weights_path = o.weights.empty() ? default_weights_path() : o.weights;
  const KnownFile* known = find_known_file_by_name(kWeightsName);
  if (!std::filesystem::exists(s.weights_path))
    fail(
        "FID Inception weights not found at {}. Put {} there (SHA-256 {}, from {}) or pass --weights FILE / "
        "set "
        "DMEVAL_WEIGHTS.",
        s.weights_path, kWeightsName, known->sha256, known->url);
  s.weights_sha256 = sha256_file(s.weights_path);
  s.weights_known = s.weights_sha256 == known->sha256;
  if (!s.weights_known && !o.allow_unknown_weights)
    fail(
        "{}: SHA-256 {} is not the published FID Inception weights ({}); results would not be comparable. "
        "Pass "
        "--allow-unknown-weights to use it anyway (the hash is recorded with every result).",
        s.weights_path, s.weights_sha256, known->sha256);
  s.mode = *preprocess_mode_from_name(o.mode);
  s.net->load(Checkpoint::open(s.weights_path));
  s.net->set_fast_path(!o.reference_network);
  return s;
}

std::unique_ptr<ImageSource> image_source_for(const std::string& path, const InceptionOptions& o) {
  // torch-fidelity (and ADM, which reads .npz) discover files differently from pytorch-fid.
  FolderRule rule = o.mode == "tf" ? FolderRule::kTorchFidelity : FolderRule::kPytorchFid;
  auto source = open_image_source(path, rule);
  if (source->size() == 0) fail("{}: no images found ({})", path, source->describe());
  return source;
}

PumpReport run_images(const std::string& path, const InceptionOptions& o, InceptionFeatureSink& sink) {
  return run_images(*image_source_for(path, o), o, sink);
}

PumpReport run_images(const ImageSource& source, const InceptionOptions& o, InceptionFeatureSink& sink,
                      int64_t first_index) {
  PumpOptions po;
  po.first_index = first_index;
  po.batch_size = o.batch;
  po.skip_bad = o.skip_bad;
  PumpReport r = pump(source, sink, po);
  for (const auto& s : r.skipped) std::fprintf(stderr, "dmeval: skipped %s\n", s.c_str());
  return r;
}

int64_t record_reference(RunRecorder& rec, const std::string& path, const InceptionOptions& o,
                         std::optional<int64_t> count) {
  std::error_code ec;
  // CIFAR-10 batches: the hashes of the batch files.
  for (const char* split : {"train", "test"}) {
    const std::string prefix = std::string("cifar10-") + split + ":";
    if (path.rfind(prefix, 0) == 0)
      return rec.reference_set(path.substr(prefix.size()), std::string("cifar10-") + split, count,
                               cifar10_batch_files(path.substr(prefix.size()), split));
  }
  if (std::filesystem::is_directory(path, ec) && !cifar10_batch_files(path, "train").empty())
    return rec.reference_set(path, "cifar10-train", count, cifar10_batch_files(path, "train"));
  if (std::filesystem::is_directory(path, ec)) {
    FolderRule rule = o.mode == "tf" ? FolderRule::kTorchFidelity : FolderRule::kPytorchFid;
    return rec.reference_set(path, "images", count, list_images(path, rule));
  }
  std::string kind = "images";  // an .npz image batch
  if (read_stats_file(path)) kind = NpzReader::open(path).contains("arr_0") ? "adm-batch" : "statistics";
  return rec.reference_set(path, kind, count);
}

nlohmann::ordered_json provenance(const InceptionSetup& s, const InceptionOptions& o) {
  return {{"feature_network", "FID Inception (pt_inception-2015-12-05)"},
          {"weights", s.weights_path},
          {"weights_sha256", s.weights_sha256},
          {"weights_published", s.weights_known},
          {"preprocessing", o.mode},
          {"features", dims_tap(o.dims)},
          {"network_path",
           o.reference_network ? "reference (conv, BN, ReLU)" : "fast (BN folded, channels-last)"}};
}

std::optional<FeatureStats> read_stats_file(const std::string& path, const std::string& mu_key,
                                            const std::string& sigma_key) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return std::nullopt;
  NpzReader z = NpzReader::open(path);
  if (!z.contains(mu_key) || !z.contains(sigma_key)) return std::nullopt;
  FeatureStats st;
  st.mu = to_torch(z.read(mu_key)).to(torch::kFloat64);
  st.sigma = to_torch(z.read(sigma_key)).to(torch::kFloat64);
  if (st.mu.dim() != 1 || st.sigma.dim() != 2 || st.sigma.size(0) != st.mu.size(0) ||
      st.sigma.size(1) != st.mu.size(0))
    fail("{}: {} {} and {} {} are not a mean and covariance", path, mu_key, shape_str(st.mu.sizes().vec()),
         sigma_key, shape_str(st.sigma.sizes().vec()));
  return st;
}

}  // namespace dmeval::cli
