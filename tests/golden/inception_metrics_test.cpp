// Statistics-level Inception metrics against stats_report_golden.json (values computed by the
// reference tools and by 50-digit mpmath): Fréchet distance routes on the 2048-d pair and the
// singular 64-d cases, Inception Score both ways, precision/recall, KID, FID from features.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <regex>

#include "core/error.h"
#include "core/npy.h"
#include "core/torch_bridge.h"
#include "metrics/frechet.h"
#include "metrics/inception_score.h"
#include "metrics/kid.h"
#include "metrics/numpy_random.h"
#include "metrics/precision_recall.h"
#include "tests/support/golden.h"

namespace dmeval {
namespace {

using namespace dmeval::test;
using json = nlohmann::json;

json report() {
  return json::parse(python_json_text(read_text(golden_path("inception/stats_report_golden.json"))));
}

FeatureStats stats(const NpzReader& z, const std::string& mu, const std::string& sigma) {
  FeatureStats s;
  s.mu = to_torch(z.read(mu));
  s.sigma = to_torch(z.read(sigma));
  return s;
}

// float64 evaluation of d = m + tr1 + tr2 - 2 t cancels: its rounding scale is the traces.
double cancellation_scale(const FeatureStats& a, const FeatureStats& b) {
  return a.sigma.trace().item<double>() + b.sigma.trace().item<double>() + 1.0;
}

// The 64-d cases of the report that have their statistics in fid_cases_64d.npz.
struct Fid64Case {
  std::string name;
  json expected;
  FeatureStats a, b;
  double scale = 0;  // float64 cancellation scale of the pair
};
std::vector<Fid64Case> fid_64d_cases(const json& cases, const NpzReader& z) {
  std::vector<Fid64Case> out;
  for (auto it = cases.begin(); it != cases.end(); ++it) {
    const std::string name = it.key();
    if (!it.value().is_object() || !z.contains(name + "__mu1")) continue;
    Fid64Case k{name, it.value(), stats(z, name + "__mu1", name + "__sigma1"),
                stats(z, name + "__mu2", name + "__sigma2")};
    k.scale = cancellation_scale(k.a, k.b);
    out.push_back(std::move(k));
  }
  return out;
}

TEST(GoldenInceptionFid, WellConditioned2048Pair) {
  DMEVAL_REQUIRE_GOLDEN();
  json r = report()["fid_2048_pair"];
  std::vector<std::string> files = r["files"];
  FeatureStats a = stats(NpzReader::open(golden_path("inception/" + files[0])), "mu", "sigma");
  FeatureStats b = stats(NpzReader::open(golden_path("inception/" + files[1])), "mu", "sigma");
  const double tol = 1e-12 * cancellation_scale(a, b);
  FrechetResult sym = frechet_distance(a, b, FrechetRoute::kSymmetricEigen);
  EXPECT_NEAR(sym.value, r["fid_accurate_eigh"].get<double>(), tol);
  EXPECT_NEAR(sym.mean_term, r["mean_term"].get<double>(), tol);
  EXPECT_NEAR(sym.trace_sqrt, r["tr_sqrt_s1s2_accurate"].get<double>(), tol);
  EXPECT_FALSE(sym.singular);
  FrechetResult tf = frechet_distance(a, b, FrechetRoute::kEigvals);
  EXPECT_NEAR(tf.value, r["tools"]["torch_fidelity"]["value"].get<double>(), tol);
  FrechetResult sq = frechet_distance_scipy(a, b, /*check_imaginary=*/true);  // pytorch-fid / ADM
  EXPECT_NEAR(sq.value, r["tools"]["pytorch_fid"]["value"].get<double>(), tol);
  EXPECT_FALSE(sq.eps_fallback);
}

TEST(GoldenInceptionFid, SingularAndNearSingular64dCases) {
  DMEVAL_REQUIRE_GOLDEN();
  json cases = report()["fid_64d_cases"];
  NpzReader z = NpzReader::open(golden_path("inception/fid_cases_64d.npz"));
  int from_samples = 0, from_stats = 0;
  for (const Fid64Case& k : fid_64d_cases(cases, z)) {
    const std::string& name = k.name;
    SCOPED_TRACE(name);
    const json& c = k.expected;
    const FeatureStats &a = k.a, &b = k.b;
    const double scale = k.scale;
    if (z.contains(name + "__X1")) {
      // The samples are available: the cross-Gram route is exact up to float64 cancellation.
      torch::Tensor x1 = to_torch(z.read(name + "__X1")), x2 = to_torch(z.read(name + "__X2"));
      FrechetResult f = frechet_distance_features(x1, x2);
      double exact = std::stod(c["fid_exact_from_samples_mpmath_str"].get<std::string>());
      EXPECT_NEAR(f.value, exact, 1e-12 * scale + 1e-9 * std::abs(exact));
      EXPECT_EQ(f.route, FrechetRoute::kCrossGram);
      ++from_samples;
    } else {
      // Statistics only: the symmetric route must be at least as close to the exact value as the
      // reference's own float64 eigh route was (ten times its error, or float64 cancellation).
      double exact = std::stod(c["fid_mpmath_on_stored_matrices_str"].get<std::string>());
      double ref_err = std::abs(c["fid_accurate_eigh_f64_on_stored_matrices"].get<double>() - exact);
      FrechetResult f = frechet_distance(a, b, FrechetRoute::kSymmetricEigen);
      EXPECT_NEAR(f.value, exact, std::max(10 * ref_err, 1e-12 * scale));
      ++from_stats;
    }
  }
  EXPECT_GT(from_samples, 0);
  EXPECT_GT(from_stats, 0);
}

TEST(GoldenInceptionIs, TorchFidelityAndAdm) {
  DMEVAL_REQUIRE_GOLDEN();
  json r = report()["inception_score"];
  torch::Tensor logits = to_torch(NpzReader::open(golden_path("inception/is_logits.npz")).read("logits"));
  // The permutation torch-fidelity applies (numpy RandomState(2020)).
  TensorData perm = read_npy_file(golden_path("inception/is_torch_fidelity_permutation_seed2020_n1000.npy"));
  std::vector<int64_t> ours = NumpyRandomState(2020).permutation(perm.numel());
  EXPECT_EQ(ours, std::vector<int64_t>(perm.data<int64_t>(), perm.data<int64_t>() + perm.numel()));
  int checked = 0;
  for (auto it = r.begin(); it != r.end(); ++it) {
    const std::string name = it.key();
    std::smatch m;
    if (std::regex_search(name, m, std::regex("^torch_fidelity_.*splits(\\d+)"))) {
      bool shuffle = name.find("no_shuffle") == std::string::npos;
      InceptionScore s = inception_score_torch_fidelity(logits, std::stoll(m[1]), shuffle, 2020);
      EXPECT_NEAR(s.mean, it.value()["inception_score_mean"].get<double>(), 1e-12) << name;
      EXPECT_NEAR(s.std, it.value()["inception_score_std"].get<double>(), 1e-12) << name;
      ++checked;
    } else if (std::regex_search(name, m, std::regex("^adm_split_size_(\\d+)"))) {
      InceptionScore s = inception_score_adm(logits, std::stoll(m[1]));
      double ref = it.value().get<double>();
      EXPECT_NEAR(s.mean, ref, 1e-6 * ref) << name;  // ADM works in float32
      ++checked;
    }
  }
  EXPECT_GE(checked, 5);
}

TEST(GoldenInceptionPrk, PrecisionRecallKidFid) {
  DMEVAL_REQUIRE_GOLDEN();
  json r = report()["precision_recall_kid"];
  NpzReader z = NpzReader::open(golden_path("inception/prk_features.npz"));
  torch::Tensor real = to_torch(z.read("real")), gen = to_torch(z.read("gen"));
  PrecisionRecallOptions o64;
  PrecisionRecall exact = precision_recall(real, gen, o64);
  EXPECT_EQ(exact.precision, r["exact_f64_own"]["precision"].get<double>());
  EXPECT_EQ(exact.recall, r["exact_f64_own"]["recall"].get<double>());
  EXPECT_NEAR(exact.f_score, r["torch_fidelity_prc"]["f_score"].get<double>(), 1e-6);
  PrecisionRecallOptions o32;
  o32.dtype = torch::kFloat32;
  PrecisionRecall f32 = precision_recall(real, gen, o32);
  EXPECT_EQ(f32.precision, r["adm_fp32"]["precision"].get<double>());
  EXPECT_EQ(f32.recall, r["adm_fp32"]["recall"].get<double>());
  PrecisionRecallOptions o16;
  o16.dtype = torch::kFloat16;
  PrecisionRecall f16 = precision_recall(real, gen, o16);
  // The spec: the float16 emulation is indicative (GPU TF rounds individual entries differently).
  EXPECT_NEAR(f16.precision, r["adm_fp16"]["precision"].get<double>(), 0.005);
  EXPECT_NEAR(f16.recall, r["adm_fp16"]["recall"].get<double>(), 0.005);

  double kid_exact = r["kid_exact_f64"].get<double>();
  EXPECT_NEAR(kid_full(gen, real).mean, kid_exact, 1e-10 * kid_exact);
  // torch-fidelity computes in float32 (relative error ~1e-5, spec §6.4).
  double kid_tf = r["torch_fidelity_kid_1subset_size1000"]["kernel_inception_distance_mean"].get<double>();
  EXPECT_NEAR(kid_torch_fidelity(gen, real, 1, gen.size(0)).mean, kid_tf, 1e-4 * kid_tf);

  const json& fid = r["fid_gen_vs_real_from_features (singular 2048-d covariances)"];
  double fid_exact = fid["fid_exact_from_samples_f64"].get<double>();
  FrechetResult f = frechet_distance_features(gen, real);
  EXPECT_EQ(f.route, FrechetRoute::kCrossGram);
  EXPECT_NEAR(f.value, fid_exact, 1e-10 * fid_exact);
}

}  // namespace
}  // namespace dmeval

