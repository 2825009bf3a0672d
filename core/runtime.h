// Process-wide runtime settings (threads) and facts about the machine and libtorch, reported by
// `dmeval version` and recorded with every result.
#pragma once

#include <string>

namespace dmeval {

// Threads for libtorch's intra-op pool. Debian's libtorch starts with 1 thread in C++ programs,
// so dmeval sets it explicitly: DMEVAL_THREADS if set, else every core of the machine.
int default_thread_count();
void configure_threads(int threads);

struct RuntimeInfo {
  std::string torch_version;
  bool cuda_available = false;
  int cuda_devices = 0;
  std::string cuda_device_name;
  int intra_op_threads = 0;
  int hardware_threads = 0;
  std::string parallel_backend;  // at::get_parallel_info() summary line
  std::string blas_library;      // resolved path of the loaded libblas (reference BLAS is slow)
  bool blas_is_reference = false;
  // The machine and the kernels in use, so a numeric difference names where it came from.
  std::string cpu_model;        // /proc/cpuinfo "model name"
  std::string aten_capability;  // ATen's vectorised kernel set ("AVX2", "AVX512", "NO AVX")
  std::string onednn_isa;       // oneDNN's effective instruction set ("avx512_core", "sse41", ...)
};

RuntimeInfo runtime_info();

}  // namespace dmeval
