#include "generators/quant/uniform_quantizer.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>

#include "core/error.h"

namespace dmeval {

// "percentile" (0.9999) or "percentile:P": P; 0 for other methods; throws for a bad P.
static double percentile_of(const std::string& method) {
  if (method.rfind("percentile", 0) != 0) return 0;
  if (method == "percentile") return 0.9999;
  DMEVAL_CHECK(method.size() > 11 && method[10] == ':', "scale method '{}': write percentile or percentile:P",
               method);
  char* end = nullptr;
  const double p = std::strtod(method.c_str() + 11, &end);
  DMEVAL_CHECK(*end == '\0' && p > 0.5 && p < 1, "scale method '{}': P must lie in (0.5, 1)", method);
  return p;
}

const char* quant_flavor_name(QuantFlavor f) {
  switch (f) {
    case QuantFlavor::kQDiffusion: return "qdiff";
    case QuantFlavor::kBrecq: return "brecq";
    case QuantFlavor::kQDrop: return "qdrop";
  }
  return "?";
}

QuantFlavor quant_flavor_from_name(const std::string& name) {
  if (name == "qdiff") return QuantFlavor::kQDiffusion;
  if (name == "brecq") return QuantFlavor::kBrecq;
  if (name == "qdrop") return QuantFlavor::kQDrop;
  fail("unknown quantizer flavor '{}': qdiff, brecq or qdrop", name);
}

std::string UniformQuantizerSpec::describe() const {
  return fmt::format("{} {}-bit {} {} {}{}{}", quant_flavor_name(flavor), bits,
                     symmetric ? "symmetric" : "asymmetric", channel_wise ? "per-channel" : "per-tensor",
                     flavor == QuantFlavor::kQDrop ? "search" : scale_method, leaf_param ? " leaf" : "",
                     always_zero ? " always-zero" : "");
}

torch::Tensor lp_loss(const torch::Tensor& pred, const torch::Tensor& tgt, double p, bool reduce_all) {
  torch::Tensor e = (pred - tgt).abs().pow(p);
  return reduce_all ? e.mean() : e.sum(1).mean();
}

namespace {
// Python's round() of a float: half to even, and an int (so never -0).
double py_round(double v) {
  double r = std::nearbyint(v);
  return r == 0 ? 0.0 : r;
}
torch::Tensor scalar_f32(double v) {
  return torch::tensor(static_cast<float>(v));
}
}  // namespace

UniformQuantizer::UniformQuantizer(UniformQuantizerSpec spec) : spec_(std::move(spec)) {
  const int b = spec_.bits;
  switch (spec_.flavor) {
    case QuantFlavor::kQDiffusion:
      DMEVAL_CHECK(b >= 1 && b <= 16, "q-diffusion quantizer: {} bits not supported", b);
      n_levels_ = spec_.symmetric ? (int64_t{1} << (b - 1)) - 1 : int64_t{1} << b;
      qmin_ = spec_.symmetric ? -n_levels_ - 1 : 0;
      qmax_ = spec_.symmetric ? n_levels_ : n_levels_ - 1;
      break;
    case QuantFlavor::kBrecq:
    case QuantFlavor::kQDrop:
      DMEVAL_CHECK(b >= 2 && b <= 8, "{} quantizer: {} bits not supported (the reference allows 2..8)",
                   quant_flavor_name(spec_.flavor), b);
      n_levels_ = int64_t{1} << b;
      qmin_ = 0;
      qmax_ = n_levels_ - 1;
      break;
  }
  if (spec_.flavor == QuantFlavor::kQDrop) {  // QDrop starts "inited" with step 1
    inited_ = true;
    delta_ = torch::tensor(1.0f);
    zero_point_ = torch::tensor(0.0f);
  } else {
    DMEVAL_CHECK(spec_.scale_method == "mse" || spec_.scale_method.find("max") != std::string::npos ||
                     percentile_of(spec_.scale_method) > 0,
                 "unknown scale method '{}': max, max_scale, mse or percentile[:p] (0.5 < p < 1)",
                 spec_.scale_method);
  }
}

void UniformQuantizer::set_params(torch::Tensor delta, torch::Tensor zero_point) {
  delta_ = std::move(delta);
  zero_point_ = std::move(zero_point);
  inited_ = true;
  calibrated_ = true;
}

torch::Tensor& UniformQuantizer::learnable_delta() {
  DMEVAL_CHECK(delta_.defined(), "quantizer not initialised");
  if (!delta_.requires_grad()) delta_ = delta_.detach().clone().requires_grad_(true);
  return delta_;
}

torch::Tensor UniformQuantizer::forward(const torch::Tensor& x_in) {
  const torch::Tensor x = input_tap ? input_tap(x_in) : x_in;
  if (!inited_) {
    initialize(x);
    if (spec_.flavor != QuantFlavor::kQDrop) inited_ = true;
  }
  if (running_stat_) momentum_update(x);
  // round_ste: (round(x / Δ) - x / Δ).detach() + x / Δ, then the flavour's clamp.
  torch::Tensor s = x / delta_;
  torch::Tensor x_int = (s.round() - s).detach() + s + zero_point_;
  torch::Tensor x_quant = torch::clamp(x_int, static_cast<double>(qmin_), static_cast<double>(qmax_));
  return (x_quant - zero_point_) * delta_;
}

torch::Tensor UniformQuantizer::codes(const torch::Tensor& x) const {
  DMEVAL_CHECK(delta_.defined(), "quantizer not initialised");
  torch::NoGradGuard no_grad;
  return torch::clamp((x / delta_).round() + zero_point_, static_cast<double>(qmin_),
                      static_cast<double>(qmax_));
}

void UniformQuantizer::initialize(const torch::Tensor& x_in) {
  torch::NoGradGuard no_grad;
  calibrated_ = true;
  torch::Tensor x = x_in.detach();
  if (spec_.flavor == QuantFlavor::kQDrop) {
    auto [d, z] = init_qdrop(x);
    delta_ = d;
    zero_point_ = z;
    return;
  }
  if (!spec_.channel_wise) {
    auto [d, z] = init_per_tensor(x);
    delta_ = d;
    zero_point_ = z;
    return;
  }
  // Channel by channel, stored into float32 tensors shaped (C, 1, ...).
  const int64_t c = x.size(0);
  const auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(x.device());
  torch::Tensor delta = torch::empty({c}, opts), zp = torch::empty({c}, opts);
  for (int64_t i = 0; i < c; ++i) {
    auto [d, z] = init_per_tensor(x[i]);
    delta[i] = d;
    zp[i] = z;
  }
  std::vector<int64_t> shape(x.dim(), 1);
  shape[0] = -1;
  delta_ = delta.view(shape);
  zero_point_ = zp.view(shape);
}

std::pair<torch::Tensor, torch::Tensor> UniformQuantizer::init_per_tensor(const torch::Tensor& x) {
  if (spec_.leaf_param && spec_.flavor == QuantFlavor::kQDiffusion) {
    x_min_ = x.min();
    x_max_ = x.max();
  }
  if (spec_.scale_method == "mse") return init_mse(x);
  // 'max' family, in float64 from the float32 extrema (Python floats in the references); 'percentile'
  // replaces the extrema by order statistics (ZeroQ's find_scale_by_percentile: element
  // int(n * p) of the sorted values for the top, int(n * (1 - p)) for the bottom), clipping outliers.
  double raw_min = 0, raw_max = 0;
  if (const double p = percentile_of(spec_.scale_method); p > 0) {
    torch::Tensor flat = x.flatten();
    const int64_t n = flat.numel();
    auto kth = [&](int64_t index) {
      index = std::min(std::max<int64_t>(index, 0), n - 1);
      return std::get<0>(torch::kthvalue(flat, index + 1)).item<double>();
    };
    raw_max = kth(static_cast<int64_t>(static_cast<double>(n) * p));
    raw_min = kth(static_cast<int64_t>(static_cast<double>(n) * (1 - p)));
  } else {
    raw_min = x.min().item<double>(), raw_max = x.max().item<double>();
  }
  double x_min = std::min(raw_min, 0.0), x_max = std::max(raw_max, 0.0);
  if (spec_.scale_method.find("scale") != std::string::npos) {
    x_min = x_min * static_cast<double>(spec_.bits + 2) / 8.0;
    x_max = x_max * static_cast<double>(spec_.bits + 2) / 8.0;
  }
  const double absmax = std::max(std::abs(x_min), x_max);
  double delta;
  bool zero = false;
  if (spec_.flavor == QuantFlavor::kQDiffusion) {
    // quirk: the asymmetric step uses the raw extrema, not the zero-including (scaled) range
    delta = spec_.symmetric ? absmax / static_cast<double>(n_levels_)
                            : (raw_max - raw_min) / static_cast<double>(n_levels_ - 1);
    zero = spec_.symmetric || spec_.always_zero;
  } else {  // brecq
    if (spec_.symmetric) {
      x_min = x_min < 0 ? -absmax : 0.0;
      x_max = absmax;
    }
    delta = (x_max - x_min) / static_cast<double>(n_levels_ - 1);
  }
  if (delta < 1e-8) delta = 1e-8;
  const double z = zero ? 0.0 : py_round(-x_min / delta);
  return {scalar_f32(delta), scalar_f32(z)};
}

std::pair<torch::Tensor, torch::Tensor> UniformQuantizer::init_mse(const torch::Tensor& x) {
  const bool always_zero = spec_.flavor == QuantFlavor::kQDiffusion && spec_.always_zero;
  const int64_t steps = (int64_t{1} << spec_.bits) - 1;  // 2^b - 1, also for symmetric (quirk)
  torch::Tensor x_max = x.max(), x_min = x.min();
  torch::Tensor best_score, delta, zp;
  for (int i = 0; i < 80; ++i) {
    const double f = 1.0 - (i * 0.01);
    torch::Tensor new_max = x_max * f, new_min = x_min * f;
    torch::Tensor d = always_zero ? new_max / steps : (new_max - new_min) / steps;
    torch::Tensor z = always_zero ? torch::zeros({}, torch::kFloat32) : (-new_min / d).round();
    torch::Tensor x_int = torch::round(x / d);
    // the search clamps to [0, n_levels - 1] whatever the symmetry (quirk for symmetric qdiff)
    torch::Tensor x_quant = torch::clamp(x_int + z, 0, static_cast<double>(n_levels_ - 1));
    torch::Tensor x_q = (x_quant - z) * d;
    torch::Tensor score = lp_loss(x, x_q, 2.4, /*reduce_all=*/true);
    const bool better =
        best_score.defined() ? (score < best_score).item<bool>() : (score < 1e10).item<bool>();
    if (better) {
      best_score = score;
      delta = d;
      zp = z;
    }
  }
  DMEVAL_CHECK(delta.defined(), "mse scale search found no finite candidate (input holds NaN or Inf?)");
  return {delta, zp};
}

// ---- QDrop / PTQ4DM ----------------------------------------------------------------------------

namespace {
struct QDropOps {
  int64_t n_levels;
  bool channel_wise;
  torch::Tensor eps = torch::tensor(1e-8f);

