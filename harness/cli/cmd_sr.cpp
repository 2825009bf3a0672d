// `dmeval sr --hr DIR --sr DIR`: PSNR, SSIM and LPIPS of super-resolved images against their
// references, with BasicSR's and the lpips package's conventions (shared/spec/metrics-paired.md),
// per image and as the per-dataset mean SR papers print.
#include <torch/torch.h>

#include <glob.h>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"
#include "core/checkpoint.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/known_files.h"
#include "harness/cli/commands.h"
#include "harness/cli/db_cli.h"
#include "metrics/lpips.h"
#include "metrics/matlab_resize.h"
#include "metrics/paired_folders.h"
#include "metrics/paired_suite.h"
#include "metrics/psnr_ssim.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace dmeval::cli {

namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

struct SrOptions {
  std::string hr, sr, preset, lpips = "alex", backbone, linear, csv, device = "auto", dataset;
  DbOptions db;
  int scale = 0;
  int crop_border = 0;
  bool y_channel = false;
  bool allow_unknown_weights = false;
  bool allow_unpaired = false;
  bool json = false;
  bool lpips_given = false;
};

// A named set of conventions a paper used. Registry by name: add a row for another paper.
struct Preset {
  const char* name;
  const char* description;
  bool crop_border_is_scale;
  bool y_channel;
  const char* lpips;
};
const Preset kPresets[] = {
    {"bi-diffsr",
     "BI-DiffSR (options/test/test_BI_DiffSR_x*.yml): HR mod-cropped to the scale, PSNR/SSIM on Y (BT.601 "
     "studio swing) with crop_border = scale, LPIPS alex v0.1 on the whole image, inputs [0,1] with "
     "normalize=True",
     true, true, "alex"},
};

std::string torch_hub_dir() {
  if (const char* th = std::getenv("TORCH_HOME")) return std::string(th) + "/hub/checkpoints";
  if (const char* home = std::getenv("HOME")) return std::string(home) + "/.cache/torch/hub/checkpoints";
  return ".";
}

std::vector<std::string> glob_paths(const std::string& pattern) {
  std::vector<std::string> out;
  glob_t g{};
  if (glob(pattern.c_str(), 0, nullptr, &g) == 0)
    for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
  globfree(&g);
  return out;
}

// Where users normally have the lpips package's v0.1 weights: inside an installed lpips package.
std::vector<std::string> linear_candidates(LpipsNet net) {
  const std::string tail = std::string("/lpips/weights/v0.1/") + lpips_linear_file_name(net);
  std::vector<std::string> out;
  if (const char* env = std::getenv("DMEVAL_LPIPS_DIR"))
    out.push_back(std::string(env) + "/" + lpips_linear_file_name(net));
  if (const char* home = std::getenv("HOME")) {
    out.push_back(std::string(home) + "/.cache/dmeval/lpips/v0.1/" + lpips_linear_file_name(net));
    for (auto& p : glob_paths(std::string(home) + "/.local/lib/python3*/site-packages" + tail))
      out.push_back(p);
  }
  for (const char* pat : {"/usr/lib/python3/dist-packages", "/usr/local/lib/python3*/dist-packages",
                          "/usr/local/lib/python3*/site-packages"})
    for (auto& p : glob_paths(std::string(pat) + tail)) out.push_back(p);
  return out;
}

struct WeightFile {
  std::string path;
  std::string sha256;
  std::string known;  // description of the published file it is, or "" if unknown
};

WeightFile check_weight_file(const std::string& path, const std::string& expected_name, bool allow_unknown) {
  WeightFile w{path, sha256_file(path), ""};
  const KnownFile* k = identify_known_file(w.sha256, "");
  if (k && k->name == expected_name) {
    w.known = k->description;
    return w;
  }
  if (!allow_unknown)
    fail(
        "{}: SHA-256 {} is not the published {}{}; LPIPS values would not be comparable with published "
        "ones. Pass --allow-unknown-weights to use it anyway (the hash is recorded with every result).",
        path, w.sha256, expected_name, k ? " (it is " + k->name + ")" : std::string());
  return w;
}

struct LpipsSetup {
  Lpips model;
  WeightFile backbone, linear;
};

