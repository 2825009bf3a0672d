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
  for (const auto& p : profiles()) {
    std::printf("%s: %s\n", p.name.c_str(), p.summary.c_str());
    std::printf("  model %s, %s, %lld steps, eta %g, %lld samples, network %s, reference %s\n",
                p.model.c_str(), p.sampler.skip_type.c_str(), static_cast<long long>(p.sampler.steps),
                p.sampler.eta, static_cast<long long>(p.samples), p.network.c_str(), p.ref.c_str());
    for (const ProfileFile* f : {&p.unet, &p.network_weights, &p.reference})
      if (!f->path.empty())
        std::printf("  %s: %s%s\n", f->role.c_str(), profile_path(f->path).c_str(),
                    std::filesystem::exists(profile_path(f->path)) ? "" : "  (missing)");
    for (const auto& [method, kv] : p.calib) {
      std::string s;
      for (const auto& x : kv) s += " " + x;
      std::printf("  calibration budget %s:%s\n", method.c_str(), s.c_str());
    }
    std::printf("  %s\n", p.notes.c_str());
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
      saved.shard = o->shard;
      saved.max_chunks = o->max_chunks;
      saved.quiet = o->quiet;
      saved.json = o->json;
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
