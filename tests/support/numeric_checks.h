// Comparisons with the reference that hold on any x86-64 CPU and under any libtorch kernel set.
// Layer-by-layer verification of quantized networks against a reference's recorded per-quantizer
// inputs (teacher forcing): each dmeval quantizer gets the reference's input, so float summation
// differences cannot accumulate, and integer codes must equal the reference's except where the
// reference's pre-rounding value lies within a stated distance of a rounding tie. And "kernel-exact"
// equality for values that libtorch's vectorised and scalar kernels round differently.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

namespace dmeval::test {

// Distance of each pre-rounding value v (code units) to the nearest rounding tie k + 1/2, in float64.
torch::Tensor tie_distance(const torch::Tensor& prerounding);

struct CodeCheck {
  int64_t elements = 0;
  int64_t near_tie = 0;        // reference values within the window of a tie
  int64_t differ = 0;          // codes that differ
  int64_t differ_off_tie = 0;  // ... at an element that is not near a tie: a defect
  double max_step = 0;         // largest |code difference|
  CodeCheck& operator+=(const CodeCheck& o);
};

// Compares integer codes (any dtype) elementwise; `window` (code units, a scalar or a tensor that
// broadcasts) is the distance to a tie below which a difference is allowed.
CodeCheck compare_codes(const torch::Tensor& got, const torch::Tensor& want, const torch::Tensor& distance,
                        const torch::Tensor& window);

// "12 of 12 quantizers, 1,234,567 codes: 321 near a tie (0.026 %), 3 differ (all near a tie)".
std::string describe(const CodeCheck& c, int64_t quantizers);

}  // namespace dmeval::test

namespace dmeval::test {

// libtorch's vectorised (AVX2 / AVX-512) and scalar (ATEN_CPU_CAPABILITY=default) kernels round
// differently: FMA contraction, Sleef's exp/log/sin/cos against the C library's (each within 1 ulp of
// the correctly rounded result) and the order of short reductions. A value computed through a few
// such steps (a softmax mixture, Box-Muller normal draws, a bilinear resize) moves by a few units in
// the last place. Such values are compared "kernel-exact": bit for bit, or within kKernelUlps units in
// the last place of the array's largest magnitude.
constexpr double kKernelUlps = 4;
// Normal draws (torch.randn): ATen's vectorised normal_fill runs Box-Muller in float32, its scalar path
// in float64. float32's angle 2πu (rounded by up to 2^-24 · 2π) and its log/sqrt/cos (≤ 1 ulp each)
// move a draw z = r cos θ by up to r · 4e-7 + 3 ulp(r); with r ≤ 6 that is at most 16 ulp of the
// largest draw (measured: 7).
constexpr double kNormalDrawUlps = 16;
// The float32 unit in the last place of |v| (its spacing to the next larger float).
double float_ulp(double v);
::testing::AssertionResult kernel_equal(const torch::Tensor& got, const torch::Tensor& want,
                                        double ulps = kKernelUlps);
// Fake-quantized values whose parameters are kernel-exact: kernel-exact except where a code crossed
// a rounding tie, which moves the value by at most `step` (one quantization step); such elements may
// be at most `max_fraction` of the array (kTieFraction: the MANIFEST's allowance for values at a
// rounding boundary, "≤ 0.1 % of values off by one").
constexpr double kTieFraction = 1e-3;
::testing::AssertionResult quantized_equal(const torch::Tensor& got, const torch::Tensor& want, double step,
                                           double max_fraction = kTieFraction);

}  // namespace dmeval::test
