// Report tables from a fixture results database, compared as exact text with the expected files in
// tests/data/reports/ (every layout x format). The fixture exercises grouping and method order,
// an empty cell, a cell computed with another preprocessing mode (marked and footnoted), best per
// group, and published values (--with-paper). DMEVAL_UPDATE_EXPECTED=1 rewrites the expected files
// (review the diff before committing).
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "db/results.h"
#include "reports/published.h"
#include "reports/result_set.h"
#include "reports/table.h"
#include "tests/support/temp_dir.h"

namespace dmeval::reports {
namespace {

using test::TempDir;

struct Setting {
  const char* method;
  int64_t w, a, steps;
  std::optional<double> size_mb, fid, sfid, is, precision;
  const char* mode = "pytorch-fid";
  const char* dataset = nullptr;
};

void add_generative(db::ResultsDb& r, const Setting& s, int64_t ref_set) {
  db::RunInfo info;
  info.command_line = "fixture";
  info.tag = "fixture";
  int64_t run = r.begin_run(info);
  db::RunConfig c;
  c.method = s.method, c.w_bits = s.w, c.a_bits = s.a, c.steps = s.steps, c.sampler = "ddim",
  c.samples = 50000;
  r.set_config(run, c);
  if (s.size_mb) {
    db::ModelSize m;
    m.size_mb = s.size_mb;
    r.set_model_size(run, m);
  }
  std::vector<db::MetricRow> rows;
  auto add = [&](const char* name, std::optional<double> v) {
    if (!v) return;
    db::MetricRow m;
    m.name = name, m.value = v, m.n = 50000, m.feature_network = "FID Inception (pt_inception-2015-12-05)";
    m.weights_sha256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2";
    m.mode = s.mode, m.compat = "dmeval", m.reference_set_id = ref_set;
    if (s.dataset) m.dataset = s.dataset;
    rows.push_back(m);
  };
  add("fid", s.fid), add("sfid", s.sfid), add("is", s.is), add("precision", s.precision);
  r.add_metrics(run, rows);
  r.end_run(run, "finished");
}

void add_sr(db::ResultsDb& r, const char* method, const char* dataset, std::optional<int64_t> params,
            std::optional<double> flops, double psnr, double ssim, std::optional<double> lpips) {
  db::RunInfo info;
  info.command_line = "fixture";
  info.tag = "sr";
  int64_t run = r.begin_run(info);
  db::RunConfig c;
  c.method = method;
  r.set_config(run, c);
  if (params || flops) {
    db::ModelSize m;
    m.params = params, m.flops = flops;
    r.set_model_size(run, m);
  }
  std::vector<db::MetricRow> rows;
  auto add = [&](const char* name, std::optional<double> v) {
    if (!v) return;
    db::MetricRow m;
    m.name = name, m.value = v, m.n = 5, m.dataset = dataset, m.mode = "Y, crop 4, HR mod-crop 4";
    rows.push_back(m);
  };
  add("psnr", psnr), add("ssim", ssim), add("lpips", lpips);
  r.add_metrics(run, rows);
  r.end_run(run, "finished");
}

std::string fixture(const TempDir& d) {
  const std::string path = d.file("fixture.db");
  db::ResultsDb r = db::ResultsDb::open(path);
  const int64_t ref =
      r.add_reference_set({"bedroom", "/data/lsun_bedroom_ref.npz", "statistics", "ab12", 50000});
  add_generative(r, {"fp", 32, 32, 100, 1045.4, 6.39, 11.02, 2.45, 0.6512}, ref);
  add_generative(r, {"tinydm", 4, 8, 100, 140.2, 7.10, 12.31, 2.41, 0.6301}, ref);
  add_generative(r, {"q-diffusion", 4, 8, 100, 140.2, 7.48, 12.90, 2.39, 0.6102}, ref);
  add_generative(r, {"ptqd", 4, 8, 100, 140.2, 7.30, 12.50, 2.43, 0.6200, "clean"}, ref);  // other mode
  add_generative(r, {"ptq4dm", 4, 8, 100, 140.2, 7.95, std::nullopt, 2.36, 0.6000}, ref);  // no sFID
  add_generative(r, {"q-diffusion", 8, 8, 100, 270.1, 6.50, 11.20, 2.44, 0.6490}, ref);
  add_generative(r, {"tinydm", 8, 8, 100, 270.1, 6.41, 11.05, 2.46, 0.6505}, ref);
  add_generative(r, {"fp", 32, 32, 250, 1045.4, 5.90, 10.80, 2.50, 0.6600}, ref);
  add_sr(r, "Bicubic", "Set5 x4", std::nullopt, std::nullopt, 28.4305, 0.8113, 0.3644);
  add_sr(r, "BI-DiffSR", "Set5 x4", 4580000, 36.67e9, 30.12, 0.8631, 0.1213);
  add_sr(r, "Bicubic", "Set5 x2", std::nullopt, std::nullopt, 33.6779, 0.9304, std::nullopt);
  return path;
}

std::string expected_path(const std::string& name) {
  return std::string(DMEVAL_SOURCE_DIR) + "/tests/data/reports/" + name;
}

void check_text(const std::string& got, const std::string& name) {
  if (const char* u = std::getenv("DMEVAL_UPDATE_EXPECTED"); u && std::string(u) == "1") {
    std::ofstream(expected_path(name), std::ios::binary) << got;
    return;
  }
  std::ifstream in(expected_path(name), std::ios::binary);
  ASSERT_TRUE(in) << "missing expected file " << expected_path(name)
                  << " (DMEVAL_UPDATE_EXPECTED=1 writes it)";
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(got, ss.str()) << name;
}

std::string extension(const std::string& format) {
  return format == "latex" ? "tex" : format;
}

TEST(ReportTables, EveryLayoutAndFormatMatchesItsExpectedText) {
  TempDir d;
  db::ResultsDb r = db::ResultsDb::open(fixture(d));
  for (const std::string layout : {"tinydm", "sr", "generic"}) {
    ResultFilter f;
    f.tag = layout == "sr" ? "sr" : layout == "tinydm" ? "fixture" : "";
    TableOptions o;
    o.layout = layout;
    auto tables = build_tables(load_results(r.connection(), f), o);
    for (const auto& format : table_format_names())
      check_text(render_tables(tables, format), layout + "." + extension(format));
  }
}

// TinyDM's two LDM-4 tables: runs of different datasets get a table each, titled with the dataset, so
// their figures never share a column.
TEST(ReportTables, TinyDMLayoutSplitsDatasets) {
  TempDir d;
  const std::string path = d.file("two.db");
  {
    db::ResultsDb r = db::ResultsDb::open(path);
    const int64_t ref = r.add_reference_set({"ref", "/data/ref.npz", "statistics", "cd34", 50000});
    const char* in = "ImageNet 256x256 class-cond";
    const char* bed = "LSUN-Bedrooms 256x256";
    add_generative(r, {"fp", 32, 32, 250, 1.0, 10.0, 7.0, 200.0, 0.8, "pytorch-fid", in}, ref);
    add_generative(r, {"tinydm", 4, 8, 250, 0.2, 11.0, 8.0, 190.0, 0.78, "pytorch-fid", in}, ref);
    add_generative(r, {"fp", 32, 32, 250, 1.0, 3.0, 7.1, 2.3, 0.66, "pytorch-fid", bed}, ref);
  }
  db::ResultsDb r = db::ResultsDb::open(path);
  TableOptions o;
  o.layout = "tinydm";
  auto tables = build_tables(load_results(r.connection(), ResultFilter{}), o);
  ASSERT_EQ(tables.size(), 2u);
  EXPECT_EQ(tables[0].title, "ImageNet 256x256 class-cond");
  EXPECT_EQ(tables[0].rows.size(), 2u);
  EXPECT_EQ(tables[1].title, "LSUN-Bedrooms 256x256");
  EXPECT_EQ(tables[1].rows.size(), 1u);
}

TEST(ReportTables, MarksIncomparableCellsAndLeavesEmptyCellsEmpty) {
  TempDir d;
  db::ResultsDb r = db::ResultsDb::open(fixture(d));
  ResultFilter f;
  f.tag = "fixture";
  TableOptions o;
  o.layout = "tinydm";
  auto t = build_tables(load_results(r.connection(), f), o).at(0);
  ASSERT_EQ(t.footnotes.size(), 1u);
  EXPECT_NE(t.footnotes[0].find("clean instead of pytorch-fid"), std::string::npos) << t.footnotes[0];
  int marked = 0, empty = 0, best = 0;
  for (const auto& row : t.rows)
    for (const auto& c : row.cells) {
      marked += c.mark != 0;
      empty += !c.value;
      best += c.best;
    }
  EXPECT_EQ(marked, 4);  // every metric of that run, one shared footnote
  EXPECT_EQ(empty, 1);
  EXPECT_GT(best, 0);
  // A marked cell never wins "best".
  for (const auto& row : t.rows)
    for (const auto& c : row.cells) EXPECT_FALSE(c.mark && c.best);
}

// Size (MB) is only comparable under one counting convention: it is stated under the table, and
// a size counted otherwise is marked with both conventions named.
TEST(ReportTables, SizeCountingIsStatedAndMismatchesMarked) {
  TempDir d;
  db::ResultsDb r = db::ResultsDb::open(d.file("sizes.db"));
  auto add = [&](const char* method, int64_t w, double size, const char* counting) {
    db::RunInfo info;
    info.command_line = "fixture";
    int64_t run = r.begin_run(info);
    db::RunConfig c;
    c.method = method, c.w_bits = w, c.a_bits = 8, c.steps = 100;
    r.set_config(run, c);
    db::ModelSize m;
    m.size_mb = size, m.counting = counting;
    r.set_model_size(run, m);
    r.end_run(run, "finished");
  };
  add("baseline", 4, 18.1, "conv/linear weights at b bits, rest fp32");
  add("qdiffusion", 4, 18.1, "conv/linear weights at b bits, rest fp32");
  add("ptqd", 4, 18.9, "conv/linear weights at b bits, rest fp32, with scales");
  auto t = build_tables(load_results(r.connection(), {}), {}).at(0);
  ASSERT_EQ(t.notes.size(), 1u);
  EXPECT_EQ(t.notes[0], "Size (MB): conv/linear weights at b bits, rest fp32");
  ASSERT_EQ(t.footnotes.size(), 1u);
  EXPECT_NE(
      t.footnotes[0].find("size counted as conv/linear weights at b bits, rest fp32, with scales instead of "
                          "conv/linear weights at b bits, rest fp32"),
      std::string::npos)
      << t.footnotes[0];
  int marked = 0;
  for (const auto& row : t.rows) marked += row.cells.at(0).mark != 0;
  EXPECT_EQ(marked, 1);
  for (const auto& format : table_format_names())
    EXPECT_NE(render_tables({t}, format).find("Size (MB): conv/linear"), std::string::npos) << format;
}

// A calibration that departs from the method's defaults (recorded by the harness as changed_settings)
// is stated under the table, once per method and set of changes, with the widths it applies to.
TEST(ReportTables, CalibrationChangesAreStatedPerMethod) {
  TempDir d;
  db::ResultsDb r = db::ResultsDb::open(d.file("calib.db"));
  auto add = [&](const char* method, int64_t w, const char* calibration) {
    db::RunInfo info;
    info.command_line = "fixture";
    int64_t run = r.begin_run(info);
    db::RunConfig c;
    c.method = method, c.w_bits = w, c.a_bits = 8, c.steps = 50;
    c.calibration_json = calibration;
    r.set_config(run, c);
    db::ModelSize m;
    m.size_mb = 1.0;
    r.set_model_size(run, m);
    r.end_run(run, "finished");
  };
  const char* quirk_off = R"({"method":"ptq4dm","settings":{"traj_images":64,"ndtc_true_timestep":true},)"
                          R"("changed_settings":{"traj_images":64,"ndtc_true_timestep":true}})";
  add("ptq4dm", 8, quirk_off);
  add("ptq4dm", 4, quirk_off);
  add("baseline", 4, R"({"method":"baseline","settings":{},"changed_settings":{}})");
  add("qdiffusion", 4, R"({"method":"qdiffusion","settings":{"iters_w":100}})");  // older record: no field
  auto t = build_tables(load_results(r.connection(), {}), {}).at(0);
  std::vector<std::string> calib_notes;
  for (const auto& n : t.notes)
    if (n.find("calibrated with") != std::string::npos) calib_notes.push_back(n);
  ASSERT_EQ(calib_notes.size(), 1u);
  EXPECT_EQ(calib_notes[0],
            "PTQ4DM (8/8, 4/8) calibrated with settings changed from the method's defaults: traj_images=64, "
            "ndtc_true_timestep=true");
  for (const auto& format : table_format_names())
    EXPECT_NE(render_tables({t}, format).find("timestep=true"), std::string::npos)
        << format;  // LaTeX escapes "_"
}

TEST(ReportTables, WithPaperValues) {
  TempDir d;
  db::ResultsDb r = db::ResultsDb::open(fixture(d));
  const std::string pub = d.write("pub.json", R"({"rows": [
    {"paper": "X", "table": "T1", "dataset": "LSUN-Bedrooms 256x256", "method": "FP", "metric": "FID",
     "value": 6.40, "steps": 100, "w_bits": 32, "a_bits": 32},
    {"paper": "X", "table": "T1", "dataset": "LSUN-Bedrooms 256x256", "method": "TinyDM", "metric": "Precision",
     "value": 62.5, "steps": 100, "w_bits": 4, "a_bits": 8},
    {"paper": "Y", "table": "T2", "dataset": "Set5 x4", "method": "Bicubic", "metric": "PSNR", "value": 28.42}]})");
  ResultFilter f;
  TableOptions o;
  o.layout = "tinydm";
  o.with_paper = true;
  o.published = load_published(pub);
  o.paper_dataset = "LSUN-Bedrooms 256x256";
  f.tag = "fixture";
  check_text(render_tables(build_tables(load_results(r.connection(), f), o), "md"), "tinydm-with-paper.md");
  o.layout = "sr";
  f.tag = "sr";
  check_text(render_tables(build_tables(load_results(r.connection(), f), o), "md"), "sr-with-paper.md");
  // The shipped file loads.
  EXPECT_GT(load_published(default_published_path()).size(), 1000u);
}

