#include "core/runtime.h"

#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <dlfcn.h>
#include <link.h>

#include <climits>
#include <cstdlib>
#include <fstream>
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
std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      return colon == std::string::npos ? "" : line.substr(line.find_first_not_of(' ', colon + 1));
    }
  return "";
}

// ATen's kernel set as at::show_config() states it (ATen exports no getter for it in 1.13).
std::string aten_capability() {
  std::istringstream config(at::show_config());
  std::string line;
  const std::string key = "CPU capability usage: ";
  while (std::getline(config, line)) {
    const size_t at = line.find(key);
    if (at != std::string::npos) return line.substr(at + key.size());
  }
  return "";
}

// oneDNN's effective ISA. Debian's libtorch ships libdnnl without its headers, so the C entry point
// dnnl_get_effective_cpu_isa is looked up in the already loaded library; values are dnnl_cpu_isa_t.
std::string onednn_isa() {
  using Fn = int (*)();
  auto fn = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, "dnnl_get_effective_cpu_isa"));
  if (!fn) return "";
  switch (fn()) {
    case 0x0: return "all";
    case 0x1: return "sse41";
    case 0x3: return "avx";
    case 0x7: return "avx2";
    case 0x407: return "avx2_vnni";
    case 0xf: return "avx512_mic";
    case 0x1f: return "avx512_mic_4ops";
    case 0x27: return "avx512_core";
    case 0x67: return "avx512_core_vnni";
    case 0xe7: return "avx512_core_bf16";
    case 0x3e7: return "avx512_core_amx";
    default: return "isa " + std::to_string(fn());
  }
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
  r.cpu_model = cpu_model();
  r.aten_capability = aten_capability();
  r.onednn_isa = onednn_isa();
  std::istringstream info(at::get_parallel_info());
  std::string line;
  while (std::getline(info, line)) {
    if (line.rfind("ATen parallel backend:", 0) == 0) r.parallel_backend = line.substr(23);
  }
  return r;
}

}  // namespace dmeval
