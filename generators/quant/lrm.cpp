#include "generators/quant/lrm.h"

#include <torch/torch.h>

#include "core/error.h"

namespace dmeval {

int64_t lrm_rank(int64_t width) {
  DMEVAL_CHECK(width >= 2, "representation mimicking needs feature maps at least 2 wide (got {})", width);
  return width / 4 > 2 ? width / 4 : 2;
}

namespace {
torch::Tensor qr_q(const torch::Tensor& x) {
  return std::get<0>(torch::linalg_qr(x));
}
}  // namespace

torch::Tensor pca_lowrank_v(const torch::Tensor& a_in, int64_t q, int64_t niter, const torch::Tensor& r_in) {
  DMEVAL_CHECK(a_in.dim() == 2, "pca_lowrank: a matrix, not {} dimensions", a_in.dim());
  const int64_t m = a_in.size(0), n = a_in.size(1);
  DMEVAL_CHECK(q >= 1 && q <= std::min(m, n), "pca_lowrank: q = {} must lie in 1..min(m, n) = {}", q,
               std::min(m, n));
  // center=True: subtract the column means.
  torch::Tensor a = a_in - a_in.mean(0, /*keepdim=*/true);
  torch::Tensor at = a.t();
  if (m < n || n > q) {
    // get_approximate_basis(Aᵀ): R (m, q), Q = qr(Aᵀ R); niter × {Q = qr(A Q); Q = qr(Aᵀ Q)}.
    torch::Tensor r = r_in.defined() ? r_in : torch::randn({m, q}, a.options());
    DMEVAL_CHECK(r.size(0) == m && r.size(1) == q, "pca_lowrank: the test matrix must be {}x{}", m, q);
    torch::Tensor qm = qr_q(at.matmul(r));
    for (int64_t i = 0; i < niter; ++i) {
      qm = qr_q(a.matmul(qm));
      qm = qr_q(at.matmul(qm));
    }
    torch::Tensor b = a.matmul(qm);  // (m, q)
    torch::Tensor vh = std::get<2>(torch::linalg_svd(b, /*full_matrices=*/false));
    return qm.matmul(vh.t());
  }
  // n <= q: get_approximate_basis(A): R (n, q), Q = qr(A R); niter × {Q = qr(Aᵀ Q); Q = qr(A Q)}.
  torch::Tensor r = r_in.defined() ? r_in : torch::randn({n, q}, a.options());
  DMEVAL_CHECK(r.size(0) == n && r.size(1) == q, "pca_lowrank: the test matrix must be {}x{}", n, q);
  torch::Tensor qm = qr_q(a.matmul(r));
  for (int64_t i = 0; i < niter; ++i) {
    qm = qr_q(at.matmul(qm));
    qm = qr_q(a.matmul(qm));
  }
  torch::Tensor b = at.matmul(qm).t();  // B = (Aᵀ Q)ᵀ (q, n); V = Vhᴴ of its SVD
  torch::Tensor vh = std::get<2>(torch::linalg_svd(b, /*full_matrices=*/false));
  return vh.t();
}

torch::Tensor LrmLoss::operator()(const std::vector<torch::Tensor>& student,
                                  const std::vector<torch::Tensor>& teacher) {
  DMEVAL_CHECK(!student.empty() && student.size() == teacher.size(),
               "representation mimicking: {} student features, {} teacher features", student.size(),
               teacher.size());
  if (k_.empty()) {
    torch::NoGradGuard no_grad;
    for (const torch::Tensor& t : teacher) {
      const int64_t w = t.size(-1);
      k_.push_back(pca_lowrank_v(t.detach().reshape({-1, w}), lrm_rank(w)));
    }
  }
  DMEVAL_CHECK(k_.size() == teacher.size(), "representation mimicking: {} cached projections for {} features",
               k_.size(), teacher.size());
  torch::Tensor total;
  for (size_t f = 0; f < student.size(); ++f) {
    torch::Tensor k = k_[f].to(student[f].device());
    torch::Tensor l = torch::mse_loss(student[f].matmul(k), teacher[f].detach().matmul(k));
    total = total.defined() ? total + l : l;
  }
  return total / static_cast<double>(student.size());
}

}  // namespace dmeval
