// `dmeval report table`: the papers' comparison tables from the results database.
#include <cstdio>
#include <filesystem>

#include "core/atomic_file.h"
#include "core/build_info.h"
#include "core/error.h"
#include "core/image.h"
#include "db/results.h"
#include "harness/cli/commands.h"
#include "harness/cli/db_cli.h"
#include "metrics/image_source.h"
#include "metrics/paired_folders.h"
#include "reports/html_report.h"
#include "reports/plots.h"
#include "reports/published.h"
#include "reports/regression.h"
#include "reports/result_set.h"
#include "reports/table.h"

#include <CLI/CLI.hpp>

namespace dmeval::cli {

namespace {
void add_regress(CLI::App* cmd) {
  struct Opts {
    std::string db, baseline, candidate, baseline_tag, candidate_tag, format = "md", out;
    std::vector<std::string> thresholds;
    double noise_k = 2.0;
  };
  auto o = std::make_shared<Opts>();
  auto* r = cmd->add_subcommand("regress", "compare a candidate run with a baseline; exit 1 on regression");
  r->add_option("--db", o->db, "results database (default: $DMEVAL_DB, else ./dmeval.db)");
  r->add_option("--baseline", o->baseline, "run id, tag, latest or previous");
  r->add_option("--candidate", o->candidate, "run id, tag, latest or previous");
  r->add_option("--baseline-tag", o->baseline_tag,
                "compare whole sweeps: every run under this tag against the same cell under --candidate-tag");
  r->add_option("--candidate-tag", o->candidate_tag, "the sweep to check (with --baseline-tag)");
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
    db::ResultsDb rdb = open_existing_db(o->db);
    reports::RegressOptions ro;
    ro.noise_k = o->noise_k;
    for (const auto& t : o->thresholds) ro.thresholds.insert(reports::parse_threshold(t));
    if (!o->baseline_tag.empty() || !o->candidate_tag.empty()) {
      if (o->baseline_tag.empty() || o->candidate_tag.empty() || !o->baseline.empty() ||
          !o->candidate.empty())
        fail("give --baseline-tag and --candidate-tag together (and not --baseline/--candidate)");
      reports::SweepRegressReport rep =
          reports::compare_tags(rdb.connection(), o->baseline_tag, o->candidate_tag, ro);
      write_output(o->out, reports::render_sweep_regress(rep, o->format));
      if (rep.failed()) throw ExitCode{1};
      return;
    }
    if (o->baseline.empty() || o->candidate.empty())
      fail("give --baseline and --candidate runs (or --baseline-tag and --candidate-tag sweeps)");
    const int64_t b = rdb.resolve_run(o->baseline), c = rdb.resolve_run(o->candidate);
    if (b == c) fail("--baseline and --candidate are the same run ({})", b);
    reports::RegressReport rep = reports::compare_runs(rdb.connection(), b, c, ro);
    write_output(o->out, reports::render_regress(rep, o->format));
    if (rep.failed()) throw ExitCode{1};
  });
}
// The layout that fits the results: quantization tables when runs carry bits and FID, SR tables
// when they carry PSNR, else one row per run.
std::string auto_layout(const std::vector<reports::RunResult>& results) {
  bool gen = false, sr = false;
  for (const auto& r : results) {
    for (const auto& [name, v] : r.metrics) gen |= r.w_bits.has_value() && name.rfind("fid", 0) == 0;
    sr |= r.metrics.count("psnr") > 0;
  }
  return gen ? "tinydm" : sr ? "sr" : "generic";
}

std::vector<reports::LatencyBar> latency_bars(db::Connection& c,
                                              const std::vector<reports::RunResult>& results) {
  std::vector<reports::LatencyBar> bars;
  for (const auto& r : results) {
    db::Statement q(
        c,
        "SELECT scope, coalesce(batch, 1), median_ms, coalesce(p10_ms, median_ms), coalesce(p90_ms, "
        "median_ms) FROM latencies WHERE run_id = ? AND median_ms IS NOT NULL ORDER BY id");
    q.bind(1, r.id);
    while (q.step()) {
      std::string label = r.method.empty() ? "run " + std::to_string(r.id) : r.method;
      if (r.w_bits && r.a_bits) label += " W" + std::to_string(*r.w_bits) + "A" + std::to_string(*r.a_bits);
      label += " " + q.text(0) + " b" + std::to_string(q.int64(1));
      bars.push_back({label, q.real(2), q.real(3), q.real(4)});
    }
  }
  return bars;
}

