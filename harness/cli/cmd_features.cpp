// `dmeval features PATH -o OUT.npy --tap TAP`: per-image Inception features as float32 .npy.
#include <cstdio>

#include "core/npy.h"
#include "core/torch_bridge.h"
#include "harness/cli/commands.h"
#include "harness/cli/inception_cli.h"

namespace dmeval::cli {

void add_features_command(CLI::App& app) {
  struct Opts {
    InceptionOptions inception;
    std::string path, out, tap = "pool3";
  };
  auto o = std::make_shared<Opts>();
  auto* cmd =
      app.add_subcommand("features", "Per-image FID Inception features of a folder or .npz batch (.npy)");
  cmd->add_option("path", o->path, "image folder or ADM-style .npz (arr_0)")->required();
  cmd->add_option("-o,--out", o->out, "output .npy (float32, N x D)")->required();
  cmd->add_option("--tap", o->tap, "which features")->check(CLI::IsMember(inception_tap_names()));
  add_inception_options(cmd, o->inception);
  cmd->callback([o] {
    InceptionSetup s = load_inception(o->inception);
    InceptionFeatureSink sink(s.net, s.mode, {o->tap}, {});
    PumpReport r = run_images(o->path, o->inception, sink);
    torch::Tensor f = sink.features(o->tap);
    write_npy(o->out, from_torch(f));
    nlohmann::ordered_json j = provenance(s, o->inception);
    j["tap"] = o->tap;
    j["n"] = r.images;
    j["dims"] = f.size(1);
    j["skipped"] = r.skipped.size();
    j["output"] = o->out;
    if (o->inception.json)
      std::printf("%s\n", j.dump(2).c_str());
    else
      std::printf("%lld x %lld %s features (%s preprocessing, weights %s) -> %s\n",
                  static_cast<long long>(r.images), static_cast<long long>(f.size(1)), o->tap.c_str(),
                  o->inception.mode.c_str(), s.weights_sha256.substr(0, 12).c_str(), o->out.c_str());
  });
}

}  // namespace dmeval::cli
