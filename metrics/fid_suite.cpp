#include "metrics/fid_suite.h"

#include <torch/torch.h>

#include "metrics/bootstrap.h"
#include "metrics/chunked_features.h"
#include "metrics/frechet.h"
#include "metrics/inception_score.h"
#include "metrics/precision_recall.h"

namespace dmeval {

nlohmann::ordered_json fid_family_scores(const FidSuiteInputs& in, const ReferenceStats& ref) {
  using json = nlohmann::ordered_json;
  const std::string& fdir = in.features_dir;
  const std::string& s = in.suffix;
  const int64_t n = in.n;
  // Exact moments streamed from the chunks (resumed and sharded runs agree bit for bit).
  const FeatureStats gen_pool = chunked_moments(fdir, "pool", n, in.provenance).finalize();
  torch::Tensor gen_features = load_chunked_features(fdir, "pool", n, in.provenance);
  torch::Tensor gen_logits = load_chunked_features(fdir, "logits", n, in.provenance);
  const int64_t boot = in.bootstrap;

  json metrics;  // name -> {value, noise, features}
  FrechetResult fd = frechet_distance(gen_pool, ref.pool);
  metrics["fid" + s] = {
      {"value", fd.value}, {"features", in.pool_desc}, {"route", frechet_route_name(fd.route)}};
  if (boot > 1) metrics["fid" + s]["noise"] = fid_bootstrap_std(gen_features, ref.pool, {boot, 2020});
  if (ref.spatial) {
    const FeatureStats gen_spatial = chunked_moments(fdir, "spatial", n, in.provenance).finalize();
    FrechetResult sf = frechet_distance(gen_spatial, *ref.spatial);
    metrics["sfid" + s] = {
        {"value", sf.value}, {"features", in.spatial_desc}, {"route", frechet_route_name(sf.route)}};
  }
  auto is_of = [&](const torch::Tensor& l) {
    return in.adm ? inception_score_adm(l)
                  : inception_score_torch_fidelity(l, std::min<int64_t>(10, l.size(0)));
  };
  InceptionScore is = is_of(gen_logits);
  metrics["is" + s] = {
      {"value", is.mean}, {"std", is.std}, {"scheme", is.scheme}, {"features", in.logits_desc}};
  if (boot > 1)
    metrics["is" + s]["noise"] =
        bootstrap_std(gen_logits, [&](const torch::Tensor& x) { return is_of(x).mean; }, {boot, 2020});
  if (ref.features.defined()) {
    PrecisionRecall pr = precision_recall(ref.features, gen_features);
    metrics["precision" + s] = {{"value", pr.precision},
                                {"k", 3},
                                {"features", in.pool_desc},
                                {"noise", binomial_std(pr.precision, n)}};
    metrics["recall" + s] = {{"value", pr.recall},
                             {"k", 3},
                             {"features", in.pool_desc},
                             {"noise", binomial_std(pr.recall, ref.features.size(0))}};
  }
  return metrics;
}

std::vector<MetricColumn> fid_family_columns(const std::string& s) {
  return {{"fid" + s, "FID" + s + " ↓", 2},
          {"sfid" + s, "sFID" + s + " ↓", 2},
          {"is" + s, "IS" + s + " ↑", 3},
          {"precision" + s, "Precision" + s + " ↑", 4},
          {"recall" + s, "Recall" + s + " ↑", 4}};
}

}  // namespace dmeval
