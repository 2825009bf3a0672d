#include "generators/quant/tinydm_quantizer.h"

#include <cmath>

#include "core/error.h"

namespace dmeval {

GroupSplit tinydm_group_split(const torch::Tensor& v, GroupMode mode) {
  torch::NoGradGuard no_grad;
  DMEVAL_CHECK(v.dim() == 1 && v.numel() > 0, "group split of a tensor of shape {}, expected (C,)",
               static_cast<int64_t>(v.dim()));
  const int64_t c = v.numel();
  torch::Tensor lo = v.min(), hi = v.max(), span = hi - lo;
  std::vector<torch::Tensor> bound = {lo};
  // range_min + range_div * (m+1) / group_n, evaluated left to right in float32
  for (int64_t m = 0; m < kTinyDMGroups; ++m) bound.push_back(lo + (span * (m + 1)) / kTinyDMGroups);
  torch::Tensor mark = torch::zeros({c});
  for (int64_t m = 0; m < kTinyDMGroups; ++m)
    mark = torch::where((v >= bound[m]) & (v <= bound[m + 1]), (m + 1) * torch::ones({c}), mark);
  std::vector<float> values;
  for (int64_t m = 0; m < kTinyDMGroups; ++m) {
    torch::Tensor members = torch::masked_select(v, mark == (m + 1));
    if (members.numel() == 0)
      values.push_back(bound[m + 1].item<float>());
    else
      values.push_back((mode == GroupMode::kMax ? members.max() : members.min()).item<float>());
  }
  GroupSplit g;
  g.values = torch::tensor(values, torch::kFloat32);
  g.assigned = torch::zeros({c});
  for (int64_t m = 0; m < kTinyDMGroups; ++m)
    g.assigned = g.assigned + torch::where(mark == (m + 1), g.values[m], torch::zeros({c}));
  g.marks = mark.to(torch::kLong);
  return g;
}

TinyDMWeightRange tinydm_weight_range(const torch::Tensor& weight) {
  torch::NoGradGuard no_grad;
  torch::Tensor rows = weight.contiguous().view({weight.size(0), -1});
  torch::Tensor wmin = std::get<0>(rows.min(1)), wmax = std::get<0>(rows.max(1));
  // The reference's running update from zero: r += -r + min(stack(r, w_min)) (0 included).
  TinyDMWeightRange r{torch::zeros({weight.size(0)}), torch::zeros({weight.size(0)})};
  r.min.add_(-r.min + std::get<0>(torch::stack({r.min, wmin}, 0).min(0)));
  r.max.add_(-r.max + std::get<0>(torch::stack({r.max, wmax}, 0).max(0)));
  return r;
}

torch::Tensor tinydm_quantize_weight(const torch::Tensor& weight, const TinyDMWeightRange& range, int bits,
                                     TinyDMWeightGrid grid, TinyDMWeightParts* parts) {
  torch::NoGradGuard no_grad;
  const double top = std::pow(2.0, bits - 1) - 1.0;
  torch::Tensor step = range.max / top;
  if (grid == TinyDMWeightGrid::kClamped) {
    // A channel without positive weights gets its step from the negative end; an all-zero channel 1.
    torch::Tensor neg = -range.min / std::pow(2.0, bits - 1);
    step = torch::where(step > 0, step, torch::where(neg > 0, neg, torch::ones_like(step)));
  }
  torch::Tensor wt = weight.transpose(0, -1);
  // 0.5 * (|w_min - w| - |w - w_max| + w_min + w_max), the reference's clamp, in its order
  torch::Tensor c = 0.5 * ((-wt + range.min).abs() - (wt - range.max).abs() + range.min + range.max);
  torch::Tensor code = (c / step).round();
  if (grid == TinyDMWeightGrid::kClamped)
    code = code.clamp(-std::pow(2.0, bits - 1), std::pow(2.0, bits - 1) - 1);
  if (parts) *parts = {c.transpose(0, -1), code.transpose(0, -1), step};
  return (code * step).transpose(0, -1);
}

TinyDMActParams tinydm_act_params(const torch::Tensor& lo, const torch::Tensor& hi, int bits) {
  TinyDMActParams p;
  p.lo = lo, p.hi = hi;
  const int64_t n = (int64_t{1} << bits) - 1;
  // Python's `n / tensor` is tensor.reciprocal() * n (torch._tensor.__rdiv__), not a division.
  p.scale = (hi - lo).reciprocal() * n;
  p.zero_point = (p.scale * lo).round() + (int64_t{1} << (bits - 1));
  return p;
}

torch::Tensor tinydm_fake_quant(const torch::Tensor& x, const TinyDMActParams& p, int bits,
                                torch::Tensor* codes) {
  const int64_t n = int64_t{1} << (bits - 1);
  torch::Tensor q = torch::round(p.scale * x.transpose(1, -1) - p.zero_point);
  // 0.5 * (|-q - n| - |q - (n - 1)| - 1) = clamp(q, -n, n - 1) for integers
  torch::Tensor q1 = 0.5 * ((-q - n).abs() - (q - (n - 1)).abs() - 1);
  if (codes) *codes = q1.transpose(1, -1);
  return ((q1 + p.zero_point) / p.scale).transpose(1, -1);
}

TinyDMActQuantizer::TinyDMActQuantizer(int64_t steps, int64_t channels, int bits)
    : groups_range(torch::zeros({steps, kTinyDMGroups, 2})),
      alpha(torch::full({steps, kTinyDMGroups, channels}, 0.01)),
      init_range_min(torch::full({steps}, -4.0)),
      init_range_max(torch::full({steps}, 6.0)),
      search_choice(steps, -1),
      bits_(bits),
      cache_(steps) {
  DMEVAL_CHECK(bits >= 2 && bits <= 16, "TinyDM activation bits {} (2..16)", bits);
}

std::pair<torch::Tensor, torch::Tensor> TinyDMActQuantizer::mixed_range(int64_t k) const {
  torch::NoGradGuard no_grad;
  torch::Tensor sw = torch::softmax(alpha[k], 0);
  torch::Tensor g = groups_range[k];
  // 0 + g_0 p_0 + g_1 p_1 + ... in group order
  torch::Tensor lo = 0 + g[0][0] * sw[0], hi = 0 + g[0][1] * sw[0];
  for (int64_t i = 1; i < kTinyDMGroups; ++i) {
    lo = lo + g[i][0] * sw[i];
    hi = hi + g[i][1] * sw[i];
  }
  return {lo, hi};
}

torch::Tensor TinyDMActQuantizer::forward(const torch::Tensor& x_in, int64_t k, torch::Tensor* codes) {
  const torch::Tensor x = input_tap ? input_tap(x_in) : x_in;
  DMEVAL_CHECK(k >= 0 && k < steps(),
               "TinyDM quantizer calibrated for {} sampler steps called at step index {}", steps(), k);
  DMEVAL_CHECK(x.size(1) == channels(), "TinyDM quantizer for {} channels got an input of {}", channels(),
               x.size(1));
  if (!cache_[k]) {
    auto [lo, hi] = mixed_range(k);
    cache_[k] = tinydm_act_params(lo.to(x.device()), hi.to(x.device()), bits_);
  }
  torch::NoGradGuard no_grad;
  return tinydm_fake_quant(x, *cache_[k], bits_, codes);
}

torch::Tensor TinyDMActQuantizer::calibrate_with(const torch::Tensor& x, int64_t k,
                                                 const torch::Tensor& init_min,
                                                 const torch::Tensor& init_max) {
  const int64_t c = channels();
  torch::Tensor branches;
  {
    torch::NoGradGuard no_grad;  // the ranges are constants for differentiation (spec 4.4.4)
    torch::Tensor flat = x.clone().transpose(0, 1).reshape({c, -1});
    torch::Tensor mn = std::get<0>(torch::min(flat, 1)), mx = std::get<0>(torch::max(flat, 1));
    mn = torch::where(mn > init_min, init_min * torch::ones({c}, x.options()), mn);
    mx = torch::where(mx < init_max, init_max * torch::ones({c}, x.options()), mx);
    torch::Tensor gmin = tinydm_group_split(mn.cpu(), GroupMode::kMin).values,
                  gmax = tinydm_group_split(mx.cpu(), GroupMode::kMax).values;
    groups_range[k] = torch::stack({gmin, gmax}, 1);
    cache_[k].reset();
  }
  torch::Tensor sw = torch::softmax(alpha.select(0, k), 0).to(x.device());
  torch::Tensor gr = groups_range[k].to(x.device());
  torch::Tensor xt = x.transpose(1, -1);
  std::vector<torch::Tensor> parts;
  for (int64_t g = 0; g < kTinyDMGroups; ++g) {
    torch::Tensor q;
    {
      torch::NoGradGuard no_grad;
      // `Quant` with range (gmin[g], gmax[g]) as (1,) tensors, applied in the transposed layout
      TinyDMActParams p = tinydm_act_params(gr[g][0].reshape({1}), gr[g][1].reshape({1}), bits_);
      const int64_t n = int64_t{1} << (bits_ - 1);
      torch::Tensor code = torch::round(p.scale * xt - p.zero_point);
      torch::Tensor q1 = 0.5 * ((-code - n).abs() - (code - (n - 1)).abs() - 1);
      q = (q1 + p.zero_point) / p.scale;
    }
    parts.push_back((q * sw[g]).unsqueeze(0));
  }
  return torch::sum(torch::cat(parts, 0), 0).transpose(1, -1);
}

torch::Tensor TinyDMActQuantizer::calibrate(const torch::Tensor& x, int64_t k, bool search) {
  DMEVAL_CHECK(k >= 0 && k < steps(), "TinyDM calibration for {} sampler steps called at step index {}",
               steps(), k);
  if (search) {
    // L_p (p = 0.5) search over shrink factors 1.0 .. 0.2 of the current range (spec 4.5)
    torch::Tensor best_score, best_min = init_range_min[k].clone(), best_max = init_range_max[k].clone();
    int best = -1;
    for (int a = 0; a < 9; ++a) {
      const double f = 1.0 - (a * 0.1);
      torch::Tensor new_max = init_range_max[k] * f, new_min = init_range_min[k] * f;
      torch::Tensor score;
      {
        torch::NoGradGuard no_grad;
        torch::Tensor out = calibrate_with(x, k, new_min, new_max);
        score = (out - x).abs().pow(0.5).mean();
      }
      if (!best_score.defined() ? (score < 1e10).item<bool>() : (score < best_score).item<bool>()) {
        best_score = score, best_min = new_min, best_max = new_max, best = a;
      }
    }
    if (best_score.defined() && (best_score < 0.2).item<bool>()) {
      init_range_max[k] = best_max;
      init_range_min[k] = best_min;
      search_choice[k] = best;
    } else {
      search_choice[k] = 9;  // none below 0.2: the range stays
    }
  }
  return calibrate_with(x, k, init_range_min[k], init_range_max[k]);
}

TinyDMLayer::TinyDMLayer(std::shared_ptr<int64_t> step, const torch::Tensor& weight, int wbits, int abits,
                         int64_t steps, int64_t in_channels, TinyDMWeightGrid g)
    : weight_range(tinydm_weight_range(weight)), weight_bits(wbits), grid(g), step_(std::move(step)) {
  if (abits < 32) act = std::make_unique<TinyDMActQuantizer>(steps, in_channels, abits);
}

torch::Tensor TinyDMLayer::forward(const torch::Tensor& x, const LayerCall& call) {
  const int64_t k = *step_;
  if (calibrating) {  // float weights throughout calibration (spec 3)
    torch::Tensor in = act ? act->calibrate(x, k, search) : x;
    return call.op(in, call.weight, call.bias);
  }
  torch::Tensor in = act ? act->forward(x, k) : x;
  if (weight_bits >= 32) return call.op(in, call.weight, call.bias);
  if (!qweight_.defined() || qweight_.device() != call.weight.device()) {
    TinyDMWeightRange r{weight_range.min.to(call.weight.device()), weight_range.max.to(call.weight.device())};
    qweight_ = tinydm_quantize_weight(call.weight, r, weight_bits, grid);
  }
  return call.op(in, qweight_, call.bias);
}

}  // namespace dmeval
