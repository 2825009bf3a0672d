#include "harness/cli/scoring_cli.h"

#include <fmt/format.h>

#include <filesystem>

#include "core/error.h"
#include "harness/cli/inception_cli.h"
#include "metrics/inception_features.h"
#include "metrics/shapes_features.h"

namespace dmeval::cli {

const std::vector<ScoringNetworkKind>& scoring_networks() {
  static const std::vector<ScoringNetworkKind> kNetworks = {
      {"shapes-net", "the shapes profile's classifier (dmeval's own)", 64,
       [](const ScoringNetworkRequest& r) {
         DMEVAL_CHECK(std::filesystem::exists(r.weights), "feature network weights {}: no such file",
                      r.weights);
         return shapes_scoring_network(r.weights, r.feature_batch > 0 ? r.feature_batch : 64);
       }},
      {"inception", "the FID Inception network (pt_inception-2015-12-05)", 50,
       [](const ScoringNetworkRequest& r) {
         InceptionOptions io;
         io.weights = r.weights;
         io.mode = r.compat == "adm" ? "tf" : "pytorch-fid";
         io.allow_unknown_weights = r.allow_unknown_weights;
         InceptionSetup s = load_inception(io);
         return inception_scoring_network(s.net, s.mode, io.mode, s.weights_sha256,
                                          r.feature_batch > 0 ? r.feature_batch : 50, r.device);
       }},
  };
  return kNetworks;
}

std::vector<std::string> scoring_network_names() {
  std::vector<std::string> n;
  for (const auto& k : scoring_networks()) n.push_back(k.name);
  return n;
}

const ScoringNetworkKind& scoring_network_kind(const std::string& name) {
  for (const auto& k : scoring_networks())
    if (k.name == name) return k;
  fail("--network '{}': no such scoring network ({})", name, fmt::join(scoring_network_names(), ", "));
}

}  // namespace dmeval::cli
