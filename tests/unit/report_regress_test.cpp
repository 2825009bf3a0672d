// Regression reports: a change must beat both the threshold and k x the combined noise; metrics
// computed differently are incomparable; a lost metric fails; latency noise from p10/p90.
#include <gtest/gtest.h>

#include "core/error.h"
#include "db/results.h"
#include "reports/regression.h"
#include "tests/support/temp_dir.h"

namespace dmeval::reports {
namespace {

using test::TempDir;

struct M {
  const char* name;
  double value;
  std::optional<double> noise;
  const char* mode = "pytorch-fid";
};

int64_t add_run(db::ResultsDb& r, const std::vector<M>& metrics, std::optional<double> size,
                std::optional<db::Latency> latency) {
  db::RunInfo info;
  info.command_line = "test";
  int64_t run = r.begin_run(info);
  std::vector<db::MetricRow> rows;
  for (const M& m : metrics) {
    db::MetricRow row;
    row.name = m.name, row.value = m.value, row.noise = m.noise, row.mode = m.mode;
    rows.push_back(row);
  }
  r.add_metrics(run, rows);
  if (size) {
    db::ModelSize s;
    s.size_mb = size;
    r.set_model_size(run, s);
  }
  if (latency) r.add_latency(run, *latency);
  r.end_run(run, "finished");
  return run;
}

const Comparison& row(const RegressReport& rep, const std::string& metric) {
  for (const auto& c : rep.rows)
    if (c.metric == metric) return c;
  throw std::runtime_error("no row " + metric);
}

db::Latency latency(double median, double p10, double p90) {
  db::Latency l;
  l.scope = "image", l.batch = 1, l.device = "cpu", l.median_ms = median, l.p10_ms = p10, l.p90_ms = p90;
  return l;
}

TEST(ReportRegress, ThresholdNoiseAndVerdicts) {
  TempDir d;
  db::ResultsDb r = db::ResultsDb::open(d.file("r.db"));
  const int64_t base = add_run(r,
                               {{"fid", 10.0, 0.30},   // noisy: a +0.5 change is within 2 x sqrt(0.3^2+0.3^2)
                                {"sfid", 10.0, 0.01},  // quiet: +0.5 is beyond noise and 2 % threshold
                                {"is", 5.0, 0.01},     // improves
                                {"precision", 0.60, std::nullopt},
                                {"psnr", 30.0, std::nullopt},
                                {"recall", 0.5, std::nullopt}},
                               100.0, latency(50, 45, 55));
  const int64_t cand = add_run(r,
                               {{"fid", 10.5, 0.30},
                                {"sfid", 10.5, 0.01},
                                {"is", 5.5, 0.01},
                                {"precision", 0.60, std::nullopt, "clean"},  // computed differently
                                {"psnr", 30.005, std::nullopt}},             // within 0.01 dB; recall lost
                               100.0, latency(60, 58, 62));
  RegressReport rep = compare_runs(r.connection(), base, cand, {});
  EXPECT_EQ(row(rep, "fid").verdict, Verdict::kUnchanged) << row(rep, "fid").reason;
  EXPECT_EQ(row(rep, "sfid").verdict, Verdict::kRegressed) << row(rep, "sfid").reason;
  EXPECT_EQ(row(rep, "is").verdict, Verdict::kImproved);
  EXPECT_EQ(row(rep, "precision").verdict, Verdict::kIncomparable);
  EXPECT_EQ(row(rep, "psnr").verdict, Verdict::kUnchanged);
  EXPECT_EQ(row(rep, "recall").verdict, Verdict::kMissing);
  EXPECT_EQ(row(rep, "size_mb").verdict, Verdict::kUnchanged);
  const Comparison& lat = row(rep, "latency image b=1 (cpu)");
  EXPECT_EQ(lat.verdict, Verdict::kRegressed) << lat.reason;  // +10 ms > 5 % and > 2 x noise (~8.3 ms)
  EXPECT_TRUE(rep.failed());
  const std::string md = render_regress(rep, "md");
  EXPECT_NE(md.find("FAIL"), std::string::npos);
  EXPECT_NE(md.find("REGRESSED"), std::string::npos);
  EXPECT_NE(render_regress(rep, "html").find("<table>"), std::string::npos);

  // With a looser sFID threshold and without the incomparable/missing metrics, the report passes.
  RegressOptions loose;
  loose.thresholds["sfid"] = Threshold{1.0, 0};
  loose.thresholds["latency"] = Threshold{0, 0.5};
  const int64_t again = add_run(r,
                                {{"fid", 10.2, 0.3},
                                 {"sfid", 10.4, 0.01},
                                 {"is", 5.0, 0.01},
                                 {"precision", 0.6, std::nullopt},
                                 {"psnr", 30.0, std::nullopt},
                                 {"recall", 0.5, std::nullopt}},
                                100.0, latency(52, 47, 57));
  EXPECT_FALSE(compare_runs(r.connection(), base, again, loose).failed());
}

TEST(ReportRegress, ParsesThresholds) {
  auto [n1, t1] = parse_threshold("fid=0.5");
  EXPECT_EQ(n1, "fid");
  EXPECT_DOUBLE_EQ(t1.abs, 0.5);
  auto [n2, t2] = parse_threshold("latency=5%");
  EXPECT_EQ(n2, "latency");
  EXPECT_DOUBLE_EQ(t2.rel, 0.05);
  EXPECT_THROW(parse_threshold("fid"), Error);
  EXPECT_THROW(parse_threshold("fid=-1"), Error);
  EXPECT_THROW(parse_threshold("fid=abc"), Error);
}

}  // namespace
}  // namespace dmeval::reports
