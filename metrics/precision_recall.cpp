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
  return x.to(o.dtype == torch::kFloat16 ? torch::kFloat32 : o.dtype).contiguous();
}

// Fraction of rows of `query` within radius of at least one row of `ref`.
double coverage(const torch::Tensor& query, const torch::Tensor& ref, const torch::Tensor& ref_radii,
                const PrecisionRecallOptions& o) {
  torch::Tensor ref_norms = (ref * ref).sum(1);
  int64_t covered = 0;
  for (int64_t a = 0; a < query.size(0); a += o.block_rows) {
    torch::Tensor q = query.slice(0, a, std::min(query.size(0), a + o.block_rows));
    torch::Tensor d = sq_dist(q, ref, ref_norms, o.dtype);
    covered += (d <= ref_radii.to(d.scalar_type()).unsqueeze(0)).any(1).sum().item<int64_t>();
  }
  return static_cast<double>(covered) / static_cast<double>(query.size(0));
}
}  // namespace

torch::Tensor knn_radii(const torch::Tensor& x, const PrecisionRecallOptions& o) {
  torch::Tensor norms = (x * x).sum(1);
  std::vector<torch::Tensor> parts;
  for (int64_t a = 0; a < x.size(0); a += o.block_rows) {
    torch::Tensor q = x.slice(0, a, std::min(x.size(0), a + o.block_rows));
    torch::Tensor d = sq_dist(q, x, norms, o.dtype);
    // (k+1)-th smallest counting the point itself (its own distance ~0 is the smallest).
    parts.push_back(std::get<0>(d.kthvalue(o.k + 1, 1)));
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