// Writes every plot the results allow into `dir`; returns (caption, path) pairs.
std::vector<reports::HtmlFigure> write_plots(db::Connection& c,
                                             const std::vector<reports::RunResult>& results,
                                             const std::string& dir) {
  std::vector<reports::HtmlFigure> out;
  if (!reports::plots_available()) {
    std::fprintf(stderr, "dmeval: built without PLplot: the report has no plots\n");
    return out;
  }
  // Inception names when any run has them, else the feature network the runs were scored with.
  std::string suffix;
  bool inception = false;
  for (const auto& r : results)
    for (const auto& [name, v] : r.metrics) {
      inception |= name == "fid";
      if (name.rfind("fid[", 0) == 0 && suffix.empty()) suffix = name.substr(3);
    }
  if (inception) suffix.clear();
  const std::string pareto = dir + "/fid_vs_size.png";
  if (reports::plot_fid_vs_size(results, pareto, "fid" + suffix))
    out.push_back({"FID" + suffix + " vs model size (Pareto front dashed)", pareto});
  for (const char* m : {"fid", "sfid", "is", "precision"}) {
    const std::string p = dir + "/" + m + "_vs_bits.png";
    if (reports::plot_metric_vs_bits(results, m + suffix, p))
      out.push_back({std::string(m) + suffix + " vs weight bit-width", p});
  }
  const std::string lat = dir + "/latency.png";
  if (reports::plot_latency(latency_bars(c, results), lat)) out.push_back({"Latency per method", lat});
  const std::string curves = dir + "/training_curves.png";
  if (reports::plot_training_curves(results, curves))
    out.push_back({"Training loss of the trained methods (BinaryDM and its baselines)", curves});
  return out;
}

// The first `count` images of a folder in a grid: "DIR=LABEL" (or DIR, labelled with its name).
struct FolderGrid {
  std::string dir, label;
  int count = 0;
  Image image;
};
FolderGrid folder_grid(const std::string& spec, int count, int columns, int zoom = 1) {
  FolderGrid g;
  const auto eq = spec.find('=');
  g.dir = spec.substr(0, eq);
  g.label = eq == std::string::npos ? std::filesystem::path(g.dir).filename().string() : spec.substr(eq + 1);
  std::vector<Image> imgs;
  for (const auto& f : list_pairable_images(g.dir)) {
    if (static_cast<int>(imgs.size()) >= count) break;
    imgs.push_back(reports::zoom_nearest(decode_image_file(f), zoom));
  }
  if (imgs.empty()) fail("{}: no images for a sample grid", g.dir);
  g.count = static_cast<int>(imgs.size());
  g.image = reports::sample_grid(imgs, columns, g.label);
  return g;
}

void add_grid(CLI::App* cmd) {
  struct Opts {
    std::vector<std::string> folders;
    std::string out;
    int count = 64, columns = 8, zoom = 1;
  };
  auto o = std::make_shared<Opts>();
  auto* g = cmd->add_subcommand("grid", "sample grids of image folders, one under another, as one PNG");
  g->add_option("folders", o->folders, "image folders, DIR or DIR=LABEL")->required();
  g->add_option("-o,--output", o->out, "the PNG file")->required();
  g->add_option("--count", o->count, "images per folder")->check(CLI::PositiveNumber)->capture_default_str();
  g->add_option("--columns", o->columns, "images per row")->check(CLI::PositiveNumber)->capture_default_str();
  g->add_option("--zoom", o->zoom, "enlarge each image this many times (nearest neighbour)")
      ->check(CLI::Range(1, 16))
      ->capture_default_str();
  g->callback([o] {
    std::vector<Image> parts;
    for (const auto& f : o->folders) parts.push_back(folder_grid(f, o->count, o->columns, o->zoom).image);
    write_png(o->out, reports::stack_vertically(parts, 8));
    std::printf("%s: %zu grid(s)\n", o->out.c_str(), parts.size());
  });
}

