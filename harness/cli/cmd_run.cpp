// `dmeval run`: one table cell end to end (run_cell.h). With no model given it runs the embedded
// `shapes` profile: `dmeval run --method tinydm --bits 4/8` works on a fresh machine.
#include <cstdio>
#include <filesystem>

#include "harness/cli/commands.h"
#include "harness/cli/profiles.h"
#include "harness/cli/run_cell.h"

namespace dmeval::cli {

namespace {
void print_profiles() {
  for (const ProfileEntry& e : find_profiles()) {
    if (!e.error.empty()) {
      std::printf("%s: refused: %s\n", e.name.c_str(), e.error.c_str());
      continue;
    }
    const Profile& p = e.profile;
    std::printf("%s: %s\n  file %s\n", p.name.c_str(), p.summary.c_str(), p.file.c_str());
    for (auto it = p.options.begin(); it != p.options.end(); ++it) {
      if (p.files.count(it.key())) continue;
      std::printf("  %s = %s\n", it.key().c_str(), p.option_text(it.key()).c_str());
      if (auto w = p.why.find(it.key()); w != p.why.end()) std::printf("      why: %s\n", w->second.c_str());
    }
    for (const auto& [key, f] : p.files)
      std::printf("  %s (%s): %s%s\n", key.c_str(), f.role.c_str(), f.path.c_str(),
                  std::filesystem::exists(f.path) ? "" : "  (missing)");
    for (const auto& [method, kv] : p.calib) {
      std::string s;
      for (const auto& x : kv) s += " " + x;
      std::printf("  calibration budget %s:%s\n", method.c_str(), s.c_str());
      if (auto w = p.why.find("calib." + method); w != p.why.end())
        std::printf("      why: %s\n", w->second.c_str());
    }
    if (auto w = p.why.find("calib"); w != p.why.end())
      std::printf("  calibration budgets: %s\n", w->second.c_str());
    if (!p.notes.empty()) std::printf("  %s\n", p.notes.c_str());
  }
}
}  // namespace

void add_run_command(CLI::App& app) {
  auto o = std::make_shared<RunCellOptions>();
  auto resume = std::make_shared<std::string>();
  auto list = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand(
      "run",
      "one table cell end to end: quantize, sample, score, record (default: the embedded shapes profile)");
  add_run_cell_options(cmd, *o);
  cmd->add_option("--resume", *resume,
                  "continue the run in this folder with its saved options (--shard, --max-chunks, --quiet "
                  "and --json still apply)");
  cmd->add_flag("--list-profiles", *list, "describe the profiles and whether their files are here");
  cmd->callback([o, resume, list, cmd] {
    if (*list) {
      print_profiles();
      return;
    }
    RunCellOptions opts = *o;
    if (!resume->empty()) {
      RunCellOptions saved = read_run_options(*resume);
      for (const auto& e : run_option_table().entries())  // how this process takes part
        if (!(e.traits & kSaved)) run_option_table().copy(e.key, *o, saved);
      opts = saved;
    } else {
      resolve_run_options(*cmd, opts);
      if (opts.out.empty()) opts.out = default_run_root(opts) + "/" + cell_name(opts);
    }
    auto res = run_cell(opts);
    if (!res) return;
    if (opts.json)
      std::printf("%s\n", res->dump(1).c_str());
    else
      std::printf("%s", format_cell_row(*res).c_str());
  });
}

}  // namespace dmeval::cli