LpipsSetup load_lpips_for(const SrOptions& o, LpipsNet net) {
  std::string bb = o.backbone;
  if (bb.empty()) {
    bb = torch_hub_dir() + "/" + lpips_backbone_file_name(net);
    if (!fs::exists(bb))
      fail(
          "LPIPS '{}' needs the backbone weights {} ({}), not found at {}. Pass --lpips-backbone FILE, or "
          "--lpips none to skip LPIPS.",
          lpips_net_name(net), lpips_backbone_file_name(net), lpips_backbone_source(net), bb);
  }
  std::string lin = o.linear;
  if (lin.empty()) {
    auto cands = linear_candidates(net);
    for (const auto& c : cands)
      if (fs::exists(c)) {
        lin = c;
        break;
      }
    if (lin.empty()) {
      std::string where;
      for (const auto& c : cands) where += "\n  " + c;
      fail(
          "LPIPS '{}' needs the linear-layer weights {} ({}). Searched:{}\nPass --lpips-linear FILE (or set "
          "DMEVAL_LPIPS_DIR), or --lpips none to skip LPIPS.",
          lpips_net_name(net), lpips_linear_file_name(net), lpips_linear_source(net), where);
    }
  }
  for (const auto& p : {bb, lin})
    if (!fs::exists(p)) fail("{}: no such file", p);
  LpipsSetup s{Lpips(), check_weight_file(bb, lpips_backbone_file_name(net), o.allow_unknown_weights),
               check_weight_file(lin, lpips_linear_file_name(net), o.allow_unknown_weights)};
  s.model = Lpips::load(net, Checkpoint::open(bb), Checkpoint::open(lin));
  return s;
}

std::string fmt_psnr(double v) {
  if (std::isinf(v)) return "inf";
  char b[32];
  std::snprintf(b, sizeof b, "%.4f", v);
  return b;
}

}  // namespace

