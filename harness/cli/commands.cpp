#include "harness/cli/commands.h"

#include <cstdio>

#include "core/atomic_file.h"

namespace dmeval::cli {

const std::vector<CommandSpec>& command_registry() {
  static const std::vector<CommandSpec> kCommands = {
      {"version", add_version_command},   {"inspect", add_inspect_command},
      {"hash", add_hash_command},         {"features", add_features_command},
      {"stats", add_stats_command},       {"fid", add_fid_command},
      {"score", add_score_command},       {"sr", add_sr_command},
      {"resize", add_resize_command},     {"db", add_db_command},
      {"report", add_report_command},     {"sample", add_sample_command},
      {"bench", add_bench_command},       {"model-info", add_model_info_command},
      {"quantize", add_quantize_command}, {"shapes", add_shapes_command},
      {"train", add_train_command},       {"train-classifier", add_train_classifier_command},
      {"run", add_run_command},           {"sweep", add_sweep_command},
      {"merge", add_merge_command},       {"train-vq", add_train_vq_command},
  };
  return kCommands;
}

void write_output(const std::string& path, const std::string& text) {
  if (path.empty() || path == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return;
  }
  AtomicFile f(path);
  f.write(text.data(), text.size());
  f.commit();
}

}  // namespace dmeval::cli
