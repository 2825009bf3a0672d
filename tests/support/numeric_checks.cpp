#include "tests/support/numeric_checks.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

namespace dmeval::test {

torch::Tensor tie_distance(const torch::Tensor& prerounding) {
  torch::Tensor v = prerounding.to(torch::kFloat64);
  return (v - v.floor() - 0.5).abs();
}

CodeCheck& CodeCheck::operator+=(const CodeCheck& o) {
  elements += o.elements;
  near_tie += o.near_tie;
  differ += o.differ;
  differ_off_tie += o.differ_off_tie;
  max_step = std::max(max_step, o.max_step);
  return *this;
}

CodeCheck compare_codes(const torch::Tensor& got, const torch::Tensor& want, const torch::Tensor& distance,
                        const torch::Tensor& window) {
  TORCH_CHECK(got.sizes() == want.sizes(), "code shapes differ: ", got.sizes(), " vs ", want.sizes());
  torch::Tensor d = (got.to(torch::kFloat64) - want.to(torch::kFloat64)).abs();
  torch::Tensor near = distance.to(torch::kFloat64) <= window.to(torch::kFloat64);
  torch::Tensor bad = d > 0;
  CodeCheck c;
  c.elements = got.numel();
  c.near_tie = near.expand_as(d).sum().item<int64_t>();
  c.differ = bad.sum().item<int64_t>();
  c.differ_off_tie = (bad & ~near).sum().item<int64_t>();
  c.max_step = c.elements ? d.max().item<double>() : 0.0;
  return c;
}

double float_ulp(double v) {
  const float a = std::abs(static_cast<float>(v));
  return static_cast<double>(std::nextafter(a, std::numeric_limits<float>::infinity())) - a;
}

::testing::AssertionResult kernel_equal(const torch::Tensor& got, const torch::Tensor& want, double ulps) {
  if (got.sizes() != want.sizes())
    return ::testing::AssertionFailure() << "shape " << got.sizes() << " vs " << want.sizes();
  torch::Tensor g = got.to(torch::kFloat64), w = want.to(torch::kFloat64);
  torch::Tensor nan_same = g.isnan() & w.isnan();
  torch::Tensor d = (g - w).abs().masked_fill(nan_same, 0);
  if (d.numel() == 0) return ::testing::AssertionSuccess();
  const double worst = d.nan_to_num(std::numeric_limits<double>::infinity()).max().item<double>();
  const double unit = float_ulp(w.masked_fill(w.isnan(), 0).abs().max().item<double>());
  if (worst <= ulps * unit) return ::testing::AssertionSuccess() << worst / unit << " ulp";
  return ::testing::AssertionFailure()
         << (d > 0).sum().item<int64_t>() << " of " << d.numel() << " values differ, max |d| " << worst
         << " = " << worst / unit << " ulp of the largest value (allowed " << ulps << ")";
}

::testing::AssertionResult quantized_equal(const torch::Tensor& got, const torch::Tensor& want, double step,
                                           double max_fraction) {
  if (got.sizes() != want.sizes())
    return ::testing::AssertionFailure() << "shape " << got.sizes() << " vs " << want.sizes();
  torch::Tensor g = got.to(torch::kFloat64), w = want.to(torch::kFloat64);
  torch::Tensor d = (g - w).abs().masked_fill(g.isnan() & w.isnan(), 0).nan_to_num(HUGE_VAL);
  if (d.numel() == 0) return ::testing::AssertionSuccess();
  const double unit = float_ulp(w.nan_to_num(0).abs().max().item<double>());
  torch::Tensor flipped = d > kKernelUlps * unit;
  const int64_t n = flipped.sum().item<int64_t>();
  const double worst = d.max().item<double>();
  if (n <= max_fraction * d.numel() && worst <= step * (1 + 1e-5) + kKernelUlps * unit)
    return ::testing::AssertionSuccess() << n << " values crossed a tie";
  return ::testing::AssertionFailure()
         << n << " of " << d.numel() << " values differ by more than " << kKernelUlps << " ulp (allowed "
         << max_fraction * d.numel() << "), max |d| " << worst << " (one step: " << step << ")";
}

std::string describe(const CodeCheck& c, int64_t quantizers) {
  return fmt::format(
      "{} quantizers, {} codes: {} near a tie ({:.3g} %), {} differ ({} away from a tie, "
      "largest step {})",
      quantizers, c.elements, c.near_tie, c.elements ? 100.0 * c.near_tie / c.elements : 0.0, c.differ,
      c.differ_off_tie, c.max_step);
}

}  // namespace dmeval::test
