#include "metrics/reference_stats.h"

#include <torch/torch.h>

#include <filesystem>

#include "core/error.h"
#include "core/npy.h"
#include "core/torch_bridge.h"

namespace dmeval {

namespace {
FeatureStats read_pair(const NpzReader& z, const std::string& mu_key, const std::string& sigma_key) {
  FeatureStats st;
  st.mu = to_torch(z.read(mu_key)).to(torch::kFloat64);
  st.sigma = to_torch(z.read(sigma_key)).to(torch::kFloat64);
  if (st.mu.dim() != 1 || st.sigma.dim() != 2 || st.sigma.size(0) != st.mu.size(0) ||
      st.sigma.size(1) != st.mu.size(0))
    fail("{}: {} {} and {} {} are not a mean and covariance", z.path(), mu_key,
         shape_str(st.mu.sizes().vec()), sigma_key, shape_str(st.sigma.sizes().vec()));
  return st;
}
}  // namespace

ReferenceStats read_reference_stats(const std::string& path) {
  DMEVAL_CHECK(std::filesystem::is_regular_file(path), "{}: no such reference statistics file", path);
  NpzReader z = NpzReader::open(path);
  DMEVAL_CHECK(z.contains("mu") && z.contains("sigma"),
               "{}: not a statistics file (no mu/sigma arrays; it holds: {})", path,
               fmt::join(z.names(), ", "));
  ReferenceStats r;
  r.pool = read_pair(z, "mu", "sigma");
  if (z.contains("mu_s") && z.contains("sigma_s")) r.spatial = read_pair(z, "mu_s", "sigma_s");
  if (z.contains("features")) {
    r.features = to_torch(z.read("features")).to(torch::kFloat32);
    DMEVAL_CHECK(r.features.dim() == 2 && r.features.size(1) == r.pool.mu.size(0),
                 "{}: features {} do not match mu {}", path, shape_str(r.features.sizes().vec()),
                 shape_str(r.pool.mu.sizes().vec()));
  }
  if (z.contains("provenance")) {
    TensorData t = z.read("provenance");
    r.provenance.assign(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
  }
  if (z.contains("count")) r.count = to_torch(z.read("count")).item<int64_t>();
  r.pool.count = r.count;
  if (r.spatial) r.spatial->count = r.count;
  return r;
}

void write_reference_stats(const std::string& path, const ReferenceStats& r) {
  std::vector<std::pair<std::string, TensorData>> arrays = {{"mu", from_torch(r.pool.mu)},
                                                            {"sigma", from_torch(r.pool.sigma)}};
  if (r.spatial) {
    arrays.emplace_back("mu_s", from_torch(r.spatial->mu));
    arrays.emplace_back("sigma_s", from_torch(r.spatial->sigma));
  }
  if (r.features.defined())
    arrays.emplace_back("features", from_torch(r.features.to(torch::kFloat32).contiguous()));
  arrays.emplace_back("count", from_torch(torch::tensor({r.count}, torch::kLong)));
  const std::string& p = r.provenance;
  arrays.emplace_back(
      "provenance", from_torch(torch::from_blob(const_cast<char*>(p.data()), {static_cast<int64_t>(p.size())},
                                                torch::kUInt8)
                                   .clone()));
  write_npz(path, arrays, /*compressed=*/true);
}

}  // namespace dmeval
