// `dmeval sweep`: every (method, bits, steps) cell of a table through `dmeval run`'s code, each in
// its own run folder under --out; cells already finished in the database under the same tag are
// skipped, so an interrupted sweep continues where it stopped (and an interrupted cell resumes from
// its chunks). Prints the table (`dmeval report table`) at the end.
#include <fmt/format.h>

#include <cstdio>
#include <sstream>

#include "core/error.h"
#include "harness/cli/commands.h"
#include "harness/cli/run_cell.h"
#include "reports/result_set.h"
#include "reports/table.h"

namespace dmeval::cli {

namespace {
std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}
}  // namespace

void add_sweep_command(CLI::App& app) {
  struct Opts {
    RunCellOptions cell;
    std::string methods = "fp,baseline,qdiffusion,ptq4dm,ptqd,tinydm", bits = "8/8,4/8", steps, format = "md",
                layout = "tinydm";
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("sweep", "run every method x bits (x steps) cell, skipping finished ones");
  add_run_cell_options(cmd, o->cell);
  cmd->add_option("--methods", o->methods, "comma-separated methods")->capture_default_str();
  cmd->add_option("--bits-list", o->bits, "comma-separated W/A bit widths (fp runs once at 32/32)")
      ->capture_default_str();
  cmd->add_option("--steps-list", o->steps, "comma-separated sampler step counts (default: --steps)");
  cmd->add_option("--format", o->format, "table format at the end: md, latex, csv, html, json")
      ->capture_default_str();
  cmd->add_option("--layout", o->layout, "table layout at the end (dmeval report table --layout)")
      ->capture_default_str();
  cmd->callback([o, cmd] {
    RunCellOptions& base = o->cell;
    resolve_run_options(*cmd, base);
    if (base.out.empty()) base.out = default_run_root(base);
    if (base.db.tag.empty()) base.db.tag = "sweep";
    if (base.db.db.empty()) base.db.db = db::default_db_path();
    std::vector<int64_t> steps;
    for (const auto& s : split_list(o->steps)) steps.push_back(std::stoll(s));
    if (steps.empty()) steps.push_back(base.sampler.steps);
    const auto methods = split_list(o->methods), bits = split_list(o->bits);
    DMEVAL_CHECK(!methods.empty() && !bits.empty(), "--methods and --bits-list must not be empty");
    for (const auto& m : methods) quant_method(m);  // unknown names fail now, listing the methods
    for (const auto& b : bits) parse_bits(b);
    int64_t done = 0, skipped = 0, pending = 0;
    for (int64_t st : steps)
      for (const auto& m : methods)
        for (const auto& b : m == "fp" ? std::vector<std::string>{"32/32"} : bits) {
          const BitWidths bw = parse_bits(b);
          {  // already finished under this tag?
            db::ResultsDb rdb = db::ResultsDb::open(base.db.db);
            reports::ResultFilter f;
            f.tag = base.db.tag;
            f.method = m;
            f.steps = st;
            bool found = false;
            for (const auto& r : reports::load_results(rdb.connection(), f))
              found |= r.w_bits == bw.weight && r.a_bits == bw.act && r.samples == base.samples;
            if (found) {
              ++skipped;
              std::fprintf(stderr, "sweep: %s %s %lld steps already finished (tag %s)\n", m.c_str(),
                           b.c_str(), static_cast<long long>(st), base.db.tag.c_str());
              continue;
            }
          }
          RunCellOptions c = base;
          c.quant.method = m;
          // --calib applies to the methods that have the setting (one list serves a whole sweep); the
          // profile's budget for the method is added by run_cell
          const auto defaults = quant_method(m).default_settings();
          c.quant.calib.clear();
          for (const auto& kv : base.quant.calib)
            if (defaults.contains(kv.substr(0, kv.find('=')))) c.quant.calib.push_back(kv);
          c.quant.bits = b;
          c.sampler.steps = st;
          c.out = base.out + "/" + cell_name(c);
          if (!base.save_samples.empty()) c.save_samples = base.save_samples + "/" + cell_name(c);
          std::fprintf(stderr, "sweep: %s %s, %lld steps -> %s\n", m.c_str(), b.c_str(),
                       static_cast<long long>(st), c.out.c_str());
          auto res = run_cell(c);
          if (res)
            ++done;
          else
            ++pending;
        }
    std::fprintf(stderr, "sweep: %lld cells run, %lld already finished, %lld unfinished\n",
                 static_cast<long long>(done), static_cast<long long>(skipped),
                 static_cast<long long>(pending));
    db::ResultsDb rdb = db::ResultsDb::open(base.db.db);
    reports::ResultFilter f;
    f.tag = base.db.tag;
    auto results = reports::load_results(rdb.connection(), f);
    reports::TableOptions to;
    to.layout = o->layout;
    std::printf("%s", reports::render_tables(reports::build_tables(results, to), o->format).c_str());
  });
}

}  // namespace dmeval::cli
