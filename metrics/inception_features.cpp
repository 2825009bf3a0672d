#include "metrics/inception_features.h"

#include <ATen/Parallel.h>
#include <fmt/format.h>

#include "core/error.h"

namespace dmeval {

namespace {
struct TapInfo {
  const char* name;
  int64_t dim;
  bool InceptionTaps::*flag;
  torch::Tensor InceptionOutput::*field;
};
const TapInfo kTaps[] = {
    {"pool3", 2048, &InceptionTaps::pool3, &InceptionOutput::pool3},
    {"logits", 1008, &InceptionTaps::logits, &InceptionOutput::logits},
    {"logits-unbiased", 1008, &InceptionTaps::logits_unbiased, &InceptionOutput::logits_unbiased},
    {"spatial", 2023, &InceptionTaps::spatial, &InceptionOutput::spatial},
    {"pool-64", 64, &InceptionTaps::pool_64, &InceptionOutput::pool_64},
    {"pool-192", 192, &InceptionTaps::pool_192, &InceptionOutput::pool_192},
    {"mixed-6e-768", 768, &InceptionTaps::mixed_6e_768, &InceptionOutput::mixed_6e_768},
};
const TapInfo& tap_info(const std::string& name) {
  for (const auto& t : kTaps)
    if (name == t.name) return t;
  std::string valid;
  for (const auto& t : kTaps) valid += (valid.empty() ? "" : ", ") + std::string(t.name);
  fail("unknown Inception tap '{}' (valid: {})", name, valid);
}
}  // namespace

const std::vector<std::string>& inception_tap_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& t : kTaps) v.emplace_back(t.name);
    return v;
  }();
  return names;
}

InceptionTaps taps_from_names(const std::vector<std::string>& names) {
  InceptionTaps taps;
  taps.pool3 = false;
  for (const auto& n : names) taps.*(tap_info(n).flag) = true;
  return taps;
}

int64_t tap_dim(const std::string& name) {
  return tap_info(name).dim;
}

ScoringNetwork inception_scoring_network(FidInception net, PreprocessMode mode, const std::string& mode_name,
                                         const std::string& weights_sha256, int64_t micro_batch,
                                         torch::Device device) {
  DMEVAL_CHECK(micro_batch >= 1, "micro-batch {}", micro_batch);
  ScoringNetwork s;
  s.name = "inception";
  s.label = "FID Inception (pt_inception-2015-12-05)";  // as `dmeval score` records it
  s.metric_suffix = "";
  s.weights_sha256 = weights_sha256;
  s.mode = mode_name;
  s.provenance = fmt::format("FID Inception {}; {}; micro-batch {}", weights_sha256.substr(0, 16), mode_name,
                             micro_batch);
  s.pool_desc = "pool3 (2048)";
  s.spatial_desc = "Mixed_6d.branch1x1[:7] (2023)";
  s.logits_desc = "logits without bias (1008)";
  s.pool_dim = 2048;
  s.spatial_dim = 2023;
  const InceptionTaps taps = taps_from_names({"pool3", "spatial", "logits-unbiased"});
  net->eval();
  net->to(device);
  s.extract = [net, mode, taps, micro_batch, device](const ImageBatch& b) mutable {
    torch::NoGradGuard no_grad;
    const int64_t n = static_cast<int64_t>(b.images.size());
    std::vector<torch::Tensor> pool, spatial, logits;
    for (int64_t s0 = 0; s0 < n; s0 += micro_batch) {
      // A full micro-batch always (the last one padded with copies): kernels are chosen by shape.
      const int64_t m = std::min(micro_batch, n - s0);
      std::vector<torch::Tensor> inputs(static_cast<size_t>(micro_batch));
      at::parallel_for(0, micro_batch, 1, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i)
          inputs[static_cast<size_t>(i)] =
              preprocess(b.images[static_cast<size_t>(s0 + std::min(i, m - 1))], mode);
      });
      InceptionOutput out = net->forward(torch::stack(inputs).to(device), taps);
      pool.push_back(out.pool3.slice(0, 0, m).cpu().contiguous());
      spatial.push_back(out.spatial.slice(0, 0, m).cpu().contiguous());
      logits.push_back(out.logits_unbiased.slice(0, 0, m).cpu().contiguous());
    }
    if (pool.empty())
      return std::map<std::string, torch::Tensor>{{"pool", torch::empty({0, 2048})},
                                                  {"spatial", torch::empty({0, 2023})},
                                                  {"logits", torch::empty({0, 1008})}};
    return std::map<std::string, torch::Tensor>{{"pool", torch::cat(pool, 0)},
                                                {"spatial", torch::cat(spatial, 0)},
                                                {"logits", torch::cat(logits, 0)}};
  };
  return s;
}

InceptionFeatureSink::InceptionFeatureSink(FidInception net, PreprocessMode mode,
                                           std::vector<std::string> keep,
                                           std::vector<std::string> moment_taps)
    : net_(std::move(net)), mode_(mode), keep_(std::move(keep)) {
  std::vector<std::string> needed = keep_;
  for (const auto& tap : moment_taps) {
    moments_.emplace(tap, MomentAccumulator(tap_dim(tap)));
    needed.push_back(tap);
  }
  taps_ = taps_from_names(needed);
}

const MomentAccumulator& InceptionFeatureSink::moments(const std::string& tap) const {
  auto it = moments_.find(tap);
  if (it == moments_.end()) fail("no moments were accumulated for tap '{}'", tap);
  return it->second;
}

FeatureStats InceptionFeatureSink::stats(const std::string& tap) const {
  return moments(tap).finalize();
}

void InceptionFeatureSink::consume(const ImageBatch& batch) {
  torch::NoGradGuard no_grad;
  const int64_t n = static_cast<int64_t>(batch.images.size());
  std::vector<torch::Tensor> inputs(n);
  at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) inputs[i] = preprocess(batch.images[i], mode_);
  });
  InceptionOutput out = net_->forward(torch::stack(inputs), taps_);
  for (auto& [tap, acc] : moments_) acc.add(batch.first_index, out.*(tap_info(tap).field));
  for (const auto& tap : keep_) {
    torch::Tensor t = out.*(tap_info(tap).field);
    if (!torch::isfinite(t).all().item<bool>())
      fail("NaN or Inf in Inception features of images {}..{}", batch.first_index, batch.first_index + n - 1);
    auto& store = stored_[tap];
    if (!store)
      store = spill_dir_.empty()
                  ? std::make_unique<FeatureStore>(t.size(1))
                  : std::make_unique<FeatureStore>(t.size(1), spill_dir_ + "/" + spill_prefix_ + tap + ".npy",
                                                   keep_files_);
    store->append(t);
  }
  count_ += n;
}

torch::Tensor InceptionFeatureSink::features(const std::string& tap) const {
  auto it = stored_.find(tap);
  if (it == stored_.end() || !it->second) return torch::empty({0, tap_dim(tap)}, torch::kFloat32);
  return it->second->rows();
}

void InceptionFeatureSink::spill_to(const std::string& dir, const std::string& prefix, bool keep_files) {
  if (count_ > 0) fail("feature spilling must be set before the first batch");
  spill_dir_ = dir;
  spill_prefix_ = prefix;
  keep_files_ = keep_files;
}

std::string InceptionFeatureSink::feature_file(const std::string& tap) const {
  auto it = stored_.find(tap);
  return it != stored_.end() && it->second && it->second->spilled() ? it->second->path() : std::string();
}

}  // namespace dmeval
