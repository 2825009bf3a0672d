#include "generators/quant/calibration_data.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <random>

#include "core/error.h"

namespace dmeval {

namespace {

using SampleFn =
    std::function<torch::Tensor(const EpsModel&, torch::Tensor x_T, NoiseSource&, int64_t first)>;

// One batch's network and the labels its rows get (undefined: unconditional); with `guided` every row
// appears twice, the unconditional copy (label uc) first, as the guided network sees it.
struct BatchNet {
  EpsModel eps;
  torch::Tensor labels;
  bool guided = false;
  int64_t uc = 0;
};

Trajectories record(const std::function<BatchNet(int64_t first, int64_t m)>& net_for, const SampleFn& sample,
                    NoiseSource& noise, int64_t n, int64_t batch, c10::IntArrayRef image_shape,
                    torch::Device device) {
  DMEVAL_CHECK(n >= 1 && batch >= 1, "calibration trajectories need at least one image");
  Trajectories tr;
  std::vector<std::vector<torch::Tensor>> xs, ts, ys;
  std::vector<torch::Tensor> finals;
  for (int64_t b = 0; b < n; b += batch) {
    const int64_t m = std::min(batch, n - b);
    const BatchNet net = net_for(b, m);
    EpsModel recording = [&](const torch::Tensor& x, const torch::Tensor& t, int64_t k) {
      if (static_cast<int64_t>(xs.size()) <= k) {
        xs.resize(k + 1);
        ts.resize(k + 1);
        ys.resize(k + 1);
      }
      DMEVAL_CHECK(
          torch::isfinite(x).all().item<bool>(),
          "the full-precision model's calibration trajectory holds NaN or Inf at step {} (images {}..{})", k,
          b, b + m - 1);
      torch::Tensor xc = x.detach().to(torch::kCPU), tc = t.detach().to(torch::kCPU);
      if (net.labels.defined()) {
        torch::Tensor y = net.labels.to(torch::kCPU);
        if (net.guided) {
          xc = torch::cat({xc, xc});
          tc = torch::cat({tc, tc});
          y = torch::cat({torch::full_like(y, net.uc), y});
        }
        ys[k].push_back(y);
      }
      xs[k].push_back(xc);
      ts[k].push_back(tc);
      return net.eps(x, t, k);
    };
    torch::Tensor x_T = noise.initial(b, m, image_shape).to(device);
    finals.push_back(sample(recording, x_T, noise, b).to(torch::kCPU));
  }
  for (size_t k = 0; k < xs.size(); ++k) {
    tr.xs.push_back(torch::cat(xs[k], 0));
    tr.ts.push_back(torch::cat(ts[k], 0));
    if (!ys[k].empty()) tr.ys.push_back(torch::cat(ys[k], 0));
  }
  tr.x0.push_back(torch::cat(finals, 0));
  return tr;
}

}  // namespace

Conditioning CalibSet::cond() const {
  Conditioning c;
  c.class_labels = y;
  return c;
}

Trajectories record_trajectories(const DiffusionModel& m, const EpsModel& eps, const SamplerSpec& spec,
                                 NoiseSource& noise, int64_t n, int64_t batch, torch::Device device) {
  m.validate_sampler(spec);
  SampleFn sample = [&](const EpsModel& e, torch::Tensor x_T, NoiseSource& nz, int64_t first) {
    return m.sample(spec, e, std::move(x_T), nz, first);
  };
  return record([&](int64_t, int64_t) { return BatchNet{eps}; }, sample, noise, n, batch, m.sample_shape(),
                device);
}

Trajectories record_trajectories(const DiffusionModel& m,
                                 const std::function<EpsModel(const Conditioning&)>& eps_for,
                                 const std::function<Conditioning(int64_t first, int64_t n)>& conditioning,
                                 const SamplerSpec& spec, NoiseSource& noise, int64_t n, int64_t batch,
                                 torch::Device device) {
  m.validate_sampler(spec);
  SampleFn sample = [&](const EpsModel& e, torch::Tensor x_T, NoiseSource& nz, int64_t first) {
    return m.sample(spec, e, std::move(x_T), nz, first);
  };
  auto net_for = [&](int64_t first, int64_t count) {
    const Conditioning c = conditioning(first, count);
    return BatchNet{eps_for(c), c.class_labels, c.class_labels.defined() && c.guidance != 1.0,
                    m.num_classes()};
  };
  return record(net_for, sample, noise, n, batch, m.sample_shape(), device);
}

Trajectories record_trajectories(const EpsModel& model, const DiffusionSchedule& schedule,
                                 const SamplerSpec& spec, NoiseSource& noise, int64_t n, int64_t batch,
                                 c10::IntArrayRef image_shape, torch::Device device) {
  SampleFn sample = [&](const EpsModel& e, torch::Tensor x_T, NoiseSource& nz, int64_t first) {
    return run_sampler(spec, schedule, e, std::move(x_T), nz, first);
  };
  return record([&](int64_t, int64_t) { return BatchNet{model}; }, sample, noise, n, batch, image_shape,
                device);
}

CalibSet CalibSet::slice(int64_t begin, int64_t end) const {
  end = std::min(end, size());
  return {x.slice(0, begin, end), t.slice(0, begin, end), y.defined() ? y.slice(0, begin, end) : y};
}

CalibSet CalibSet::index(const torch::Tensor& idx) const {
  return {x.index_select(0, idx), t.index_select(0, idx),
          y.defined() ? y.index_select(0, idx.to(y.device())) : y};
}

CalibSet qdiffusion_calibration(const Trajectories& tr, int64_t cali_n, int64_t cali_st) {
  const int64_t nsteps = tr.steps();
  DMEVAL_CHECK(cali_st >= 1 && cali_st <= nsteps,
               "calibration steps {} must be in 1..{} (the sampler's steps)", cali_st, nsteps);
  DMEVAL_CHECK(cali_n >= 1 && cali_n <= tr.images(), "calibration samples per step {} must be in 1..{}",
               cali_n, tr.images());
  std::vector<torch::Tensor> x, t, y;
  for (int64_t k = 0; k < nsteps; k += nsteps / cali_st) {
    x.push_back(tr.xs[k].slice(0, 0, cali_n));
    t.push_back(tr.ts[k].slice(0, 0, cali_n));
    if (!tr.ys.empty()) y.push_back(tr.ys[k].slice(0, 0, cali_n));
  }
  return {torch::cat(x, 0), torch::cat(t, 0), y.empty() ? torch::Tensor() : torch::cat(y, 0)};
}

CalibSet ndtc_calibration(const Trajectories& tr, double mu, double sigma, bool loop_counter_t,
                          uint64_t seed) {
  const int64_t nsteps = tr.steps(), n = tr.x0[0].size(0);
  DMEVAL_CHECK(nsteps >= 2, "NDTC calibration needs a trajectory of at least 2 steps");
  // Guided trajectories hold two rows per image (unconditional copies first): NDTC takes the
  // conditional one.
  const int64_t offset = tr.images() - n;
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(mu, sigma);
  std::vector<torch::Tensor> x, t, y;
  for (int64_t i = 0; i < n; ++i) {
    int64_t k = static_cast<int64_t>(normal(rng) * static_cast<double>(nsteps));  // truncation toward zero
    k = std::clamp<int64_t>(k, 0, nsteps - 1);
    // the state after loop iteration k = the input of step k + 1 (the final sample after the last)
    torch::Tensor state = k + 1 < nsteps ? tr.xs[k + 1][offset + i] : tr.x0[0][i];
    x.push_back(state.unsqueeze(0));
    const float tv = loop_counter_t ? static_cast<float>(k)
                                    : (k + 1 < nsteps ? tr.ts[k + 1][offset + i].item<float>() : 0.0f);
    t.push_back(torch::full({1}, tv));
    if (!tr.ys.empty()) y.push_back(tr.ys[0].slice(0, offset + i, offset + i + 1));
  }
  return {torch::cat(x, 0), torch::cat(t, 0), y.empty() ? torch::Tensor() : torch::cat(y, 0)};
}

CalibSet random_pairs_calibration(const Trajectories& tr, int64_t count, uint64_t seed) {
  const int64_t nsteps = tr.steps(), n = tr.images();
  DMEVAL_CHECK(count >= 1 && count <= nsteps * n, "{} calibration pairs asked for, {} recorded", count,
               nsteps * n);
  torch::Tensor all_x = torch::cat(tr.xs, 0), all_t = torch::cat(tr.ts, 0);
  at::Generator g = at::make_generator<at::CPUGeneratorImpl>(seed);
  torch::Tensor idx = torch::randperm(all_x.size(0), g, torch::kLong).slice(0, 0, count);
  return {all_x.index_select(0, idx), all_t.index_select(0, idx),
          tr.ys.empty() ? torch::Tensor() : torch::cat(tr.ys, 0).index_select(0, idx)};
}

}  // namespace dmeval