struct ReportFilterOptions {
  std::string db;
  reports::ResultFilter filter;
  int64_t steps = 0;
};

void add_filter_options(CLI::App* c, ReportFilterOptions& o) {
  c->add_option("--db", o.db, "results database (default: $DMEVAL_DB, else ./dmeval.db)");
  c->add_option("--tag", o.filter.tag, "only runs with this tag");
  c->add_option("--method", o.filter.method, "only this method");
  c->add_option("--dataset", o.filter.dataset, "only this dataset (as recorded, e.g. \"Set5 x4\")");
  c->add_option("--steps", o.steps, "only runs with this many sampling steps");
  c->add_option("--bits", o.filter.bits, "only this W/A bit-width, e.g. 4/8");
  c->add_option("--run", o.filter.runs, "only these run ids (all of them, not only the latest per setting)");
}

std::vector<reports::RunResult> load_filtered(db::ResultsDb& rdb, ReportFilterOptions& o) {
  if (o.steps > 0) o.filter.steps = o.steps;
  auto results = reports::load_results(rdb.connection(), o.filter);
  if (results.empty()) fail("{}: no finished runs match the filters", rdb.path());
  return results;
}

void add_plots(CLI::App* cmd) {
  struct Opts {
    ReportFilterOptions f;
    std::string dir;
  };
  auto o = std::make_shared<Opts>();
  auto* p = cmd->add_subcommand("plots", "PNG plots: FID vs size (Pareto), metrics vs bit-width, latency");
  add_filter_options(p, o->f);
  p->add_option("--out-dir", o->dir, "folder for the PNG files")->required();
  p->callback([o] {
    db::ResultsDb rdb = open_existing_db(o->f.db);
    auto results = load_filtered(rdb, o->f);
    std::filesystem::create_directories(o->dir);
    auto figs = write_plots(rdb.connection(), results, o->dir);
    if (figs.empty())
      fail("the selected runs hold nothing to plot (no FID with model size, bits or latency)");
    for (const auto& f : figs) std::printf("%s  (%s)\n", f.png_path.c_str(), f.caption.c_str());
  });
}

