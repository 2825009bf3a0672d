// `dmeval stats PATH -o OUT.npz`: pytorch-fid statistics file (mu, sigma float64, compressed).
// Large sets can be split: `--shard K/N --moments` writes the exact mergeable state of one shard,
// `--merge M1 M2 ... -o OUT.npz` combines shard states into the same statistics one pass gives.
#include <cstdio>

#include "core/error.h"
#include "core/npy.h"
#include "core/torch_bridge.h"
#include "harness/cli/commands.h"
#include "harness/cli/inception_cli.h"
#include "metrics/reference_stats.h"

namespace dmeval::cli {

namespace {
std::pair<int64_t, int64_t> parse_shard(const std::string& spec) {
  size_t slash = spec.find('/');
  try {
    if (slash != std::string::npos) {
      int64_t k = std::stoll(spec.substr(0, slash)), n = std::stoll(spec.substr(slash + 1));
      if (n >= 1 && k >= 0 && k < n) return {k, n};
    }
  } catch (const std::exception&) {
  }
  fail("--shard '{}' must be K/N with 0 <= K < N", spec);
}

void write_stats(const std::string& out, const FeatureStats& st) {
  write_npz(out, {{"mu", from_torch(st.mu)}, {"sigma", from_torch(st.sigma)}}, /*compressed=*/true);
}
}  // namespace

void add_stats_command(CLI::App& app) {
  struct Opts {
    InceptionOptions inception;
    std::string path, out, shard;
    std::vector<std::string> merge;
    bool sfid = false, moments = false, features = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd =
      app.add_subcommand("stats", "pytorch-fid statistics (.npz with mu, sigma) of a folder or .npz batch");
  cmd->add_option("path", o->path,
                  "image folder, ADM-style .npz (arr_0), or CIFAR-10 batches (a cifar-10-batches-py/-bin "
                  "folder: its training split; cifar10-test:DIR for the test split)");
  cmd->add_option("-o,--out", o->out, "output .npz")->required();
  cmd->add_flag("--sfid", o->sfid, "also store mu_s, sigma_s of the spatial features (ADM reference layout)");
  cmd->add_flag("--features", o->features,
                "also store every image's pool3 features (precision/recall against this reference in "
                "dmeval run)");
  cmd->add_option("--shard", o->shard, "process only shard K of N (contiguous ranges of the sorted images)");
  cmd->add_flag("--moments", o->moments,
                "write the exact mergeable moments instead of mu/sigma (for --merge)");
  cmd->add_option("--merge", o->merge, "moment files written with --moments to combine into statistics");
  add_inception_options(cmd, o->inception);
  add_dims_option(cmd, o->inception);
  cmd->callback([o] {
    if (!o->merge.empty()) {
      if (!o->path.empty()) fail("give either an image PATH or --merge files, not both");
      std::string first_provenance, p;
      MomentAccumulator total = MomentAccumulator::load(o->merge[0], &first_provenance);
      for (size_t i = 1; i < o->merge.size(); ++i) {
        MomentAccumulator part = MomentAccumulator::load(o->merge[i], &p);
        if (p != first_provenance)
          fail(
              "{} was computed differently from {} (network, weights, preprocessing or tap differ): {} vs {}",
              o->merge[i], o->merge[0], p, first_provenance);
        total.merge(part);
      }
      FeatureStats st = total.finalize();
      write_stats(o->out, st);
      std::printf("merged %zu shards: statistics of %lld images -> %s\n", o->merge.size(),
                  static_cast<long long>(st.count), o->out.c_str());
      return;
    }
    if (o->path.empty()) fail("stats needs an image PATH (or --merge FILES)");
    if (!o->shard.empty() && !o->moments)
      fail("--shard writes a partial result: add --moments, then --merge");
    if (o->moments && (o->sfid || o->features))
      fail("--moments stores one tap's moments; run it again with --dims for other taps");
    InceptionSetup s = load_inception(o->inception);
    const std::string tap = dims_tap(o->inception.dims);
    std::vector<std::string> moment_taps = {tap};
    if (o->sfid) moment_taps.push_back("spatial");
    std::vector<std::string> keep;
    if (o->features) keep.push_back(tap);
    InceptionFeatureSink sink(s.net, s.mode, keep, moment_taps);
    std::shared_ptr<ImageSource> source = image_source_for(o->path, o->inception);
    int64_t first = 0;
    if (!o->shard.empty()) {
      auto [k, n] = parse_shard(o->shard);
      first = k * source->size() / n;
      source = slice_source(source, first, (k + 1) * source->size() / n);
    }
    PumpReport r = run_images(*source, o->inception, sink, first);
    nlohmann::ordered_json j = provenance(s, o->inception);
    if (o->moments) {
      sink.moments(tap).save(o->out, j.dump());  // provenance without counts: shards must match
    } else {
      ReferenceStats ref;
      ref.pool = sink.stats(tap);
      if (o->sfid) ref.spatial = sink.stats("spatial");
      if (o->features) ref.features = sink.features(tap);
      ref.count = r.images;
      // What a run checks before scoring against this file (network, weights, preprocessing).
      if (tap == "pool3") ref.provenance = features_key("inception", s.weights_sha256, o->inception.mode);
      write_reference_stats(o->out, ref);
    }
    j["n"] = r.images;
    j["skipped"] = r.skipped.size();
    j["output"] = o->out;
    if (!o->shard.empty()) j["shard"] = o->shard;
    if (o->inception.json)
      std::printf("%s\n", j.dump(2).c_str());
    else
      std::printf("%s of %lld images (%s preprocessing, weights %s) -> %s\n",
                  o->moments ? "moments" : "statistics", static_cast<long long>(r.images),
                  o->inception.mode.c_str(), s.weights_sha256.substr(0, 12).c_str(), o->out.c_str());
  });
}

}  // namespace dmeval::cli
