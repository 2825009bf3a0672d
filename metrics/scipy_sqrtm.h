// scipy.linalg.sqrtm (scipy 1.10) as pytorch-fid, clean-fid and the ADM evaluator call it, so
// their FID behaviour on singular statistics (eps fallback, "Imaginary component" error, complex
// results) can be reproduced: real Schur form (LAPACK dgees), rsf2csf when 2x2 blocks are present,
// the blocked upper-triangular square root (64-row blocks, within-block recurrence, Sylvester
// solves between blocks with LAPACK trsyl), X = Z R Z^H. Reference semantics only: slow (O(n^3)
// with complex arithmetic), used by --compat.
#pragma once

#include <torch/torch.h>

namespace dmeval {

struct SqrtmResult {
  torch::Tensor x;      // float64 if real, complex128 otherwise; all NaN when the recurrence fails
  bool failed = false;  // scipy's SqrtmError ("failed to find the matrix square root")
  bool is_complex = false;
};

SqrtmResult scipy_sqrtm(const torch::Tensor& a, int64_t blocksize = 64);

}  // namespace dmeval