  std::pair<torch::Tensor, torch::Tensor> qparams(const torch::Tensor& min_val,
                                                  const torch::Tensor& max_val) const {
    torch::Tensor min_neg = torch::min(min_val, torch::zeros_like(min_val));
    torch::Tensor max_pos = torch::max(max_val, torch::zeros_like(max_val));
    torch::Tensor scale = (max_pos - min_neg) / static_cast<double>(n_levels - 1);
    scale = torch::max(scale, eps);
    torch::Tensor zp = 0 - torch::round(min_neg / scale);
    zp = torch::clamp(zp, 0, n_levels - 1);
    return {scale, zp};
  }
  torch::Tensor quantize(const torch::Tensor& x, const torch::Tensor& x_max,
                         const torch::Tensor& x_min) const {
    auto [delta, zp] = qparams(x_min, x_max);
    if (channel_wise) {
      std::vector<int64_t> shape(x.dim(), 1);
      shape[0] = x.size(0);
      delta = delta.reshape(shape);
      zp = zp.reshape(shape);
    }
    torch::Tensor x_int = torch::round(x / delta);
    torch::Tensor x_quant = torch::clamp(x_int + zp, 0, n_levels - 1);
    return (x_quant - zp) * delta;
  }
  torch::Tensor loss(const torch::Tensor& pred, const torch::Tensor& tgt) const {
    torch::Tensor e = (pred - tgt).abs().pow(2.4);
    return channel_wise ? torch::flatten(e, 1).mean(1) : e.mean();
  }
};
}  // namespace

std::pair<torch::Tensor, torch::Tensor> UniformQuantizer::init_qdrop(const torch::Tensor& x) {
  QDropOps ops{n_levels_, spec_.channel_wise};
  if (one_side_.empty())
    one_side_ = (x.min() >= 0.0).item<bool>() ? "pos" : (x.max() <= 0.0).item<bool>() ? "neg" : "no";
  constexpr int kNum = 100;
  torch::Tensor best_min, best_max;
  if (one_side_ != "no" || spec_.symmetric) {
    // 1-D search over a symmetric (or one-sided) threshold.
    torch::Tensor x_min, x_max;
    if (spec_.channel_wise)
      std::tie(x_min, x_max) = torch::aminmax(torch::flatten(x, 1), 1);
    else
      std::tie(x_min, x_max) = torch::aminmax(x);
    torch::Tensor xrange = torch::max(x_min.abs(), x_max);
    if (!spec_.channel_wise) {
      // The reference's vectorised per-tensor search: 100 candidates, batches of 8, first minimum.
      torch::Tensor thres =
          xrange / kNum * torch::arange(1, kNum + 1, torch::dtype(torch::kLong).device(x.device()));
      torch::Tensor new_min = one_side_ == "pos" ? torch::zeros_like(thres) : -thres;
      torch::Tensor new_max = one_side_ == "neg" ? torch::zeros_like(thres) : thres;
      torch::Tensor scale = (new_max - new_min) / static_cast<double>(n_levels_ - 1);
      scale = torch::max(scale, ops.eps);
      torch::Tensor zp = -torch::round(new_min / scale);
      zp = torch::clamp_(zp, 0, n_levels_ - 1).view({-1, 1});
      scale = scale.view({-1, 1});
      std::vector<torch::Tensor> scores;
      torch::Tensor flat = x.reshape({1, -1});
      for (int64_t i = 0; i < kNum; i += 8) {
        torch::Tensor s = scale.slice(0, i, i + 8), z = zp.slice(0, i, i + 8);
        torch::Tensor x_int = (flat / s).round_();
        x_int.clamp_(-z, n_levels_ - 1 - z);
        torch::Tensor x_sim = x_int.mul_(s);
        scores.push_back(x_sim.sub_(flat).abs_().pow_(2.4).mean(1));
      }
      const int64_t ind = torch::argmin(torch::hstack(scores)).item<int64_t>();
      best_min = new_min[ind];
      best_max = new_max[ind];
    } else {
      torch::Tensor best_score = torch::zeros_like(x_min) + 1e10;
      best_min = x_min.clone();
      best_max = x_max.clone();
      for (int i = 1; i <= kNum; ++i) {
        torch::Tensor thres = xrange / kNum * i;
        torch::Tensor new_min = one_side_ == "pos" ? torch::zeros_like(x_min) : -thres;
        torch::Tensor new_max = one_side_ == "neg" ? torch::zeros_like(x_max) : thres;
        torch::Tensor score = ops.loss(x, ops.quantize(x, new_max, new_min));
        best_min = torch::where(score < best_score, new_min, best_min);
        best_max = torch::where(score < best_score, new_max, best_max);
        best_score = torch::min(score, best_score);
      }
    }
  } else {
    // 2-D search over the range and the zero point.
    torch::Tensor x_min, x_max;
    if (spec_.channel_wise) {
      std::tie(x_min, x_max) = torch::aminmax(torch::flatten(x, 1), 1);
      x_max = torch::max(x_max, torch::zeros_like(x_max));
      x_min = torch::min(x_min, torch::zeros_like(x_min));
    } else {
      std::tie(x_min, x_max) = torch::aminmax(x);
    }
    torch::Tensor xrange = x_max - x_min;
    torch::Tensor best_score = torch::zeros_like(x_min) + 1e10;
    best_min = x_min.clone();
    best_max = x_max.clone();
    const int64_t steps = (int64_t{1} << spec_.bits) - 1;
    for (int i = 1; i <= kNum; ++i) {
      torch::Tensor tmp_min = torch::zeros_like(x_min);
      torch::Tensor tmp_max = xrange / kNum * i;
      torch::Tensor tmp_delta = (tmp_max - tmp_min) / steps;
      for (int64_t zp = 0; zp < n_levels_; ++zp) {
        torch::Tensor new_min = tmp_min - tmp_delta * zp;
        torch::Tensor new_max = tmp_max - tmp_delta * zp;
        torch::Tensor score = ops.loss(x, ops.quantize(x, new_max, new_min));
        best_min = torch::where(score < best_score, new_min, best_min);
        best_max = torch::where(score < best_score, new_max, best_max);
        best_score = torch::min(best_score, score);
      }
    }
  }
  if (spec_.leaf_param) {  // EMA over calibration batches (initialised to the first result)
    if (!running_min_.defined()) {
      running_min_ = best_min;
      running_max_ = best_max;
    }
    running_min_ = best_min * 0.1 + running_min_ * 0.9;
    running_max_ = best_max * 0.1 + running_max_ * 0.9;
    best_min = running_min_;
    best_max = running_max_;
  }
  auto [scale, zp] = ops.qparams(best_min, best_max);
  if (spec_.channel_wise) {
    std::vector<int64_t> shape(x.dim(), 1);
    shape[0] = x.size(0);
    scale = scale.reshape(shape);
    zp = zp.reshape(shape);
  }
  return {scale, zp};
}

void UniformQuantizer::momentum_update(const torch::Tensor& x_in) {
  DMEVAL_CHECK(spec_.flavor == QuantFlavor::kQDiffusion && spec_.leaf_param && x_min_.defined(),
               "running statistics need an initialised q-diffusion activation (leaf) quantizer");
  torch::NoGradGuard no_grad;
  torch::Tensor x = x_in.detach();
  constexpr double kMomentum = 0.95;
  x_min_ = x_min_ * kMomentum + x.min() * (1 - kMomentum);
  x_max_ = x_max_ * kMomentum + x.max() * (1 - kMomentum);
  torch::Tensor delta;
  if (spec_.symmetric)
    delta = torch::max(x_min_.abs(), x_max_.abs()) / n_levels_;
  else
    delta = spec_.always_zero ? x_max_ / (n_levels_ - 1) : (x_max_ - x_min_) / (n_levels_ - 1);
  delta = torch::clamp(delta, 1e-8);
  if (!spec_.symmetric)
    zero_point_ = spec_.always_zero ? torch::zeros({}, torch::kFloat32) : (-x_min_ / delta).round();
  delta_ = delta;
}

}  // namespace dmeval
