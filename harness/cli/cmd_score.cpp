// `dmeval score GEN --ref REF --metrics fid,sfid,is,precision,recall,kid`: every requested metric
// from one pass over the generated images.
#include <cstdio>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/npy.h"
#include "harness/cli/commands.h"
#include "harness/cli/db_cli.h"
#include "harness/cli/inception_cli.h"
#include "metrics/fid_suite.h"

namespace dmeval::cli {

void add_score_command(CLI::App& app) {
  struct Opts {
    InceptionOptions inception;
    DbOptions db;
    std::string gen, ref, metrics = "fid,sfid,is,precision,recall,kid", is_scheme = "torch-fidelity";
    int64_t bootstrap = 0;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd =
      app.add_subcommand("score", "FID, sFID, IS, precision/recall and KID from one pass over the images");
  cmd->add_option("gen", o->gen, "generated images: folder or .npz batch (arr_0)")->required();
  cmd->add_option("--ref", o->ref, "reference: folder, .npz batch, or statistics .npz (FID/sFID only)")
      ->required();
  cmd->add_option("--metrics", o->metrics, "comma-separated subset of fid,sfid,is,precision,recall,kid");
  cmd->add_option("--is-scheme", o->is_scheme,
                  "IS splits: torch-fidelity (10 shuffled) or adm (consecutive 5000)")
      ->check(CLI::IsMember({"torch-fidelity", "adm"}));
  cmd->add_option(
         "--bootstrap", o->bootstrap,
         "estimate the sampling noise of FID and IS from this many resamples of the generated images "
         "(recorded for regression reports; keeps the generated pool3 features in memory). Precision and "
         "recall always get their binomial noise")
      ->check(CLI::NonNegativeNumber);
  add_inception_options(cmd, o->inception);
  add_db_options(cmd, o->db);
  cmd->callback([o] {
    std::set<std::string> want;
    std::stringstream ss(o->metrics);
    for (std::string m; std::getline(ss, m, ',');) {
      if (!std::set<std::string>{"fid", "sfid", "is", "precision", "recall", "kid"}.count(m))
        fail("unknown metric '{}' (valid: fid, sfid, is, precision, recall, kid)", m);
      want.insert(m);
    }
    const bool need_pool3 = want.count("precision") || want.count("recall") || want.count("kid");
    // The reference may be images, a statistics file, or an ADM reference batch holding both
    // (`arr_0` and `mu`/`sigma`/`mu_s`/`sigma_s`): then, as ADM does, FID/sFID use the stored
    // statistics and precision/recall/KID the images. Checked before any image is processed.
    std::optional<FeatureStats> ref_stats = read_stats_file(o->ref),
                                ref_spatial = read_stats_file(o->ref, "mu_s", "sigma_s");
    const bool ref_stored_stats = ref_stats.has_value();
    bool ref_has_images = !ref_stored_stats;
    if (ref_stored_stats) {
      ref_has_images = NpzReader::open(o->ref).contains("arr_0");
      if (need_pool3 && !ref_has_images)
        fail("{}: precision, recall and KID need the reference images, not statistics", o->ref);
      if (want.count("sfid") && !ref_spatial) fail("{}: has no mu_s/sigma_s for sFID", o->ref);
    }
    InceptionSetup s = load_inception(o->inception);
    std::unique_ptr<RunRecorder> rec = RunRecorder::start(o->db);
    auto gen_source = image_source_for(o->gen, o->inception);
    auto ref_source = ref_has_images && (need_pool3 || !ref_stored_stats)
                          ? image_source_for(o->ref, o->inception)
                          : nullptr;
    // Small sets (N <= D) have singular covariances: keep their features for the exact
    // cross-Gram route of the Fréchet distance.
    constexpr int64_t kKeepFeaturesUpTo = 4096;
    const bool keep_small = ref_source && !ref_stored_stats && gen_source->size() <= kKeepFeaturesUpTo &&
                            ref_source->size() <= kKeepFeaturesUpTo;
    const bool keep_pool =
        need_pool3 || (keep_small && want.count("fid")) || (o->bootstrap > 1 && want.count("fid"));
    const bool keep_spatial = keep_small && want.count("sfid");
    auto make_sink = [&](bool logits) {
      std::vector<std::string> keep;
      if (keep_pool) keep.push_back("pool3");
      if (keep_spatial) keep.push_back("spatial");
      if (logits) keep.push_back("logits-unbiased");
      std::vector<std::string> moment_taps;
      if (want.count("fid")) moment_taps.push_back("pool3");
      if (want.count("sfid")) moment_taps.push_back("spatial");
      return InceptionFeatureSink(s.net, s.mode, keep, moment_taps);
    };
    InceptionFeatureSink gen = make_sink(want.count("is") > 0);
    configure_feature_storage(gen, o->inception, gen_source->size(), "gen");
    PumpReport gr = run_images(*gen_source, o->inception, gen);

    nlohmann::ordered_json j;
    j["provenance"] = provenance(s, o->inception);
    j["n_gen"] = gr.images;
    std::optional<InceptionFeatureSink> ref;
    if (ref_source) {
      ref.emplace(make_sink(false));
      configure_feature_storage(*ref, o->inception, ref_source->size(), "ref");
      j["n_ref"] = run_images(*ref_source, o->inception, *ref).images;
    }
    if (ref_stored_stats) {
      j["ref_statistics"] = "stored in " + o->ref + " (FID/sFID use them, as ADM does)";
    } else {
      if (want.count("fid")) ref_stats = ref->stats("pool3");
      if (want.count("sfid")) ref_spatial = ref->stats("spatial");
    }
    // The suite's one computation (metrics/fid_suite.h), on this pass's features.
    GeneratedFeatures g;
    g.n = gr.images;
    if (want.count("fid")) g.pool = gen.stats("pool3");
    if (want.count("sfid")) g.spatial = gen.stats("spatial");
    if (keep_pool) g.pool_features = gen.features("pool3");
    if (keep_spatial) g.spatial_features = gen.features("spatial");
    if (want.count("is")) g.logits = gen.features("logits-unbiased");
    ReferenceStats r;
    if (ref_stats) r.pool = *ref_stats;
    r.spatial = ref_spatial;
    FidSuiteOptions so;
    so.metrics = want;
    so.pool_desc = "pool3 (2048)";
    so.spatial_desc = "Mixed_6d.branch1x1[:7] (2023)";
    so.logits_desc = "logits without bias (1008)";
    so.bootstrap = o->bootstrap;
    so.adm = o->is_scheme == "adm";
    so.exact_small_sets = keep_small;
    if (ref && keep_pool) r.features = ref->features("pool3");
    if (ref && keep_spatial) so.ref_spatial_features = ref->features("spatial");
    const nlohmann::ordered_json m = fid_family_metrics(g, r, so);
    j["metrics"] = m;
    if (rec) {
      std::optional<int64_t> n_ref;
      if (j.contains("n_ref")) n_ref = j["n_ref"].get<int64_t>();
      const int64_t ref_id = record_reference(*rec, o->ref, o->inception, n_ref);
      rec->add_metrics(inception_metric_rows(m, j["provenance"], "dmeval", gr.images, ref_id));
      rec->finish();
      j["run_id"] = rec->run();
    }
    if (o->inception.json) {
      std::printf("%s\n", j.dump(2).c_str());
      return;
    }
    std::printf("%lld generated images, preprocessing %s, weights %s%s\n", static_cast<long long>(gr.images),
                o->inception.mode.c_str(), s.weights_sha256.substr(0, 12).c_str(),
                s.weights_known ? "" : " (not the published file)");
    for (auto it = m.begin(); it != m.end(); ++it)
      std::printf("  %-10s %.6f   [%s]\n", it.key().c_str(), it.value()["value"].get<double>(),
                  it.value().value("features", std::string()).c_str());
  });
}

}  // namespace dmeval::cli
