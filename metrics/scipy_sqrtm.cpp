#include "metrics/scipy_sqrtm.h"

#include <complex>
#include <limits>
#include <vector>

#include "core/error.h"

extern "C" {
// LAPACK (Debian's liblapack.so.3, OpenBLAS by default), the routines scipy calls.
void dgees_(const char* jobvs, const char* sort, void* select, const int* n, double* a, const int* lda,
            int* sdim, double* wr, double* wi, double* vs, const int* ldvs, double* work, const int* lwork,
            int* bwork, int* info);
void dtrsyl_(const char* trana, const char* tranb, const int* isgn, const int* m, const int* n,
             const double* a, const int* lda, const double* b, const int* ldb, double* c, const int* ldc,
             double* scale, int* info);
void ztrsyl_(const char* trana, const char* tranb, const int* isgn, const int* m, const int* n,
             const std::complex<double>* a, const int* lda, const std::complex<double>* b, const int* ldb,
             std::complex<double>* c, const int* ldc, double* scale, int* info);
}

namespace dmeval {

namespace {
using cd = std::complex<double>;

// Column-major n x n matrices, as LAPACK wants them.
template <typename T>
struct Mat {
  int n;
  std::vector<T> v;
  explicit Mat(int size) : n(size), v(static_cast<size_t>(size) * size) {}
  T& operator()(int i, int j) { return v[static_cast<size_t>(j) * n + i]; }
  const T& operator()(int i, int j) const { return v[static_cast<size_t>(j) * n + i]; }
};

// scipy.linalg.rsf2csf: Givens rotations turn the 2x2 blocks of a real Schur form into a complex
// upper-triangular one.
void rsf2csf(Mat<cd>& t, Mat<cd>& z) {
  const int n = t.n;
  const double eps = std::numeric_limits<double>::epsilon();
  for (int m = n - 1; m > 0; --m) {
    if (std::abs(t(m, m - 1)) > eps * (std::abs(t(m - 1, m - 1)) + std::abs(t(m, m)))) {
      // Eigenvalues of the (standardised) 2x2 block [[a, b], [c, d]]; LAPACK returns the one with
      // positive imaginary part first.
      cd a = t(m - 1, m - 1), b = t(m - 1, m), c = t(m, m - 1), d = t(m, m);
      cd half_tr = (a + d) / 2.0;
      cd disc = std::sqrt((a - d) * (a - d) / 4.0 + b * c);
      cd e1 = half_tr + disc, e2 = half_tr - disc;
      cd mu0 = (e1.imag() >= e2.imag() ? e1 : e2) - t(m, m);
      double r = std::sqrt(std::norm(mu0) + std::norm(t(m, m - 1)));
      cd cc = mu0 / r, s = t(m, m - 1) / r;
      cd g00 = std::conj(cc), g01 = s, g10 = -s, g11 = cc;  // G
      for (int j = m - 1; j < n; ++j) {                     // T[m-1:m+1, m-1:] = G @ T[m-1:m+1, m-1:]
        cd x = t(m - 1, j), y = t(m, j);
        t(m - 1, j) = g00 * x + g01 * y;
        t(m, j) = g10 * x + g11 * y;
      }
      // T[:m+1, m-1:m+1] = T[:m+1, m-1:m+1] @ G^H ; Z[:, m-1:m+1] = Z[:, m-1:m+1] @ G^H
      cd h00 = std::conj(g00), h01 = std::conj(g10), h10 = std::conj(g01), h11 = std::conj(g11);
      for (int i = 0; i <= m; ++i) {
        cd x = t(i, m - 1), y = t(i, m);
        t(i, m - 1) = x * h00 + y * h10;
        t(i, m) = x * h01 + y * h11;
      }
      for (int i = 0; i < n; ++i) {
        cd x = z(i, m - 1), y = z(i, m);
        z(i, m - 1) = x * h00 + y * h10;
        z(i, m) = x * h01 + y * h11;
      }
    }
    t(m, m - 1) = 0.0;
  }
}

void trsyl(const Mat<double>& r, int is, int ie, int js, int je, Mat<double>& c, int& info, double& scale) {
  // Solve Rii X + X Rjj = S (S in c's block), as scipy's dtrsyl(Rii, Rjj, S).
  int m = ie - is, k = je - js, isgn = 1, ld = r.n;
  std::vector<double> a(static_cast<size_t>(m) * m), b(static_cast<size_t>(k) * k),
      x(static_cast<size_t>(m) * k);
  for (int j = 0; j < m; ++j)
    for (int i = 0; i < m; ++i) a[j * m + i] = r(is + i, is + j);
  for (int j = 0; j < k; ++j)
    for (int i = 0; i < k; ++i) b[j * k + i] = r(js + i, js + j);
  for (int j = 0; j < k; ++j)
    for (int i = 0; i < m; ++i) x[j * m + i] = c(is + i, js + j);
  (void)ld;
  dtrsyl_("N", "N", &isgn, &m, &k, a.data(), &m, b.data(), &k, x.data(), &m, &scale, &info);
  for (int j = 0; j < k; ++j)
    for (int i = 0; i < m; ++i) c(is + i, js + j) = x[j * m + i] * scale;
}

void trsyl(const Mat<cd>& r, int is, int ie, int js, int je, Mat<cd>& c, int& info, double& scale) {
  int m = ie - is, k = je - js, isgn = 1;
  std::vector<cd> a(static_cast<size_t>(m) * m), b(static_cast<size_t>(k) * k), x(static_cast<size_t>(m) * k);
  for (int j = 0; j < m; ++j)
    for (int i = 0; i < m; ++i) a[j * m + i] = r(is + i, is + j);
  for (int j = 0; j < k; ++j)
    for (int i = 0; i < k; ++i) b[j * k + i] = r(js + i, js + j);
  for (int j = 0; j < k; ++j)
    for (int i = 0; i < m; ++i) x[j * m + i] = c(is + i, js + j);
  ztrsyl_("N", "N", &isgn, &m, &k, a.data(), &m, b.data(), &k, x.data(), &m, &scale, &info);
  for (int j = 0; j < k; ++j)
    for (int i = 0; i < m; ++i) c(is + i, js + j) = x[j * m + i] * scale;
}

// scipy's _sqrtm_triu; returns false on SqrtmError.
template <typename T>
bool sqrtm_triu(const Mat<T>& t, Mat<T>& r, int64_t blocksize) {
  const int n = t.n;
  for (int i = 0; i < n; ++i) r(i, i) = std::sqrt(t(i, i));
  const int nblocks = std::max<int>(static_cast<int>(n / blocksize), 1);
  const int bsmall = n / nblocks, nlarge = n % nblocks, nsmall = nblocks - nlarge;
  std::vector<std::pair<int, int>> blocks;
  int start = 0;
  for (int c = 0; c < nsmall; ++c, start += bsmall) blocks.emplace_back(start, start + bsmall);
  for (int c = 0; c < nlarge; ++c, start += bsmall + 1) blocks.emplace_back(start, start + bsmall + 1);
  for (const auto& [bs, be] : blocks) {  // within_block_loop
    for (int j = bs; j < be; ++j) {
      for (int i = j - 1; i >= bs; --i) {
        T s = 0;
        for (int k = i + 1; k < j; ++k) s += r(i, k) * r(k, j);
        T denom = r(i, i) + r(j, j);
        T num = t(i, j) - s;
        if (denom != T(0))
          r(i, j) = (t(i, j) - s) / denom;
        else if (num == T(0))
          r(i, j) = 0;
        else
          return false;
      }
    }
  }
  for (int jb = 0; jb < nblocks; ++jb) {  // between-block interactions
    auto [js, je] = blocks[jb];
    for (int ib = jb - 1; ib >= 0; --ib) {
      auto [is, ie] = blocks[ib];
      for (int jj = js; jj < je; ++jj)  // S = T[i-block, j-block] - R[i, istop:jstart] R[istop:jstart, j]
        for (int ii = is; ii < ie; ++ii) {
          T s = t(ii, jj);
          if (jb - ib > 1) {
            T acc = 0;
            for (int k = ie; k < js; ++k) acc += r(ii, k) * r(k, jj);
            s -= acc;
          }
          r(ii, jj) = s;
        }
      int info = 0;
      double scale = 1;
      trsyl(r, is, ie, js, je, r, info, scale);
    }
  }
  return true;
}
}  // namespace

SqrtmResult scipy_sqrtm(const torch::Tensor& a_in, int64_t blocksize) {
  torch::Tensor a = a_in.to(torch::kFloat64).contiguous();
  if (a.dim() != 2 || a.size(0) != a.size(1)) fail("sqrtm needs a square matrix");
  if (!torch::isfinite(a).all().item<bool>()) fail("sqrtm: the matrix contains NaN or Inf");
  const int n = static_cast<int>(a.size(0));
  // Real Schur form A = Z T Z^T (LAPACK dgees, no sorting), column-major.
  Mat<double> t(n), z(n);
  const double* ap = a.data_ptr<double>();
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) t(i, j) = ap[static_cast<size_t>(i) * n + j];
  int sdim = 0, info = 0, lwork = -1;
  std::vector<double> wr(n), wi(n);
  double query = 0;
  dgees_("V", "N", nullptr, &n, t.v.data(), &n, &sdim, wr.data(), wi.data(), z.v.data(), &n, &query, &lwork,
         nullptr, &info);
  lwork = static_cast<int>(query);
  std::vector<double> work(std::max(lwork, 1));
  dgees_("V", "N", nullptr, &n, t.v.data(), &n, &sdim, wr.data(), wi.data(), z.v.data(), &n, work.data(),
         &lwork, nullptr, &info);
  if (info != 0) fail("sqrtm: LAPACK dgees failed (info {})", info);

