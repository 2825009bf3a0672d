#include "metrics/moments.h"

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/npy.h"
#include "core/torch_bridge.h"

namespace dmeval {

namespace {
constexpr int kFracBits = 64;

// Exact conversion of a double to fixed point with 2^-64 resolution (bits below are dropped
// toward -inf, deterministically). |v| must be < 2^62.
__int128 to_fixed(double v) {
  if (v == 0.0) return 0;
  if (!std::isfinite(v)) fail("non-finite feature value in moment accumulation");
  int exp = 0;
  double m = std::frexp(v, &exp);  // v = m * 2^exp, 0.5 <= |m| < 1
  if (exp > 61) fail("feature moment {} too large for exact accumulation", v);
  auto mant = static_cast<int64_t>(std::ldexp(m, 53));  // exact 53-bit integer
  int shift = exp - 53 + kFracBits;
  __int128 x = mant;
  if (shift >= 0) return x << shift;
  if (shift <= -127) return mant < 0 ? -1 : 0;
  return x >> (-shift);
}

long double from_fixed(__int128 x) {
  return std::ldexp(static_cast<long double>(x), -kFracBits);
}
}  // namespace

MomentAccumulator::MomentAccumulator(int64_t dim, int64_t block_size)
    : dim_(dim), block_(block_size), sum_(dim, 0), outer_(dim * (dim + 1) / 2, 0) {
  if (dim < 1 || block_size < 1) fail("moment accumulator needs dim >= 1 and block size >= 1");
}

int64_t MomentAccumulator::count() const {
  int64_t n = folded_count_;
  for (const auto& [b, rows] : pending_) n += static_cast<int64_t>(rows.size());
  return n;
}

void MomentAccumulator::fold_block(const std::vector<std::pair<int64_t, torch::Tensor>>& rows, __int128* sum,
                                   __int128* outer) const {
  std::vector<std::pair<int64_t, torch::Tensor>> sorted = rows;
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<torch::Tensor> list;
  for (auto& r : sorted) list.push_back(r.second);
  torch::Tensor x = torch::stack(list).to(torch::kFloat64);  // b x D, index order
  torch::Tensor s = x.sum(0);
  torch::Tensor g = torch::mm(x.t(), x).contiguous();
  const double* sp = s.data_ptr<double>();
  const double* gp = g.data_ptr<double>();
  for (int64_t i = 0; i < dim_; ++i) sum[i] += to_fixed(sp[i]);
  int64_t k = 0;
  for (int64_t i = 0; i < dim_; ++i)
    for (int64_t j = i; j < dim_; ++j) outer[k++] += to_fixed(gp[i * dim_ + j]);
}

void MomentAccumulator::add(int64_t first_index, const torch::Tensor& rows) {
  if (rows.dim() != 2 || rows.size(1) != dim_)
    fail("moment accumulator of dimension {} got features of shape {}", dim_, shape_str(rows.sizes().vec()));
  torch::Tensor r = rows.to(torch::kFloat32).contiguous();
  if (!torch::isfinite(r).all().item<bool>())
    fail("NaN or Inf in the features of images {}..{}", first_index, first_index + rows.size(0) - 1);
  for (int64_t i = 0; i < r.size(0); ++i) {
    int64_t index = first_index + i;
    auto& block = pending_[index / block_];
    block.emplace_back(index, r[i].clone());
    if (static_cast<int64_t>(block.size()) == block_) {
      fold_block(block, sum_.data(), outer_.data());
      folded_count_ += block_;
      pending_.erase(index / block_);
    }
  }
}

void MomentAccumulator::merge(const MomentAccumulator& other) {
  if (other.dim_ != dim_ || other.block_ != block_)
    fail("cannot merge moments of dimension {}/block {} into {}/{}", other.dim_, other.block_, dim_, block_);
  for (int64_t i = 0; i < dim_; ++i) sum_[i] += other.sum_[i];
  for (size_t k = 0; k < outer_.size(); ++k) outer_[k] += other.outer_[k];
  folded_count_ += other.folded_count_;
  for (const auto& [b, rows] : other.pending_) {
    auto& mine = pending_[b];
    mine.insert(mine.end(), rows.begin(), rows.end());
    if (static_cast<int64_t>(mine.size()) == block_) {
      fold_block(mine, sum_.data(), outer_.data());
      folded_count_ += block_;
      pending_.erase(b);
    }
  }
}

FeatureStats MomentAccumulator::finalize() const {
  std::vector<__int128> sum = sum_, outer = outer_;
  int64_t n = folded_count_;
  for (const auto& [b, rows] : pending_) {  // incomplete blocks, in block order
    fold_block(rows, sum.data(), outer.data());
    n += static_cast<int64_t>(rows.size());
  }
  if (n < 2) fail("statistics need at least 2 images, got {}", n);
  FeatureStats st;
  st.count = n;
  st.mu = torch::empty({dim_}, torch::kFloat64);
  st.sigma = torch::empty({dim_, dim_}, torch::kFloat64);
  double* mu = st.mu.data_ptr<double>();
  double* sg = st.sigma.data_ptr<double>();
  std::vector<long double> m(dim_);
  for (int64_t i = 0; i < dim_; ++i) {
    m[i] = from_fixed(sum[i]) / n;
    mu[i] = static_cast<double>(m[i]);
  }
  int64_t k = 0;
  for (int64_t i = 0; i < dim_; ++i) {
    for (int64_t j = i; j < dim_; ++j) {
      long double c = (from_fixed(outer[k++]) - n * m[i] * m[j]) / (n - 1);
      sg[i * dim_ + j] = sg[j * dim_ + i] = static_cast<double>(c);
    }
  }
  return st;
}

namespace {
// __int128 arrays stored as two int64 arrays (low and high words).
void split(const std::vector<__int128>& v, TensorData& lo, TensorData& hi) {
  lo = {DType::kInt64, {static_cast<int64_t>(v.size())}, std::vector<uint8_t>(v.size() * 8)};
  hi = lo;
  for (size_t i = 0; i < v.size(); ++i) {
    auto u = static_cast<unsigned __int128>(v[i]);
    uint64_t l = static_cast<uint64_t>(u), h = static_cast<uint64_t>(u >> 64);
    std::memcpy(lo.bytes.data() + 8 * i, &l, 8);
    std::memcpy(hi.bytes.data() + 8 * i, &h, 8);
  }
}
std::vector<__int128> join(const TensorData& lo, const TensorData& hi, size_t n, const std::string& path) {
  if (lo.numel() != static_cast<int64_t>(n) || hi.numel() != static_cast<int64_t>(n) ||
      lo.dtype != DType::kInt64 || hi.dtype != DType::kInt64)
    fail("{}: moment arrays have the wrong size", path);
  std::vector<__int128> v(n);
  for (size_t i = 0; i < n; ++i) {
    uint64_t l, h;
    std::memcpy(&l, lo.bytes.data() + 8 * i, 8);
    std::memcpy(&h, hi.bytes.data() + 8 * i, 8);
    v[i] = static_cast<__int128>((static_cast<unsigned __int128>(h) << 64) | l);
  }
  return v;
}
TensorData scalar_i64(int64_t v) {
  TensorData t{DType::kInt64, {1}, std::vector<uint8_t>(8)};
  std::memcpy(t.bytes.data(), &v, 8);
  return t;
}
}  // namespace

void MomentAccumulator::save(const std::string& path, const std::string& provenance) const {
  std::vector<std::pair<std::string, TensorData>> arrays;
  arrays.emplace_back("dim", scalar_i64(dim_));
  arrays.emplace_back("block_size", scalar_i64(block_));
  arrays.emplace_back("folded_count", scalar_i64(folded_count_));
  TensorData lo, hi;
  split(sum_, lo, hi);
  arrays.emplace_back("sum_lo", lo);
  arrays.emplace_back("sum_hi", hi);
  split(outer_, lo, hi);
  arrays.emplace_back("outer_lo", lo);
  arrays.emplace_back("outer_hi", hi);
  std::vector<int64_t> idx;
  std::vector<torch::Tensor> rows;
  for (const auto& [b, list] : pending_)
    for (const auto& [i, r] : list) {
      idx.push_back(i);
      rows.push_back(r);
    }
  TensorData pi{DType::kInt64, {static_cast<int64_t>(idx.size())}, std::vector<uint8_t>(idx.size() * 8)};
  if (!idx.empty()) std::memcpy(pi.bytes.data(), idx.data(), idx.size() * 8);
  arrays.emplace_back("pending_index", pi);
  arrays.emplace_back("pending_rows", rows.empty() ? TensorData{DType::kFloat32, {0, dim_}, {}}
                                                   : from_torch(torch::stack(rows)));
  arrays.emplace_back("provenance", TensorData{DType::kUInt8, {static_cast<int64_t>(provenance.size())},
                                               std::vector<uint8_t>(provenance.begin(), provenance.end())});
  write_npz(path, arrays, /*compressed=*/false);
}

MomentAccumulator MomentAccumulator::load(const std::string& path, std::string* provenance) {
  NpzReader z = NpzReader::open(path);
  auto i64 = [&](const char* name) {
    TensorData t = z.read(name);
    if (t.dtype != DType::kInt64 || t.numel() != 1) fail("{}: '{}' is not an int64 scalar", path, name);
    return t.data<int64_t>()[0];
  };
  MomentAccumulator a(i64("dim"), i64("block_size"));
  if (provenance) {
    provenance->clear();
    if (z.contains("provenance")) {
      TensorData p = z.read("provenance");
      provenance->assign(p.bytes.begin(), p.bytes.end());
    }
  }
  a.folded_count_ = i64("folded_count");
  a.sum_ = join(z.read("sum_lo"), z.read("sum_hi"), a.sum_.size(), path);
  a.outer_ = join(z.read("outer_lo"), z.read("outer_hi"), a.outer_.size(), path);
  TensorData pi = z.read("pending_index");
  torch::Tensor rows = to_torch(z.read("pending_rows"));
  if (rows.dim() != 2 || rows.size(0) != pi.numel() || (pi.numel() && rows.size(1) != a.dim_))
    fail("{}: pending rows do not match their indices", path);
  for (int64_t k = 0; k < pi.numel(); ++k) {
    int64_t index = pi.data<int64_t>()[k];
    a.pending_[index / a.block_].emplace_back(index, rows[k].clone());
  }
  return a;
}

FeatureStats stats_from_features(const torch::Tensor& features) {
  if (features.dim() != 2 || features.size(0) < 2)
    fail("statistics need an N x D feature matrix with N >= 2, got {}", shape_str(features.sizes().vec()));
  torch::Tensor x = features.to(torch::kFloat64);
  FeatureStats st;
  st.count = x.size(0);
  st.mu = x.mean(0);
  torch::Tensor c = x - st.mu;
  st.sigma = torch::mm(c.t(), c) / static_cast<double>(x.size(0) - 1);
  return st;
}

}  // namespace dmeval
