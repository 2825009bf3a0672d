#include "generators/unet_runner.h"

#include <torch/cuda.h>
#include <torch/torch.h>

#include <ATen/Context.h>

#include "core/error.h"

namespace dmeval {

void prepare_device_arithmetic(const UNetRunOptions& o) {
  if (o.device.is_cuda()) {
    // TF32 would change every convolution by ~1e-3 relative; samples stay float32 (recorded).
    at::globalContext().setAllowTF32CuDNN(false);
    at::globalContext().setAllowTF32CuBLAS(false);
  }
}

EpsModel micro_batched_eps(NetworkForward forward, const UNetRunOptions& o) {
  DMEVAL_CHECK(o.micro_batch >= 1, "evaluation micro-batch must be at least 1, got {}", o.micro_batch);
  const int64_t m = o.micro_batch;
  return [forward = std::move(forward), m](const torch::Tensor& x, const torch::Tensor& t, int64_t) {
    torch::NoGradGuard no_grad;
    const int64_t n = x.size(0);
    if (n == m) return forward(x, t, torch::arange(n, torch::kLong));
    std::vector<torch::Tensor> outs;
    for (int64_t b = 0; b < n; b += m) {
      const int64_t e = std::min(n, b + m);
      torch::Tensor xb = x.slice(0, b, e), tb = t.slice(0, b, e);
      torch::Tensor rows = torch::arange(b, e, torch::kLong);
      if (e - b < m) {  // pad with copies of the last image; their outputs are dropped
        const int64_t pad = m - (e - b);
        std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
        shape[0] = pad;
        xb = torch::cat({xb, xb.slice(0, -1).expand(shape)}, 0);
        tb = torch::cat({tb, tb.slice(0, -1).expand({pad})}, 0);
        rows = torch::cat({rows, torch::full({pad}, e - 1, torch::kLong)});
      }
      outs.push_back(forward(xb, tb, rows).slice(0, 0, e - b));
    }
    return torch::cat(outs, 0);
  };
}

torch::Device parse_device(const std::string& name) {
  torch::Device d = torch::kCPU;
  try {
    d = torch::Device(name);
  } catch (const std::exception&) {
    fail("--device '{}' is not a device (cpu, cuda, cuda:N)", name);
  }
  if (d.is_cuda()) {
    DMEVAL_CHECK(torch::cuda::is_available(), "--device {}: this build or machine has no CUDA device", name);
    DMEVAL_CHECK(!d.has_index() || d.index() < static_cast<int>(torch::cuda::device_count()),
                 "--device {}: only {} CUDA devices", name, torch::cuda::device_count());
  }
  return d;
}

}  // namespace dmeval
