#include "core/runtime.h"

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <link.h>

#include <climits>
#include <cstdlib>
#include <sstream>
#include <thread>

#include "core/error.h"

namespace dmeval {

int default_thread_count() {
  if (const char* env = std::getenv("DMEVAL_THREADS")) {
    char* end = nullptr;
    long n = std::strtol(env, &end, 10);
    if (end == env || *end != '\0' || n < 1 || n > 4096)
      fail("DMEVAL_THREADS='{}' is not a positive thread count", env);
    return static_cast<int>(n);
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw ? static_cast<int>(hw) : 1;
}

void configure_threads(int threads) {
  if (threads < 1) fail("thread count must be at least 1, got {}", threads);
  at::set_num_threads(threads);
}

namespace {
// The BLAS libtorch actually loaded (Debian switches libblas.so.3 through update-alternatives).
std::string loaded_blas() {
  std::string found;
  dl_iterate_phdr(
      [](struct dl_phdr_info* info, size_t, void* data) {
        std::string name = info->dlpi_name ? info->dlpi_name : "";
        if (name.find("libblas.so") != std::string::npos || name.find("libopenblas") != std::string::npos ||
            name.find("libmkl") != std::string::npos) {
          char resolved[PATH_MAX];
          *static_cast<std::string*>(data) = realpath(name.c_str(), resolved) ? resolved : name;
          return 1;
        }
        return 0;
      },
      &found);
  return found;
}
}  // namespace

RuntimeInfo runtime_info() {
  RuntimeInfo r;
  r.torch_version = TORCH_VERSION;
  r.cuda_available = torch::cuda::is_available();
  r.cuda_devices = r.cuda_available ? static_cast<int>(torch::cuda::device_count()) : 0;
  r.intra_op_threads = at::get_num_threads();
  r.hardware_threads = static_cast<int>(std::thread::hardware_concurrency());
  r.blas_library = loaded_blas();
  // Debian's netlib reference BLAS lives in .../blas/; OpenBLAS in .../openblas-*/.
  r.blas_is_reference = r.blas_library.find("/blas/libblas") != std::string::npos;
  std::istringstream info(at::get_parallel_info());
  std::string line;
  while (std::getline(info, line)) {
    if (line.rfind("ATen parallel backend:", 0) == 0) r.parallel_backend = line.substr(23);
  }
  return r;
}

}  // namespace dmeval
