// `dmeval stats PATH -o OUT.npz`: pytorch-fid statistics file (mu, sigma float64, compressed).
#include <cstdio>

#include "core/npy.h"
#include "core/torch_bridge.h"
#include "harness/cli/commands.h"
#include "harness/cli/inception_cli.h"

namespace dmeval::cli {

void add_stats_command(CLI::App& app) {
  struct Opts {
    InceptionOptions inception;
    std::string path, out;
    bool sfid = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd =
      app.add_subcommand("stats", "pytorch-fid statistics (.npz with mu, sigma) of a folder or .npz batch");
  cmd->add_option("path", o->path, "image folder or ADM-style .npz (arr_0)")->required();
  cmd->add_option("-o,--out", o->out, "output .npz")->required();
  cmd->add_flag("--sfid", o->sfid, "also store mu_s, sigma_s of the spatial features (ADM reference layout)");
  add_inception_options(cmd, o->inception);
  add_dims_option(cmd, o->inception);
  cmd->callback([o] {
    InceptionSetup s = load_inception(o->inception);
    const std::string tap = dims_tap(o->inception.dims);
    std::vector<std::string> moment_taps = {tap};
    if (o->sfid) moment_taps.push_back("spatial");
    InceptionFeatureSink sink(s.net, s.mode, {}, moment_taps);
    PumpReport r = run_images(o->path, o->inception, sink);
    FeatureStats st = sink.stats(tap);
    std::vector<std::pair<std::string, TensorData>> arrays = {{"mu", from_torch(st.mu)},
                                                              {"sigma", from_torch(st.sigma)}};
    if (o->sfid) {
      FeatureStats sp = sink.stats("spatial");
      arrays.emplace_back("mu_s", from_torch(sp.mu));
      arrays.emplace_back("sigma_s", from_torch(sp.sigma));
    }
    write_npz(o->out, arrays, /*compressed=*/true);
    nlohmann::ordered_json j = provenance(s, o->inception);
    j["n"] = st.count;
    j["skipped"] = r.skipped.size();
    j["output"] = o->out;
    if (o->inception.json)
      std::printf("%s\n", j.dump(2).c_str());
    else
      std::printf("statistics of %lld images (%s preprocessing, weights %s) -> %s\n",
                  static_cast<long long>(st.count), o->inception.mode.c_str(),
                  s.weights_sha256.substr(0, 12).c_str(), o->out.c_str());
  });
}

}  // namespace dmeval::cli