// The BinaryDM tables: Method, #Bits, Size, OPs (BOPs/64 + FLOPs), FP first, then per activation width
// LSQ, Baseline, BinaryDM; --with-paper takes the BinaryDM paper's rows, its "Baseline" being the binarized
// baseline (dmeval's binary-baseline), never another paper's min-max baseline.
TEST(ReportTables, BinaryDmLayoutWithPaperValues) {
  TempDir d;
  db::ResultsDb r = db::ResultsDb::open(d.file("b.db"));
  const int64_t ref = r.add_reference_set({"cifar", "", "npz", "ab", 50000});
  const char* dataset = "CIFAR-10 32x32";
  struct Cell {
    const char* method;
    int64_t w, a;
    double bops;
  };
  for (const Cell& c : {Cell{"binarydm", 1, 4, 64e9}, Cell{"fp", 32, 32, 0},
                        Cell{"binary-baseline", 1, 4, 64e9}, Cell{"lsq", 2, 4, 128e9}}) {
    Setting s{c.method, c.w, c.a, 100, 1.0, 50.0, 10.0, 5.0, 0.5};
    s.dataset = dataset;
    add_generative(r, s, ref);
    const int64_t run = r.list_runs().back().id;
    db::ModelSize m;
    m.size_mb = 1.0, m.flops = 2e9;
    if (c.bops > 0) m.bops = c.bops;
    r.set_model_size(run, m);
  }
  TableOptions o;
  o.layout = "binarydm";
  o.with_paper = true;
  o.published = load_published(default_published_path());
  auto tables = build_tables(load_results(r.connection(), {}), o);
  ASSERT_EQ(tables.size(), 1u);
  const Table& t = tables[0];
  EXPECT_EQ(t.key_headers, (std::vector<std::string>{"Method", "#Bits W/A"}));
  ASSERT_GE(t.columns.size(), 3u);
  EXPECT_EQ(t.columns[1].metric, "ops_g");
  ASSERT_EQ(t.rows.size(), 4u);
  std::vector<std::string> order;
  for (const Row& row : t.rows) order.push_back(row.keys[0] + " " + row.keys[1]);
  EXPECT_EQ(order, (std::vector<std::string>{"FP 32/32", "LSQ 2/4", "Baseline 1/4", "BinaryDM 1/4"}));
  EXPECT_DOUBLE_EQ(*t.rows[0].cells[1].value, 2.0);        // FLOPs only
  EXPECT_DOUBLE_EQ(*t.rows[3].cells[1].value, 1.0 + 2.0);  // 64e9 BOPs / 64 + 2e9 FLOPs
  // Published FID of the BinaryDM paper's row for each cell, looked up here from the shipped file.
  auto paper_fid = [&](const std::string& method, int64_t w, int64_t a) -> std::optional<double> {
    for (const auto& p : o.published)
      if (p.paper.find("BinaryDM") != std::string::npos && p.metric == "FID" && p.method == method &&
          p.w_bits == w && p.a_bits == a && p.steps == 100 && p.dataset == dataset)
        return p.value;
    return std::nullopt;
  };
  size_t fid = 0;
  while (fid < t.columns.size() && t.columns[fid].metric != "fid") ++fid;
  ASSERT_LT(fid, t.columns.size());
  const std::pair<const char*, std::pair<int64_t, int64_t>> want[] = {
      {"FP", {32, 32}}, {"LSQ", {2, 4}}, {"Baseline", {1, 4}}, {"BinaryDM", {1, 4}}};
  for (size_t i = 0; i < 4; ++i) {
    const auto expected = paper_fid(want[i].first, want[i].second.first, want[i].second.second);
    ASSERT_TRUE(expected.has_value()) << want[i].first << ": the shipped file lacks the row";
    ASSERT_TRUE(t.rows[i].cells[fid].paper.has_value()) << order[i];
    EXPECT_DOUBLE_EQ(*t.rows[i].cells[fid].paper, *expected) << order[i];
  }
}

TEST(ReportTables, LatestRunPerSettingReplacesEarlierOnes) {
  TempDir d;
  const std::string path = fixture(d);
  {
    db::ResultsDb r = db::ResultsDb::open(path);
    add_generative(r, {"tinydm", 4, 8, 100, 140.2, 7.00, 12.0, 2.42, 0.6310}, 1);
  }
  db::ResultsDb r = db::ResultsDb::open(path);
  ResultFilter f;
  f.tag = "fixture";
  f.method = "tinydm";
  f.bits = "4/8";
  auto res = load_results(r.connection(), f);
  ASSERT_EQ(res.size(), 1u);
  EXPECT_DOUBLE_EQ(res[0].metrics.at("fid").value.value(), 7.00);
}

TEST(ReportTables, BadPublishedFileIsNamed) {
  TempDir d;
  const std::string bad = d.write("bad.json", R"({"rows": [{"method": "FP", "metric": "FID"}]})");
  try {
    load_published(bad);
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("bad.json"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("row 0"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace dmeval::reports