  bool needs_conversion = false;
  const double eps = std::numeric_limits<double>::epsilon();
  for (int i = 1; i < n; ++i)
    if (std::abs(t(i, i - 1)) > eps * (std::abs(t(i, i)) + std::abs(t(i - 1, i - 1))))
      needs_conversion = true;
  bool negative_diag = false;
  for (int i = 0; i < n; ++i) negative_diag |= t(i, i) < 0;

  SqrtmResult res;
  auto to_tensor = [n](const auto& m, bool complex) {
    torch::Tensor out = torch::empty({n, n}, complex ? torch::kComplexDouble : torch::kFloat64);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) {
        if constexpr (std::is_same_v<std::decay_t<decltype(m(0, 0))>, cd>)
          out.data_ptr<c10::complex<double>>()[i * n + j] =
              c10::complex<double>(m(i, j).real(), m(i, j).imag());
        else
          out.data_ptr<double>()[i * n + j] = m(i, j);
      }
    return out;
  };
  if (!needs_conversion && !negative_diag) {
    for (int j = 0; j < n; ++j)  // np.triu is implied: below-diagonal entries are ignored
      for (int i = j + 1; i < n; ++i) t(i, j) = 0;
    Mat<double> r(n);
    if (!sqrtm_triu(t, r, blocksize)) {
      res.failed = true;
      res.x = torch::full({n, n}, std::numeric_limits<double>::quiet_NaN(), torch::kFloat64);
      return res;
    }
    torch::Tensor zt = to_tensor(z, false), rt = to_tensor(r, false);
    res.x = torch::mm(torch::mm(zt, rt), zt.t());
    return res;
  }
  Mat<cd> tc(n), zc(n);
  for (size_t k = 0; k < t.v.size(); ++k) {
    tc.v[k] = t.v[k];
    zc.v[k] = z.v[k];
  }
  if (needs_conversion) rsf2csf(tc, zc);
  for (int j = 0; j < n; ++j)
    for (int i = j + 1; i < n; ++i) tc(i, j) = 0;
  Mat<cd> r(n);
  res.is_complex = true;
  if (!sqrtm_triu(tc, r, blocksize)) {
    res.failed = true;
    res.x = torch::full({n, n}, std::numeric_limits<double>::quiet_NaN(), torch::kFloat64);
    return res;
  }
  torch::Tensor zt = to_tensor(zc, true), rt = to_tensor(r, true);
  res.x = torch::mm(torch::mm(zt, rt), zt.conj().t());
  return res;
}

}  // namespace dmeval
