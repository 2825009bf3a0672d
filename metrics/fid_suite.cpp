#include "metrics/fid_suite.h"

#include <torch/torch.h>

#include "core/error.h"
#include "metrics/bootstrap.h"
#include "metrics/chunked_features.h"
#include "metrics/frechet.h"
#include "metrics/inception_score.h"
#include "metrics/kid.h"
#include "metrics/precision_recall.h"

namespace dmeval {

nlohmann::ordered_json fid_family_metrics(const GeneratedFeatures& gen, const ReferenceStats& ref,
                                          const FidSuiteOptions& o) {
  using json = nlohmann::ordered_json;
  std::set<std::string> want = o.metrics;
  if (want.empty()) {
    want = {"fid", "is"};
    if (ref.spatial) want.insert("sfid");
    if (ref.features.defined()) want.insert({"precision", "recall"});
  }
  const std::string& s = o.suffix;
  const int64_t boot = o.bootstrap;
  auto need = [&](bool ok, const char* metric, const char* what) {
    DMEVAL_CHECK(ok, "{}: {} missing", metric, what);
  };
  auto distance = [&](const FeatureStats& a, const FeatureStats& b, const torch::Tensor& fa,
                      const torch::Tensor& fb) {
    FrechetResult f = frechet_distance(a, b);
    if (f.singular && o.exact_small_sets && fa.defined() && fb.defined() && fa.size(0) > 0 && fb.size(0) > 0)
      f = frechet_distance_features(fa, fb);
    return f;
  };

  json metrics;  // name -> {value, noise, features}
  if (want.count("fid")) {
    need(gen.pool.has_value(), "fid", "the generated pool moments");
    FrechetResult fd = distance(*gen.pool, ref.pool, gen.pool_features, ref.features);
    metrics["fid" + s] = {
        {"value", fd.value}, {"features", o.pool_desc}, {"route", frechet_route_name(fd.route)}};
    if (boot > 1) metrics["fid" + s]["noise"] = fid_bootstrap_std(gen.pool_features, ref.pool, {boot, 2020});
  }
  if (want.count("sfid")) {
    need(gen.spatial.has_value() && ref.spatial.has_value(), "sfid", "spatial moments");
    FrechetResult sf = distance(*gen.spatial, *ref.spatial, gen.spatial_features, o.ref_spatial_features);
    metrics["sfid" + s] = {
        {"value", sf.value}, {"features", o.spatial_desc}, {"route", frechet_route_name(sf.route)}};
  }
  if (want.count("is")) {
    need(gen.logits.defined(), "is", "the generated logits");
    auto is_of = [&](const torch::Tensor& l) {
      return o.adm ? inception_score_adm(l)
                   : inception_score_torch_fidelity(l, std::min<int64_t>(10, l.size(0)));
    };
    InceptionScore is = is_of(gen.logits);
    metrics["is" + s] = {
        {"value", is.mean}, {"std", is.std}, {"scheme", is.scheme}, {"features", o.logits_desc}};
    if (boot > 1)
      metrics["is" + s]["noise"] =
          bootstrap_std(gen.logits, [&](const torch::Tensor& x) { return is_of(x).mean; }, {boot, 2020});
  }
  if (want.count("precision") || want.count("recall")) {
    need(gen.pool_features.defined() && ref.features.defined(), "precision/recall",
         "per-image pool features");
    PrecisionRecall pr = precision_recall(ref.features, gen.pool_features);
    if (want.count("precision"))
      metrics["precision" + s] = {{"value", pr.precision},
                                  {"k", 3},
                                  {"features", o.pool_desc},
                                  {"noise", binomial_std(pr.precision, gen.pool_features.size(0))}};
    if (want.count("recall"))
      metrics["recall" + s] = {{"value", pr.recall},
                               {"k", 3},
                               {"features", o.pool_desc},
                               {"noise", binomial_std(pr.recall, ref.features.size(0))}};
  }
  if (want.count("kid")) {
    need(gen.pool_features.defined() && ref.features.defined(), "kid", "per-image pool features");
    const torch::Tensor &g = gen.pool_features, &r = ref.features;
    const bool subsets = g.size(0) >= 1000 && r.size(0) >= 1000;
    KernelDistance k = subsets ? kid_torch_fidelity(g, r) : kid_full(g, r);
    metrics["kid" + s] = {
        {"value", k.mean},
        {"std", k.std},
        {"subsets", k.subsets},
        {"subset_size", k.subset_size},
        {"scheme", subsets ? "torch-fidelity (100 x 1000, RandomState(2020))" : "one subset = all rows"}};
  }
  return metrics;
}

nlohmann::ordered_json fid_family_scores(const FidSuiteInputs& in, const ReferenceStats& ref) {
  // Exact moments streamed from the chunks (resumed and sharded runs agree bit for bit).
  GeneratedFeatures gen;
  gen.n = in.n;
  gen.pool = chunked_moments(in.features_dir, "pool", in.n, in.provenance).finalize();
  gen.pool_features = load_chunked_features(in.features_dir, "pool", in.n, in.provenance);
  gen.logits = load_chunked_features(in.features_dir, "logits", in.n, in.provenance);
  if (ref.spatial) gen.spatial = chunked_moments(in.features_dir, "spatial", in.n, in.provenance).finalize();
  return fid_family_metrics(gen, ref, in.options);
}

std::vector<MetricColumn> fid_family_columns(const std::string& s) {
  return {{"fid" + s, "FID" + s + " ↓", 2},
          {"sfid" + s, "sFID" + s + " ↓", 2},
          {"is" + s, "IS" + s + " ↑", 3},
          {"precision" + s, "Precision" + s + " ↑", 4},
          {"recall" + s, "Recall" + s + " ↑", 4}};
}

}  // namespace dmeval