void add_html(CLI::App* cmd) {
  struct Opts {
    ReportFilterOptions f;
    std::string out, layout = "auto", baseline, candidate, title = "dmeval report";
    std::vector<std::string> grids, grid_runs;
    int grid_count = 16, grid_columns = 8;
  };
  auto o = std::make_shared<Opts>();
  auto* h =
      cmd->add_subcommand("html", "one self-contained HTML file: tables, plots, sample grids, regressions");
  add_filter_options(h, o->f);
  h->add_option("-o,--output", o->out, "the HTML file")->required();
  h->add_option("--layout", o->layout, "table layout (auto picks tinydm, sr or generic from the results)");
  h->add_option("--baseline", o->baseline, "with --candidate: include a regression report");
  h->add_option("--candidate", o->candidate, "with --baseline: include a regression report");
  h->add_option(
      "--grid", o->grids,
      "sample grid of the first images of a folder: DIR=LABEL (e.g. samples/tinydm_w4a8=\"TinyDM W4A8\"); "
      "repeatable");
  h->add_option(
      "--grid-run", o->grid_runs,
      "sample grid of the first images a run produced (its recorded sample chunks: PNG folders or .npz "
      "batches), labeled with its method and bits: run id, tag, latest or previous; repeatable");
  h->add_option("--grid-count", o->grid_count, "images per grid")->check(CLI::PositiveNumber);
  h->add_option("--grid-columns", o->grid_columns, "images per grid row")->check(CLI::PositiveNumber);
  h->add_option("--title", o->title, "page title");
  h->callback([o] {
    db::ResultsDb rdb = open_existing_db(o->f.db);
    auto results = load_filtered(rdb, o->f);
    reports::HtmlReport rep;
    rep.title = o->title;
    rep.subtitle = "from " + std::filesystem::absolute(rdb.path()).string() + ", generated " + db::utc_now() +
                   " by dmeval " + build_version() + " (" + build_git_revision() + ")";
    reports::TableOptions to;
    to.layout = o->layout == "auto" ? auto_layout(results) : o->layout;
    rep.tables = reports::build_tables(results, to);
    char tmpl[] = "/tmp/dmeval-report-XXXXXX";
    if (!mkdtemp(tmpl)) fail("cannot create a temporary folder for the figures");
    const std::string tmp = tmpl;
    rep.plots = write_plots(rdb.connection(), results, tmp);
    for (size_t g = 0; g < o->grids.size(); ++g) {
      FolderGrid fg = folder_grid(o->grids[g], o->grid_count, o->grid_columns);
      const std::string png = tmp + "/grid" + std::to_string(g) + ".png";
      write_png(png, fg.image);
      rep.grids.push_back(
          {fg.label + " (first " + std::to_string(fg.count) + " images of " + fg.dir + ")", png});
    }
    for (const auto& ref : o->grid_runs) {
      const int64_t run = rdb.resolve_run(ref);
      std::vector<Image> imgs;
      db::Statement q(
          rdb.connection(),
          "SELECT artifact_path FROM sample_chunks WHERE run_id = ? AND status = 'done' AND artifact_path "
          "IS NOT NULL ORDER BY first_index");
      q.bind(1, run);
      while (q.step() && static_cast<int>(imgs.size()) < o->grid_count) {
        auto src = open_image_source(q.text(0), FolderRule::kPytorchFid);
        for (int64_t i = 0; i < src->size() && static_cast<int>(imgs.size()) < o->grid_count; ++i)
          imgs.push_back(src->load(i));
      }
      if (imgs.empty()) fail("run {} has no finished sample chunks with images to show", run);
      std::string label = "run " + std::to_string(run);
      db::Statement c(rdb.connection(),
                      "SELECT coalesce(method, ''), w_bits, a_bits FROM run_configs WHERE run_id = ?");
      c.bind(1, run);
      if (c.step()) {
        if (!c.text(0).empty()) label = c.text(0);
        if (!c.is_null(1) && !c.is_null(2))
          label += " W" + std::to_string(c.int64(1)) + "A" + std::to_string(c.int64(2));
      }
      const std::string png = tmp + "/run" + std::to_string(run) + ".png";
      write_png(png, reports::sample_grid(imgs, o->grid_columns, label));
      rep.grids.push_back(
          {label + " (run " + std::to_string(run) + ", first " + std::to_string(imgs.size()) + " samples)",
           png});
    }
    if (!o->baseline.empty() || !o->candidate.empty()) {
      if (o->baseline.empty() || o->candidate.empty()) fail("--baseline and --candidate go together");
      rep.regression = reports::compare_runs(rdb.connection(), rdb.resolve_run(o->baseline),
                                             rdb.resolve_run(o->candidate), {});
    }
    write_output(o->out, reports::render_html_report(rep));
    std::error_code ec;
    std::filesystem::remove_all(tmp, ec);
    std::printf(
        "%s: %zu table(s), %zu plot(s), %zu grid(s)%s\n", o->out.c_str(), rep.tables.size(), rep.plots.size(),
        rep.grids.size(),
        rep.regression ? (rep.regression->failed() ? ", regression: FAIL" : ", regression: PASS") : "");
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
  auto* cmd = app.add_subcommand(
      "report", "comparison tables, regression reports, plots and the HTML report from the results database");
  cmd->require_subcommand(1);
  add_regress(cmd);
  add_grid(cmd);
  add_plots(cmd);
  add_html(cmd);
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
    db::ResultsDb rdb = open_existing_db(o->db);
    const std::string path = rdb.path();
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
    write_output(o->out, reports::render_tables(reports::build_tables(results, to), o->format));
  });
}

}  // namespace dmeval::cli