void add_sr_command(CLI::App& app) {
  auto o = std::make_shared<SrOptions>();
  auto* cmd = app.add_subcommand(
      "sr",
      "PSNR / SSIM (BasicSR conventions) and LPIPS (lpips package v0.1) of SR images against HR images");
  cmd->add_option("--hr", o->hr, "folder of reference (HR) images")->required();
  cmd->add_option("--sr", o->sr, "folder of super-resolved images, paired with --hr by file name")
      ->required();
  cmd->add_option("--scale", o->scale,
                  "SR scale: the HR image is mod-cropped to a multiple of it first (BasicSR)")
      ->check(CLI::PositiveNumber);
  auto* crop =
      cmd->add_option("--crop-border", o->crop_border, "pixels removed at each edge before PSNR/SSIM")
          ->check(CLI::NonNegativeNumber);
  auto* y = cmd->add_flag("--y-channel", o->y_channel,
                          "PSNR/SSIM on the BT.601 studio-swing Y channel (16..235) as SR papers report");
  auto* lp = cmd->add_option("--lpips", o->lpips, "LPIPS network (v0.1), or none")
                 ->check(CLI::IsMember({"alex", "vgg", "squeeze", "none"}));
  cmd->add_option("--lpips-backbone", o->backbone,
                  "torchvision backbone file (default: the torch hub cache, e.g. alexnet-owt-7be5be79.pth)");
  cmd->add_option("--lpips-linear", o->linear,
                  "lpips v0.1 linear weights (default: an installed lpips package's weights/v0.1/NET.pth)");
  cmd->add_option("--device", o->device, "where LPIPS runs")->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  std::vector<std::string> preset_names;
  std::string preset_help = "a paper's exact conventions:";
  for (const auto& p : kPresets) {
    preset_names.emplace_back(p.name);
    preset_help += std::string(" ") + p.name + " = " + p.description + ".";
  }
  auto* preset = cmd->add_option("--preset", o->preset, preset_help)->check(CLI::IsMember(preset_names));
  preset->excludes(crop)->excludes(y);
  cmd->add_flag("--allow-unknown-weights", o->allow_unknown_weights,
                "accept LPIPS weight files that are not the published ones (their hashes are recorded)");
  cmd->add_flag("--allow-unpaired", o->allow_unpaired,
                "score the pairs found even if some files have no partner (they are listed)");
  cmd->add_flag("--json", o->json, "one JSON object: conventions, provenance, per-image scores, means");
  cmd->add_option("--csv", o->csv, "also write per-image scores to this CSV file");
  cmd->add_option(
      "--dataset", o->dataset,
      "dataset name recorded with the results (default: the HR folder's name, or its parent's when "
      "it is called HR, e.g. Set5)");
  add_db_options(cmd, o->db);
  cmd->callback([o, lp] {
    o->lpips_given = lp->count() > 0;
    for (const auto& p : kPresets) {
      if (o->preset != p.name) continue;
      if (o->scale <= 0) fail("--preset {} needs --scale (the SR factor, e.g. 4)", p.name);
      o->crop_border = p.crop_border_is_scale ? o->scale : 0;
      o->y_channel = p.y_channel;
      if (!o->lpips_given) o->lpips = p.lpips;  // --lpips none still skips LPIPS
    }
    const int mod = o->scale > 0 ? o->scale : 1;
    FolderPairing pairing = pair_folders(o->hr, o->sr);
    const bool unpaired = !pairing.unpaired_reference.empty() || !pairing.unpaired_distorted.empty();
    if (unpaired) {
      std::string list;
      for (const auto& f : pairing.unpaired_reference) list += "\n  HR without SR: " + f;
      for (const auto& f : pairing.unpaired_distorted) list += "\n  SR without HR: " + f;
      if (!o->allow_unpaired || pairing.pairs.empty())
        fail(
            "{} of {} HR files and {} SR files have no partner (pairing is by file name, or name + '_'/'x' + "
            "suffix):{}{}",
            pairing.unpaired_reference.size(), pairing.pairs.size() + pairing.unpaired_reference.size(),
            pairing.unpaired_distorted.size(), list,
            pairing.pairs.empty() ? "" : "\nPass --allow-unpaired to score the pairs found.");
      std::fprintf(stderr, "dmeval: warning: unpaired files are left out:%s\n", list.c_str());
    }

    std::unique_ptr<RunRecorder> rec = RunRecorder::start(o->db);
    std::optional<LpipsSetup> lpips;
    torch::Device device = torch::kCPU;
    if (o->lpips != "none") {
      lpips = load_lpips_for(*o, parse_lpips_net(o->lpips));
      if (o->device == "cuda" && !torch::cuda::is_available())
        fail("--device cuda: no CUDA device is available to this libtorch");
      if (o->device == "cuda" || (o->device == "auto" && torch::cuda::is_available())) {
        device = torch::kCUDA;
        at::globalContext().setAllowTF32CuDNN(false);  // TF32 would move LPIPS by ~1e-4 relative
        at::globalContext().setAllowTF32CuBLAS(false);
      }
      lpips->model.to(device, torch::kFloat32);
    }

    const PairedConventions conv{o->crop_border, o->y_channel};
    PairedScores scores = score_pairs(pairing.pairs, mod, conv, lpips ? &lpips->model : nullptr, device);
    ojson& images = scores.images;
    const std::vector<double>&psnrs = scores.psnr, &ssims = scores.ssim, &lps = scores.lpips;
    const PsnrMean& pm = scores.psnr_mean;
    const double ssim_mean = scores.ssim_mean, lpips_mean = scores.lpips_mean;

    ojson conventions = {
        {"preset", o->preset.empty() ? ojson(nullptr) : ojson(o->preset)},
        {"hr_mod_crop", mod},
        {"crop_border", o->crop_border},
        {"channels", o->y_channel ? "Y (BT.601 studio swing, 16..235, not rounded)" : "RGB"},
        {"psnr_ssim",
         "BasicSR calculate_psnr/calculate_ssim: 0..255, float64, one MSE over all channels, "
         "SSIM 11x11 Gaussian sigma 1.5 on the valid region"},
        {"pairing", pairing.by_suffix ? "by file name; " + std::to_string(pairing.by_suffix) +
                                            " SR files matched as NAME + separator + suffix"
                                      : "by file name"}};
    if (lpips)
      conventions["lpips"] = std::string("lpips v0.1 net ") + o->lpips +
                             ", inputs uint8/255 mapped to [-1,1] inside (normalize=True), whole image "
                             "(crop border not applied), float32 on " +
                             device.str();
    ojson provenance = ojson::object();
    if (lpips) {
      for (const auto* w : {&lpips->backbone, &lpips->linear})
        provenance[w == &lpips->backbone ? "lpips_backbone" : "lpips_linear"] = {
            {"path", w->path}, {"sha256", w->sha256}, {"published", !w->known.empty()}};
    }
    ojson& mean = scores.mean;

    if (rec) {
      std::string dataset = o->dataset;
      if (dataset.empty()) {
        fs::path h = fs::absolute(o->hr).lexically_normal();
        if (h.filename().empty()) h = h.parent_path();
        dataset = h.filename() == "HR" ? h.parent_path().filename().string() : h.filename().string();
        if (o->scale > 0) dataset += " x" + std::to_string(o->scale);
      }
      std::vector<std::string> refs;
      for (const auto& p : pairing.pairs) refs.push_back(p.reference_path);
      const int64_t ref_id = rec->reference_set(o->hr, "images", static_cast<int64_t>(refs.size()), refs);
      char mode[96];
      std::snprintf(mode, sizeof mode, "%s, crop %d, HR mod-crop %d", o->y_channel ? "Y" : "RGB",
                    o->crop_border, mod);
      std::vector<db::MetricRow> rows;
      auto row = [&](const std::string& name, std::optional<double> v,
                     const std::optional<std::string>& item) {
        db::MetricRow r;
        r.name = name;
        r.value = v;
        r.n = item ? 1 : static_cast<int64_t>(pairing.pairs.size());
        r.dataset = dataset;
        r.item = item;
        r.reference_set_id = ref_id;
        r.compat = o->preset.empty() ? "basicsr" : o->preset;
        if (name == "lpips") {
          r.feature_network = "lpips v0.1 " + o->lpips;
          r.weights_sha256 = lpips->backbone.sha256;
          r.mode = "[0,1] -> [-1,1], whole image, HR mod-crop " + std::to_string(mod);
          r.details_json = ojson({{"conventions", conventions}, {"provenance", provenance}}).dump();
        } else {
          r.mode = mode;
          if (!item) r.details_json = ojson({{"conventions", conventions}}).dump();
          if (name == "psnr" && !item && pm.infinite)
            r.details_json =
                ojson({{"conventions", conventions}, {"identical_pairs_excluded", pm.infinite}}).dump();
        }
        rows.push_back(r);
      };
      row("psnr", pm.finite ? std::optional<double>(pm.mean_finite) : std::nullopt, std::nullopt);
      row("ssim", ssim_mean, std::nullopt);
      if (lpips) row("lpips", lpips_mean, std::nullopt);
      for (size_t i = 0; i < images.size(); ++i) {
        const std::string name = images[i]["name"];
        row("psnr", std::isinf(psnrs[i]) ? std::nullopt : std::optional<double>(psnrs[i]), name);
        row("ssim", ssims[i], name);
        if (lpips) row("lpips", lps[i], name);
      }
      rec->add_metrics(rows);
      rec->finish();
    }
    if (!o->csv.empty()) {
      std::string csv = "name,hr,sr,psnr,ssim" + std::string(lpips ? ",lpips" : "") + "\n";
      char buf[64];
      for (size_t i = 0; i < images.size(); ++i) {
        csv += images[i]["name"].get<std::string>() + "," + images[i]["hr"].get<std::string>() + "," +
               images[i]["sr"].get<std::string>() + ",";
        if (std::isinf(psnrs[i])) {
          csv += "inf";
        } else {
          std::snprintf(buf, sizeof buf, "%.17g", psnrs[i]);
          csv += buf;
        }
        std::snprintf(buf, sizeof buf, ",%.17g", ssims[i]);
        csv += buf;
        if (lpips) {
          std::snprintf(buf, sizeof buf, ",%.17g", lps[i]);
          csv += buf;
        }
        csv += "\n";
      }
      AtomicFile f(o->csv);
      f.write(csv.data(), csv.size());
      f.commit();
    }

    if (o->json) {
      ojson j = {{"metric", "sr"},           {"hr", o->hr},      {"sr", o->sr}, {"conventions", conventions},
                 {"provenance", provenance}, {"images", images}, {"mean", mean}};
      if (unpaired) j["unpaired"] = {{"hr", pairing.unpaired_reference}, {"sr", pairing.unpaired_distorted}};
      std::printf("%s\n", j.dump(2).c_str());
      return;
    }
    std::printf("%-24s %10s %8s%s\n", "image", "PSNR(dB)", "SSIM", lpips ? "    LPIPS" : "");
    for (size_t i = 0; i < images.size(); ++i) {
      std::printf("%-24s %10s %8.4f", images[i]["name"].get<std::string>().c_str(),
                  fmt_psnr(psnrs[i]).c_str(), ssims[i]);
      if (lpips) std::printf(" %8.4f", lps[i]);
      std::printf("\n");
    }
    std::printf("%-24s %10s %8.4f", ("mean of " + std::to_string(images.size())).c_str(),
                pm.finite ? fmt_psnr(pm.mean_finite).c_str() : "inf", ssim_mean);
    if (lpips) std::printf(" %8.4f", lpips_mean);
    std::printf("\n");
    if (pm.infinite)
      std::printf("note: %d identical pair(s) have PSNR = inf and are left out of the PSNR mean\n",
                  pm.infinite);
    std::printf("conventions: %s, crop border %d, HR mod-crop %d%s\n",
                o->y_channel ? "Y channel (BT.601 studio swing)" : "RGB", o->crop_border, mod,
                o->preset.empty() ? "" : (", preset " + o->preset).c_str());
    if (lpips)
      std::printf("LPIPS: %s v0.1, [0,1] -> [-1,1] inside, whole image; backbone %s (%s), linear %s (%s)\n",
                  o->lpips.c_str(), lpips->backbone.sha256.substr(0, 12).c_str(),
                  lpips->backbone.known.empty() ? "NOT the published weights" : "published",
                  lpips->linear.sha256.substr(0, 12).c_str(),
                  lpips->linear.known.empty() ? "NOT the published weights" : "published");
  });
}

}  // namespace dmeval::cli
