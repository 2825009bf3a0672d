#include "harness/cli/run_options.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "generators/quant/quant_method.h"
#include "generators/shapes_dataset.h"
#include "harness/cli/profiles.h"
#include "harness/cli/scoring_cli.h"

namespace dmeval::cli {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

RunCellOptions::RunCellOptions() {
  samples = 1000;
  chunk = 256;
}

const OptionTable<RunCellOptions>& run_option_table() {
  static const OptionTable<RunCellOptions> table = [] {
    OptionTable<RunCellOptions> t;
    t.add("--profile", &RunCellOptions::profile,
          "named setup filling every option not given (dmeval run --list-profiles; a profile.json path also "
          "works). Default: shapes when no --model/--config is given",
          kSaved, {}, false);
    t.include_base(generation_option_table());
    t.include(db_record_option_table(), &RunCellOptions::db);
    t.add("--no-db", &RunCellOptions::no_db, "do not record the result in the database", kSaved);
    t.add(
        "--ref", &RunCellOptions::ref,
        "reference: shapes:N[:SEED], an image folder, an .npz image batch, CIFAR-10 batches, or a statistics "
        ".npz (dmeval stats --sfid --features)",
        kDefaultTraits | kPath, {}, false);
    t.add(
        "--network", &RunCellOptions::network,
        "scoring network: " +
            [] {
              std::string s;
              for (const auto& k : scoring_networks())
                s += (s.empty() ? "" : ", ") + k.name + " (" + k.description + ")";
              return s;
            }(),
        kDefaultTraits, scoring_network_names());
    t.add("--network-weights", &RunCellOptions::network_weights, "feature network weights",
          kDefaultTraits | kPath, {}, false);
    t.add(
        "--feature-batch", &RunCellOptions::feature_batch,
        "images per feature-network pass, fixed (recorded); default (0) 64 for shapes-net, 50 for Inception");
    t.add("--compat", &RunCellOptions::compat,
          "Inception scoring conventions: pytorch-fid (its preprocessing, torch-fidelity IS splits) or adm "
          "(TF1 resize as ADM/torch-fidelity, ADM's IS splits)",
          kDefaultTraits, {"pytorch-fid", "adm"});
    t.add("--out", &RunCellOptions::out,
          "run folder (features per chunk, the run record; resumable). Default: "
          "runs/<profile or model>/<method>-W<w>A<a>-<steps>steps-n<N>",
          kSaved | kPath, {}, false);
    t.add("--save-samples", &RunCellOptions::save_samples, "also write the samples as PNGs into this folder",
          kSaved | kPath, {}, false);
    t.add("--latency-repeats", &RunCellOptions::latency_repeats,
          "UNet step timings at batch 1 and --batch after one warm-up (0 = no latency)");
    t.add("--e2e-repeats", &RunCellOptions::e2e_repeats,
          "whole-sampling timings (per image) at batch 1 and --batch (0 = none)");
    t.add("--bootstrap", &RunCellOptions::bootstrap,
          "resamples of the generated features for the FID and IS noise (regression reports; 0 = none)");
    // Per invocation, never saved: how this process takes part, not what the run is.
    t.add("--shard", &RunCellOptions::shard, "run only shard K of N (scores once every shard is done)", 0, {},
          false);
    t.add("--max-chunks", &RunCellOptions::max_chunks,
          "stop after this many chunks (the rest on a later run)", 0, {}, false);
    t.add("--json", &RunCellOptions::json, "print the result as JSON", 0);
    t.add("--quiet", &RunCellOptions::quiet, "no progress output", 0);
    return t;
  }();
  return table;
}

void add_run_cell_options(CLI::App* cmd, RunCellOptions& o) {
  run_option_table().bind(cmd, o);
}

std::string cell_name(const RunCellOptions& o) {
  const BitWidths b = parse_bits(o.quant.bits);
  std::string s =
      fmt::format("{}-W{}A{}-{}steps-n{}", o.quant.method, b.weight, b.act, o.sampler.steps, o.samples);
  if (o.sampler.sampler != "ddim") s += "-" + o.sampler.sampler;
  if (o.seed != 0) s += fmt::format("-seed{}", o.seed);
  return s;
}

void resolve_run_options(const CLI::App& cmd, RunCellOptions& o) {
  const auto& table = run_option_table();
  auto given = [&](const std::string& key) { return table.given(cmd, key); };
  const bool model_given = given("model") || given("config");
  if (o.profile.empty() && !model_given) o.profile = "shapes";
  RunCellOptions eff;  // defaults
  std::map<std::string, std::string> sources;
  std::optional<Profile> profile;
  if (!o.profile.empty()) {
    profile = find_profile(o.profile);
    const Profile& p = *profile;
    const std::string source = fmt::format("profile {} ({})", p.name, p.file);
    for (auto it = p.options.begin(); it != p.options.end(); ++it) {
      const std::string& k = it.key();
      // A model named on the command line keeps its own architecture; given weights replace the profile's.
      if (model_given && (k == "model" || k == "config")) continue;
      if ((given("checkpoint") || given("random_weights")) && (k == "checkpoint" || k == "random_weights"))
        continue;
      table.from_json(json{{k, it.value()}}, eff, p.file, kProfile);
      sources[k] = source;
    }
  }
  eff.profile = o.profile;
  for (const auto& e : table.entries()) {
    if (given(e.key)) {
      table.copy(e.key, o, eff);
      sources[e.key] = "command line";
    } else if (!(e.traits & kSaved)) {
      table.copy(e.key, o, eff);  // per-invocation values (json, quiet, shard) as parsed
    }
  }
  for (const auto& e : table.entries())
    if ((e.traits & kSaved) && !sources.count(e.key)) sources[e.key] = "default";
  eff.sources = sources;

  if (profile) {
    const Profile& p = *profile;
    std::vector<const ProfileFile*> needed;
    for (const auto& [key, f] : p.files)
      if (sources[key].rfind("profile", 0) == 0) needed.push_back(&f);
    require_profile_files(p, needed);
    // Command-line paths as before: ~ and $VARS expanded, profiles/... found from any directory.
    if (sources["checkpoint"] == "command line" && !eff.model.checkpoint.empty())
      eff.model.checkpoint = profile_path(eff.model.checkpoint);
    if (sources["network_weights"] == "command line") eff.network_weights = profile_path(eff.network_weights);
    if (sources["ref"] == "command line" && !is_shapes_spec(eff.ref)) eff.ref = profile_path(eff.ref);
  } else {
    if (eff.ref.empty())
      fail("--ref is required with --model (or use --profile: {})", fmt::join(profile_names(), ", "));
    if (eff.network_weights.empty()) {
      DMEVAL_CHECK(eff.network == "shapes-net", "--network-weights is required with --network {}",
                   eff.network);
      eff.network_weights = profile_path("profiles/shapes/shapes-net.safetensors");
    }
  }
  o = eff;
}

std::string default_run_root(const RunCellOptions& o) {
  std::string name = o.profile;
  if (!name.empty() && name.find('/') != std::string::npos)
    name = fs::path(name).parent_path().filename().string();
  return fmt::format("runs/{}", name.empty() ? fs::path(o.model.model).stem().string() : name);
}

json run_options_to_json(const RunCellOptions& o) {
  json j;
  j["dmeval_run_options"] = 2;
  j["options"] = run_option_table().to_json(o, kSaved);
  j["sources"] = json(o.sources);
  return j;
}

namespace {
// Earlier versions' options.json: groups {"model": {...}, "quant": {...}, "db": {...}, "sampler": {...}}
// and the rest flat, with allow_unknown for --allow-unknown-weights.
json flatten_legacy(const json& j) {
  json flat = json::object();
  for (auto it = j.begin(); it != j.end(); ++it) {
    const bool group = it.value().is_object() && (it.key() == "model" || it.key() == "quant" ||
                                                  it.key() == "db" || it.key() == "sampler");
    if (!group) {
      flat[it.key()] = it.value();
      continue;
    }
    for (auto g = it.value().begin(); g != it.value().end(); ++g)
      flat[g.key() == "allow_unknown" ? std::string("allow_unknown_weights") : g.key()] = g.value();
  }
  return flat;
}
}  // namespace

RunCellOptions run_options_from_json(const nlohmann::json& j_in, const std::string& where) {
  DMEVAL_CHECK(j_in.is_object(), "{}: not a dmeval run's options (not a JSON object)", where);
  RunCellOptions o;
  if (j_in.contains("dmeval_run_options")) {
    DMEVAL_CHECK(j_in["dmeval_run_options"] == 2 && j_in.contains("options"),
                 "{}: options of another dmeval version (dmeval_run_options {})", where,
                 j_in["dmeval_run_options"].dump());
    run_option_table().from_json(j_in["options"], o, where, kSaved, /*require_all=*/true);
    if (j_in.contains("sources") && j_in["sources"].is_object())
      for (const auto& [k, v] : j_in["sources"].items())
        if (v.is_string()) o.sources[k] = v.get<std::string>();
  } else {
    const json flat = flatten_legacy(json(j_in));
    json known = json::object();
    for (auto it = flat.begin(); it != flat.end(); ++it)
      if (run_option_table().find(it.key())) known[it.key()] = it.value();
    run_option_table().from_json(known, o, where, kSaved);
  }
  return o;
}

RunCellOptions read_run_options(const std::string& dir) {
  const std::string path = dir + "/options.json";
  DMEVAL_CHECK(fs::exists(path), "{}: not a dmeval run folder (no options.json)", dir);
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not valid JSON ({})", path, e.what());
  }
  return run_options_from_json(j, path);
}

}  // namespace dmeval::cli
