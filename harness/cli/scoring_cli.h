// The scoring networks of `dmeval run` by name (a registry, not an if-chain): each loads its weights,
// checks them, and returns the ScoringNetwork (metrics/scoring_network.h) whose taps the metric
// suites read.
//
//   shapes-net  the embedded profile's classifier (dmeval's own; metric names carry "[shapes-net]")
//   inception   the FID Inception network (pt_inception weights, SHA-256-checked; the papers' names)
#pragma once

#include <torch/types.h>

#include <functional>
#include <string>
#include <vector>

#include "metrics/scoring_network.h"

namespace dmeval::cli {

struct ScoringNetworkRequest {
  std::string weights;                 // the weight file
  std::string compat = "pytorch-fid";  // Inception conventions: pytorch-fid | adm
  int64_t feature_batch = 0;           // 0: the network's default
  torch::Device device = torch::kCPU;
  bool allow_unknown_weights = false;
};

struct ScoringNetworkKind {
  std::string name, description;
  int64_t default_batch = 64;
  std::function<ScoringNetwork(const ScoringNetworkRequest&)> load;
};

const std::vector<ScoringNetworkKind>& scoring_networks();
std::vector<std::string> scoring_network_names();
const ScoringNetworkKind& scoring_network_kind(const std::string& name);  // throws listing them

}  // namespace dmeval::cli
