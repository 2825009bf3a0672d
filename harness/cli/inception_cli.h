// What the Inception commands (features, stats, fid, score) share: weight-file resolution and
// verification, the preprocessing mode, and turning an input path into features or statistics.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <string>

#include "metrics/frechet.h"
#include "metrics/image_source.h"
#include "metrics/inception_features.h"

namespace dmeval::cli {

struct InceptionOptions {
  std::string weights;  // empty: DMEVAL_WEIGHTS, then the torch hub cache
  std::string mode = "pytorch-fid";
  int64_t batch = 50;
  bool skip_bad = false;
  bool allow_unknown_weights = false;
  int dims = 2048;                 // pytorch-fid --dims: which tap FID statistics use
  bool reference_network = false;  // plain conv->BN->ReLU instead of the fast path
  bool json = false;
  std::string feature_dir;  // keep per-image features as .npy files here
};

// Above this many images, stored per-image features go to a temporary memory-mapped file even
// without --feature-dir, so memory does not grow with N.
constexpr int64_t kSpillFeaturesAbove = 20000;
// Applies --feature-dir (or the automatic spill for large sets) to a sink; `label` names the files
// ("gen", "ref").
void configure_feature_storage(InceptionFeatureSink& sink, const InceptionOptions& o, int64_t images,
                               const std::string& label);

void add_inception_options(CLI::App* cmd, InceptionOptions& o, bool with_mode = true);
// pytorch-fid's --dims 2048|768|192|64 and the tap each selects.
void add_dims_option(CLI::App* cmd, InceptionOptions& o);
std::string dims_tap(int dims);

struct InceptionSetup {
  FidInception net;
  PreprocessMode mode;
  std::string weights_path;
  std::string weights_sha256;
  bool weights_known = false;  // the published pt_inception file
};

// Resolves and checks the weight file (SHA-256 against the published one; any other file needs
// --allow-unknown-weights) and loads the network.
InceptionSetup load_inception(const InceptionOptions& o);

// The images of `path` (folder or .npz batch), discovered with the rule of the chosen tool.
std::unique_ptr<ImageSource> image_source_for(const std::string& path, const InceptionOptions& o);
// Runs every image of the source through the sink; prints skipped files.
PumpReport run_images(const ImageSource& source, const InceptionOptions& o, InceptionFeatureSink& sink,
                      int64_t first_index = 0);
PumpReport run_images(const std::string& path, const InceptionOptions& o, InceptionFeatureSink& sink);

// Records `path` as a reference set of the run: a statistics/ADM .npz by its file hash, a folder by
// the hashes of the files the chosen tool's rule picks.
class RunRecorder;
int64_t record_reference(RunRecorder& rec, const std::string& path, const InceptionOptions& o,
                         std::optional<int64_t> count);

// Provenance every result carries.
nlohmann::ordered_json provenance(const InceptionSetup& s, const InceptionOptions& o);

// A stats .npz (mu/sigma, optionally mu_s/sigma_s) if `path` is one; nullopt otherwise.
std::optional<FeatureStats> read_stats_file(const std::string& path, const std::string& mu_key = "mu",
                                            const std::string& sigma_key = "sigma");

}  // namespace dmeval::cli
