// `dmeval report table`: the papers' comparison tables from the results database.
#include <cstdio>
#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"
#include "db/results.h"
#include "harness/cli/commands.h"
#include "reports/published.h"
#include "reports/regression.h"
#include "reports/result_set.h"
#include "reports/table.h"

#include <CLI/CLI.hpp>

namespace dmeval::cli {

namespace {
void write_text(const std::string& out, const std::string& text) {
  if (out.empty() || out == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return;
  }
  AtomicFile f(out);
  f.write(text.data(), text.size());
  f.commit();
}

db::ResultsDb open_db(const std::string& db) {
  const std::string path = db.empty() ? db::default_db_path() : db;
  if (!std::filesystem::exists(path))
    fail("{}: no results database here (pass --db PATH or set DMEVAL_DB)", path);
  return db::ResultsDb::open(path);
}

void add_regress(CLI::App* cmd) {
  struct Opts {
    std::string db, baseline, candidate, format = "md", out;
    std::vector<std::string> thresholds;
    double noise_k = 2.0;
  };
  auto o = std::make_shared<Opts>();
  auto* r = cmd->add_subcommand("regress", "compare a candidate run with a baseline; exit 1 on regression");
  r->add_option("--db", o->db, "results database (default: $DMEVAL_DB, else ./dmeval.db)");
  r->add_option("--baseline", o->baseline, "run id, tag, latest or previous")->required();
  r->add_option("--candidate", o->candidate, "run id, tag, latest or previous")->required();
  r->add_option(
      "--threshold", o->thresholds,
      "per-metric threshold, absolute (fid=0.5) or relative (fid=2%); repeatable. Defaults: fid/sfid/is "
      "2%, precision/recall 0.01, kid 0.001, psnr 0.01 dB, ssim 0.0005, lpips 0.002, latency 5%, size "
      "0.01 MB");
  r->add_option("--noise-k", o->noise_k, "a change must also exceed k x the combined noise (default 2)")
      ->check(CLI::NonNegativeNumber);
  r->add_option("--format", o->format, "md or html")->check(CLI::IsMember({"md", "html"}));
  r->add_option("-o,--output", o->out, "output file (default: standard output)");
  r->callback([o] {
    db::ResultsDb rdb = open_db(o->db);
    reports::RegressOptions ro;
    ro.noise_k = o->noise_k;
    for (const auto& t : o->thresholds) ro.thresholds.insert(reports::parse_threshold(t));
    const int64_t b = rdb.resolve_run(o->baseline), c = rdb.resolve_run(o->candidate);
    if (b == c) fail("--baseline and --candidate are the same run ({})", b);
    reports::RegressReport rep = reports::compare_runs(rdb.connection(), b, c, ro);
    write_text(o->out, reports::render_regress(rep, o->format));
    if (rep.failed()) throw ExitCode{1};
  });
}
}  // namespace

void add_report_command(CLI::App& app) {
  struct Opts {
    std::string db, layout = "generic", format = "md", out, published, paper_dataset;
    reports::ResultFilter filter;
    int64_t steps = 0;
    bool with_paper = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd =
      app.add_subcommand("report", "tables (and later plots, regressions, HTML) from the results database");
  cmd->require_subcommand(1);
  add_regress(cmd);
  auto* table = cmd->add_subcommand("table", "a comparison table as the papers print it");
  table->add_option("--db", o->db, "results database (default: $DMEVAL_DB, else ./dmeval.db)");
  table
      ->add_option(
          "--layout", o->layout,
          "tinydm: Timesteps | Bit-width (W/A) | Method | Size (MB) | FID | sFID | IS | Precision; sr: "
          "Method | Params (M) | FLOPs (G) | PSNR | SSIM | LPIPS per dataset; generic: every metric per run")
      ->check(CLI::IsMember(reports::table_layout_names()));
  table->add_option("--format", o->format, "md, latex, csv, html or json")
      ->check(CLI::IsMember(reports::table_format_names()));
  table->add_option("-o,--output", o->out, "output file (default: standard output)");
  table->add_option("--tag", o->filter.tag, "only runs with this tag");
  table->add_option("--method", o->filter.method, "only this method");
  table->add_option("--dataset", o->filter.dataset, "only this dataset (as recorded, e.g. \"Set5 x4\")");
  table->add_option("--steps", o->steps, "only runs with this many sampling steps");
  table->add_option("--bits", o->filter.bits, "only this W/A bit-width, e.g. 4/8");
  table->add_option("--run", o->filter.runs,
                    "only these run ids (all of them, not only the latest per setting)");
  table->add_flag("--with-paper", o->with_paper,
                  "put the published value and the difference next to each cell");
  table->add_option("--published", o->published,
                    "published-results file (default: the one shipped with dmeval, from the papers' tables)");
  table->add_option(
      "--paper-dataset", o->paper_dataset,
      "dataset name in the published table for runs that record none, e.g. \"LSUN-Bedrooms 256x256\"");
  table->callback([o] {
    const std::string path = o->db.empty() ? db::default_db_path() : o->db;
    if (!std::filesystem::exists(path))
      fail("{}: no results database here (pass --db PATH or set DMEVAL_DB)", path);
    db::ResultsDb rdb = db::ResultsDb::open(path);
    if (o->steps > 0) o->filter.steps = o->steps;
    auto results = reports::load_results(rdb.connection(), o->filter);
    if (results.empty()) fail("{}: no finished runs match the filters", path);
    reports::TableOptions to;
    to.layout = o->layout;
    to.with_paper = o->with_paper;
    to.paper_dataset = o->paper_dataset;
    if (o->with_paper)
      to.published =
          reports::load_published(o->published.empty() ? reports::default_published_path() : o->published);
    write_text(o->out, reports::render_tables(reports::build_tables(results, to), o->format));
  });
}

}  // namespace dmeval::cli
