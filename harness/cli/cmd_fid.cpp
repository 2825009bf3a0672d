// `dmeval fid A B`: Fréchet Inception Distance between two folders, .npz image batches or
// statistics files, like `python -m pytorch_fid A B`.
#include <cstdio>

#include "core/error.h"
#include "harness/cli/commands.h"
#include "harness/cli/db_cli.h"
#include "harness/cli/inception_cli.h"

namespace dmeval::cli {

namespace {
struct Compat {
  const char* name;
  const char* mode;
  FrechetRoute route;
  bool check_imaginary;  // pytorch-fid and ADM raise "Imaginary component"; clean-fid does not
};
// What each tool does (shared/spec/metrics-inception.md §2, §4).
const Compat kCompat[] = {
    {"pytorch-fid", "pytorch-fid", FrechetRoute::kScipySqrtm, true},
    {"torch-fidelity", "tf", FrechetRoute::kEigvals, false},
    {"clean-fid", "clean", FrechetRoute::kScipySqrtm, false},
    {"adm", "tf", FrechetRoute::kScipySqrtm, true},
};
}  // namespace

void add_fid_command(CLI::App& app) {
  struct Opts {
    InceptionOptions inception;
    DbOptions db;
    std::string a, b, compat;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd =
      app.add_subcommand("fid", "FID between two image folders, .npz image batches or statistics .npz files");
  cmd->add_option("a", o->a, "folder, .npz batch (arr_0) or stats .npz (mu, sigma)")->required();
  cmd->add_option("b", o->b, "folder, .npz batch (arr_0) or stats .npz (mu, sigma)")->required();
  std::vector<std::string> names;
  for (const auto& c : kCompat) names.emplace_back(c.name);
  cmd->add_option("--compat", o->compat, "reproduce a tool: sets its preprocessing and distance route")
      ->check(CLI::IsMember(names));
  add_inception_options(cmd, o->inception);
  add_dims_option(cmd, o->inception);
  add_db_options(cmd, o->db);
  cmd->callback([o] {
    std::unique_ptr<RunRecorder> rec = RunRecorder::start(o->db);
    FrechetRoute route = FrechetRoute::kSymmetricEigen;
    bool check_imaginary = false;
    for (const auto& c : kCompat)
      if (o->compat == c.name) {
        o->inception.mode = c.mode;
        route = c.route;
        check_imaginary = c.check_imaginary;
      }
    std::optional<InceptionSetup> setup;
    nlohmann::ordered_json sides = nlohmann::ordered_json::array();
    // Small image sets also keep their features: with N <= 2048 the covariance is singular and
    // the exact cross-Gram route needs the samples.
    constexpr int64_t kKeepFeaturesUpTo = 4096;
    std::vector<torch::Tensor> features;
    auto stats_of = [&](const std::string& path) {
      if (auto st = read_stats_file(path)) {
        sides.push_back({{"input", path}, {"kind", "statistics file"}});
        return *st;
      }
      if (!setup) setup = load_inception(o->inception);
      auto source = image_source_for(path, o->inception);
      const std::string tap = dims_tap(o->inception.dims);
      bool keep = source->size() <= kKeepFeaturesUpTo;
      InceptionFeatureSink sink(setup->net, setup->mode,
                                keep ? std::vector<std::string>{tap} : std::vector<std::string>{}, {tap});
      PumpReport r = run_images(*source, o->inception, sink);
      FeatureStats st = sink.stats(tap);
      if (keep) features.push_back(sink.features(tap));
      sides.push_back({{"input", path}, {"kind", "images"}, {"n", st.count}, {"skipped", r.skipped.size()}});
      return st;
    };
    FeatureStats a = stats_of(o->a), b = stats_of(o->b);
    FrechetResult f = route == FrechetRoute::kScipySqrtm ? frechet_distance_scipy(a, b, check_imaginary)
                                                         : frechet_distance(a, b, route);
    if (f.singular && features.size() == 2 && route == FrechetRoute::kSymmetricEigen)
      f = frechet_distance_features(features[0], features[1]);
    nlohmann::ordered_json j;
    j["fid"] = f.value;
    j["route"] = frechet_route_name(f.route);
    j["compat"] = o->compat.empty() ? "dmeval (accurate)" : o->compat;
    j["dims"] = a.mu.numel();
    j["inputs"] = sides;
    if (setup) j["provenance"] = provenance(*setup, o->inception);
    if (f.singular)
      j["warning"] = "a covariance is singular (fewer images than dimensions?); FID is ill-conditioned";
    if (f.eps_fallback)
      j["warning"] = "fid calculation produces singular product; adding 1e-06 to diagonal of cov estimates";
    if (rec) {
      nlohmann::ordered_json prov =
          setup ? provenance(*setup, o->inception) : nlohmann::ordered_json::object();
      nlohmann::ordered_json m = {
          {"fid", {{"value", f.value}, {"route", j["route"]}, {"dims", j["dims"]}, {"inputs", sides}}}};
      std::optional<int64_t> n, n_ref;
      if (sides[0].contains("n")) n = sides[0]["n"].get<int64_t>();
      if (sides[1].contains("n")) n_ref = sides[1]["n"].get<int64_t>();
      const int64_t ref_id = record_reference(*rec, o->b, o->inception, n_ref);
      rec->add_metrics(inception_metric_rows(m, prov, j["compat"], n, ref_id));
      rec->finish();
      j["run_id"] = rec->run();
    }
    if (o->inception.json) {
      std::printf("%s\n", j.dump(2).c_str());
    } else {
      std::printf("FID: %.6f\n", f.value);
      std::printf("  route %s, compat %s, %lld dims%s\n", j["route"].get<std::string>().c_str(),
                  j["compat"].get<std::string>().c_str(), static_cast<long long>(a.mu.numel()),
                  setup ? (", preprocessing " + o->inception.mode + ", weights " +
                           setup->weights_sha256.substr(0, 12))
                              .c_str()
                        : "");
      if (f.singular) std::printf("  warning: %s\n", j["warning"].get<std::string>().c_str());
    }
  });
}

}  // namespace dmeval::cli
