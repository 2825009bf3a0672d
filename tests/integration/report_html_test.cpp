// The HTML report rendered by a real headless browser (Debian's chromium): every inlined image
// decodes, and the DOM holds the table cells, the plots, the sample grid and the regression summary.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "core/image.h"
#include "db/results.h"
#include "reports/plots.h"
#include "tests/support/run.h"
#include "tests/support/temp_dir.h"

namespace dmeval {
namespace {

using namespace dmeval::test;
namespace fs = std::filesystem;

std::string chromium() {
  for (const char* c : {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"})
    if (fs::exists(c)) return c;
  return "";
}

std::string capture(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

void add_run(db::ResultsDb& r, const char* tag, const char* method, int64_t w, double size, double fid,
             double latency) {
  db::RunInfo i;
  i.command_line = "fixture";
  i.tag = tag;
  int64_t run = r.begin_run(i);
  db::RunConfig c;
  c.method = method, c.w_bits = w, c.a_bits = 8, c.steps = 100;
  r.set_config(run, c);
  db::ModelSize s;
  s.size_mb = size;
  r.set_model_size(run, s);
  db::Latency l;
  l.scope = "image", l.batch = 1, l.device = "cpu", l.median_ms = latency, l.p10_ms = latency * 0.9,
  l.p90_ms = latency * 1.1;
  r.add_latency(run, l);
  db::MetricRow m;
  m.name = "fid", m.value = fid, m.noise = 0.05, m.mode = "pytorch-fid";
  db::MetricRow is;
  is.name = "is", is.value = 2.4, is.mode = "pytorch-fid";
  r.add_metrics(run, {m, is});
  r.end_run(run, "finished");
}

TEST(ReportHtml, RendersInAHeadlessBrowser) {
  const std::string browser = chromium();
  if (browser.empty()) GTEST_SKIP() << "chromium is not installed (scripts/install-deps.sh installs it)";
  TempDir d;
  const std::string path = d.file("r.db");
  {
    db::ResultsDb r = db::ResultsDb::open(path);
    add_run(r, "nightly", "fp", 32, 1045.4, 6.39, 120);
    add_run(r, "nightly", "tinydm", 4, 140.2, 7.10, 60);
    add_run(r, "candidate", "tinydm", 4, 140.2, 7.90, 61);
  }
  fs::create_directories(d.file("samples"));
  for (int k = 0; k < 6; ++k) {
    Image img;
    img.width = img.height = 32;
    img.pixels.assign(32 * 32 * 3, static_cast<uint8_t>(30 * k));
    write_png(d.file("samples/" + std::to_string(k) + ".png"), img);
  }
  // Run 2's samples, recorded as a finished chunk: its grid is labeled from the run's configuration.
  {
    db::ResultsDb rdb = db::ResultsDb::open(path);
    rdb.connection().exec(
        "INSERT INTO sample_chunks (run_id, shard, first_index, count, status, artifact_path, updated_at) "
        "VALUES (2, 0, 0, 6, 'done', '" +
        d.file("samples") + "', 'x')");
  }
  const std::string html = d.file("report.html");
  RunResult r =
      run_dmeval("report html --db " + path + " -o " + html + " --baseline 2 --candidate 3 --grid " +
                 d.file("samples") + "=TinyDM_W4A8 --grid-run 2 --grid-count 4 --tag nightly");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string dom = capture(browser +
                                  " --headless --no-sandbox --disable-gpu --virtual-time-budget=5000 "
                                  "--dump-dom file://" +
                                  html + " 2>/dev/null");
  ASSERT_FALSE(dom.empty()) << "chromium printed no DOM";
  std::smatch m;
  ASSERT_TRUE(
      std::regex_search(dom, m, std::regex("data-images-total=\"(\\d+)\" data-images-loaded=\"(\\d+)\"")))
      << dom.substr(0, 2000);
  EXPECT_GE(std::stoi(m[1].str()), reports::plots_available() ? 4 : 2);  // plots + two grids
  EXPECT_EQ(m[1].str(), m[2].str()) << "some inlined images did not decode";
  EXPECT_NE(dom.find("<td class=\"num\">6.39</td>"), std::string::npos);
  EXPECT_NE(dom.find("<td class=\"num\">1045.40</td>"), std::string::npos);
  EXPECT_NE(dom.find("TinyDM_W4A8"), std::string::npos);
  EXPECT_NE(dom.find("tinydm W4A8 (run 2, first 4 samples)"), std::string::npos) << r.output;
  EXPECT_NE(dom.find("REGRESSED"), std::string::npos);  // FID 7.10 -> 7.90
  EXPECT_NE(dom.find("FAIL"), std::string::npos);
}

}  // namespace
}  // namespace dmeval
