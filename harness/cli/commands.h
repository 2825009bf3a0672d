// The command registry: every `dmeval` subcommand is one file that adds itself to the CLI through
// a function listed in commands.cpp. Only commands that work are listed.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace dmeval::cli {

// Thrown by a command that completed its output but must end with a non-zero status (e.g. a
// regression report that found a regression); main returns `code` without printing an error.
struct ExitCode {
  int code;
};

// Writes a command's text output to `path` atomically, or to standard output for "" or "-".
void write_output(const std::string& path, const std::string& text);

struct CommandSpec {
  const char* name;
  // Adds the subcommand (options + callback) to the app.
  std::function<void(CLI::App& app)> add;
};

const std::vector<CommandSpec>& command_registry();

void add_version_command(CLI::App& app);
void add_inspect_command(CLI::App& app);
void add_hash_command(CLI::App& app);
void add_features_command(CLI::App& app);
void add_stats_command(CLI::App& app);
void add_fid_command(CLI::App& app);
void add_score_command(CLI::App& app);
void add_sr_command(CLI::App& app);
void add_resize_command(CLI::App& app);
void add_db_command(CLI::App& app);
void add_report_command(CLI::App& app);
void add_sample_command(CLI::App& app);
void add_shapes_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_train_vq_command(CLI::App& app);
void add_run_command(CLI::App& app);
void add_sweep_command(CLI::App& app);
void add_merge_command(CLI::App& app);
void add_train_classifier_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_model_info_command(CLI::App& app);
void add_quantize_command(CLI::App& app);

}  // namespace dmeval::cli