namespace dmeval {
namespace {

// pytorch-fid / clean-fid / ADM behaviour through the scipy.linalg.sqrtm emulation: the eps
// fallback, the "Imaginary component" error and the values they return, per 64-d case.
TEST(GoldenInceptionFid, ScipySqrtmCompatOn64dCases) {
  DMEVAL_REQUIRE_GOLDEN();
  json cases = report()["fid_64d_cases"];
  NpzReader z = NpzReader::open(golden_path("inception/fid_cases_64d.npz"));
  int checked = 0, same_branch = 0, fallbacks_reproduced = 0;
  for (const Fid64Case& k : fid_64d_cases(cases, z)) {
    const std::string& name = k.name;
    SCOPED_TRACE(name);
    const json& c = k.expected;
    const FeatureStats &a = k.a, &b = k.b;
    const double scale = k.scale;
    for (auto [tool, check] : {std::pair{"pytorch_fid", true}, {"adm", true}, {"clean_fid", false}}) {
      const json& t = c[tool];
      std::string err;
      FrechetResult f;
      try {
        f = frechet_distance_scipy(a, b, check);
      } catch (const Error& e) {
        err = e.what();
      }
      if (t.contains("error")) {
        EXPECT_NE(err.find("Imaginary component"), std::string::npos) << tool << ": " << err;
      } else {
        ASSERT_TRUE(err.empty()) << tool << ": " << err;
        double ref = t["value"].get<double>();
        // scipy's sqrtm on singular input is as far from the exact value as rounding makes it;
        // that distance (|tool - exact|) is the noise band a port with other LAPACK rounding
        // can only be held to. Full-rank cases are held to float64 cancellation.
        std::string exact_key = c.contains("fid_exact_from_samples_mpmath_str")
                                    ? "fid_exact_from_samples_mpmath_str"
                                    : "fid_mpmath_on_stored_matrices_str";
        double exact = std::stod(c[exact_key].get<std::string>());
        double tol = std::max(1e-10 * scale, 2 * std::abs(ref - exact));
        EXPECT_NEAR(f.value, ref, tol) << tool;
        bool fallback =
            t.contains("printed") ? !t["printed"].get<std::string>().empty() : !t["warnings"].empty();
        if (f.eps_fallback != fallback)  // whether a pivot is exactly 0 depends on LAPACK's rounding
          std::printf("note: %s %s: eps fallback %s here, %s in the tool (value within the noise band)\n",
                      name.c_str(), tool, f.eps_fallback ? "taken" : "not taken",
                      fallback ? "taken" : "not taken");
        else
          ++same_branch;
        if (f.eps_fallback && fallback) ++fallbacks_reproduced;
      }
      ++checked;
    }
  }
  EXPECT_GT(checked, 0);
  EXPECT_GT(fallbacks_reproduced, 0) << "the eps fallback path must be exercised and match somewhere";
  std::printf("scipy-sqrtm compat: %d tool values on the same branch as the tool\n", same_branch);
}

}  // namespace
}  // namespace dmeval
