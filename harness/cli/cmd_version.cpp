// `dmeval version`: what this binary is and what it runs on.
#include <nlohmann/json.hpp>

#include <cstdio>

#include "core/build_info.h"
#include "core/runtime.h"
#include "harness/cli/commands.h"

namespace dmeval::cli {

void add_version_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("version",
                                 "Print version, git revision, libtorch, CUDA, threads, CPU and kernel set");
  auto* json = cmd->add_flag("--json", "machine-readable output");
  cmd->callback([json] {
    RuntimeInfo r = runtime_info();
    if (*json) {
      nlohmann::ordered_json j = {{"version", build_version()},
                                  {"git_revision", build_git_revision()},
                                  {"build_type", build_type()},
                                  {"compiler", build_compiler()},
                                  {"libtorch", r.torch_version},
                                  {"cuda_available", r.cuda_available},
                                  {"cuda_devices", r.cuda_devices},
                                  {"intra_op_threads", r.intra_op_threads},
                                  {"hardware_threads", r.hardware_threads},
                                  {"parallel_backend", r.parallel_backend},
                                  {"blas", r.blas_library},
                                  {"blas_is_reference", r.blas_is_reference},
                                  {"cpu", r.cpu_model},
                                  {"aten_cpu_capability", r.aten_capability},
                                  {"onednn_isa", r.onednn_isa}};
      std::printf("%s\n", j.dump(2).c_str());
      return;
    }
    std::printf("dmeval %s (git %s, %s, %s)\n", build_version(), build_git_revision(), build_type(),
                build_compiler());
    std::printf("libtorch         %s (%s)\n", r.torch_version.c_str(), r.parallel_backend.c_str());
    std::printf("CUDA available   %s", r.cuda_available ? "yes" : "no");
    if (r.cuda_available) std::printf(" (%d device%s)", r.cuda_devices, r.cuda_devices == 1 ? "" : "s");
    std::printf("\nthreads          %d intra-op (machine has %d)\n", r.intra_op_threads, r.hardware_threads);
    std::printf("CPU              %s\n", r.cpu_model.empty() ? "(unknown)" : r.cpu_model.c_str());
    std::printf("kernels          ATen %s, oneDNN %s\n",
                r.aten_capability.empty() ? "?" : r.aten_capability.c_str(),
                r.onednn_isa.empty() ? "?" : r.onednn_isa.c_str());
    std::printf(
        "BLAS             %s%s\n", r.blas_library.empty() ? "(none loaded)" : r.blas_library.c_str(),
        r.blas_is_reference ? "  [reference BLAS: ~40x slower; apt-get install libopenblas0-openmp]" : "");
  });
}

}  // namespace dmeval::cli
