#include "metrics/precision_recall.h"

#include <algorithm>

#include "core/error.h"
#include "core/tensor_data.h"

namespace dmeval {

namespace {
// Squared distances between rows of a (block) and all rows of b, in the requested dtype.
torch::Tensor sq_dist(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& b_norms,
                      torch::ScalarType dtype) {
  if (dtype == torch::kFloat16) {
    // ADM's TF block: float16 inputs and arithmetic (emulated with float32 math rounded to half).
    torch::Tensor ah = a.to(torch::kFloat16).to(torch::kFloat32),
                  bh = b.to(torch::kFloat16).to(torch::kFloat32);
    torch::Tensor na = (ah * ah).sum(1, true).to(torch::kFloat16).to(torch::kFloat32);
    torch::Tensor nb = (bh * bh).sum(1).to(torch::kFloat16).to(torch::kFloat32);
    torch::Tensor ab = torch::mm(ah, bh.t()).to(torch::kFloat16).to(torch::kFloat32);
    torch::Tensor d = (na - 2 * ab).to(torch::kFloat16).to(torch::kFloat32);
    d = (d + nb).to(torch::kFloat16).to(torch::kFloat32);
    if (!torch::isfinite(d).all().item<bool>()) return sq_dist(a, b, b_norms, torch::kFloat32);
    return d.clamp_min(0);
  }
  torch::Tensor na = (a * a).sum(1, true);
  return (na - 2 * torch::mm(a, b.t()) + b_norms.unsqueeze(0)).clamp_min(0);
}

torch::Tensor prepare(const torch::Tensor& x, const PrecisionRecallOptions& o, const char* what) {
  if (x.dim() != 2 || x.size(0) < 1)
    fail("{} features must be N x D, got {}", what, shape_str(x.sizes().vec()));
  if (!torch::isfinite(x).all().item<bool>()) fail("{} features contain NaN or Inf", what);
  if (x.size(0) <= o.k) fail("{} set has {} rows; k = {} needs more", what, x.size(0), o.k);
  return x.contiguous();  // converted tile by tile (a memory-mapped N x D input is never copied whole)
}

torch::Tensor tile(const torch::Tensor& x, int64_t begin, int64_t size, const PrecisionRecallOptions& o) {
  return x.slice(0, begin, std::min(x.size(0), begin + size))
      .to(o.dtype == torch::kFloat16 ? torch::kFloat32 : o.dtype);
}

// Fraction of rows of `query` within radius of at least one row of `ref`: tile by tile, skipping
// the remaining tiles of rows already covered.
double coverage(const torch::Tensor& query, const torch::Tensor& ref, const torch::Tensor& ref_radii,
                const PrecisionRecallOptions& o) {
  int64_t covered = 0;
  for (int64_t a = 0; a < query.size(0); a += o.block_rows) {
    torch::Tensor q = tile(query, a, o.block_rows, o);
    torch::Tensor hit = torch::zeros({q.size(0)}, torch::kBool);
    for (int64_t b = 0; b < ref.size(0); b += o.block_cols) {
      torch::Tensor r = tile(ref, b, o.block_cols, o);
      torch::Tensor d = sq_dist(q, r, (r * r).sum(1), o.dtype);
      hit |= (d <= ref_radii.slice(0, b, b + r.size(0)).to(d.scalar_type()).unsqueeze(0)).any(1);
      if (hit.all().item<bool>()) break;
    }
    covered += hit.sum().item<int64_t>();
  }
  return static_cast<double>(covered) / static_cast<double>(query.size(0));
}
}  // namespace

torch::Tensor knn_radii(const torch::Tensor& x, const PrecisionRecallOptions& o) {
  std::vector<torch::Tensor> parts;
  const int64_t keep = o.k + 1;  // the (k+1)-th smallest counting the point itself
  for (int64_t a = 0; a < x.size(0); a += o.block_rows) {
    torch::Tensor q = tile(x, a, o.block_rows, o);
    // Running `keep` smallest distances per row across column tiles (exact: the k+1 smallest of the
    // union are among the k+1 smallest of each part).
    torch::Tensor best;
    for (int64_t b = 0; b < x.size(0); b += o.block_cols) {
      torch::Tensor c = tile(x, b, o.block_cols, o);
      torch::Tensor d = sq_dist(q, c, (c * c).sum(1), o.dtype);
      torch::Tensor cand = best.defined() ? torch::cat({best, d}, 1) : d;
      best = std::get<0>(
          cand.topk(std::min<int64_t>(keep, cand.size(1)), 1, /*largest=*/false, /*sorted=*/true));
    }
    parts.push_back(best.select(1, keep - 1).contiguous());
  }
  return torch::cat(parts);
}

PrecisionRecall precision_recall(const torch::Tensor& real, const torch::Tensor& generated,
                                 const PrecisionRecallOptions& o) {
  torch::NoGradGuard no_grad;
  torch::Tensor r = prepare(real, o, "real"), g = prepare(generated, o, "generated");
  if (r.size(1) != g.size(1))
    fail("real and generated features differ in dimension: {} vs {}", r.size(1), g.size(1));
  torch::Tensor rr = knn_radii(r, o), gr = knn_radii(g, o);
  PrecisionRecall pr;
  pr.precision = coverage(g, r, rr, o);
  pr.recall = coverage(r, g, gr, o);
  pr.f_score = 2 * pr.precision * pr.recall / std::max(1e-5, pr.precision + pr.recall);
  return pr;
}

}  // namespace dmeval
