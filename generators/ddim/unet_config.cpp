#include "generators/ddim/unet_config.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <map>
#include <sstream>

#include "core/error.h"

namespace dmeval {

namespace {

ModelConfig cifar10() {
  ModelConfig c;
  c.name = "cifar10";
  c.dataset = "CIFAR10";
  c.ddim_config = "configs/cifar10.yml";
  c.unet.ch_mult = {1, 2, 2, 2};
  c.unet.dropout = 0.1;
  c.unet.resolution = 32;
  c.ema_rate = 0.9999;
  c.diffusion.var_type = "fixedlarge";
  return c;
}

ModelConfig celeba() {
  ModelConfig c = cifar10();
  c.name = "celeba";
  c.dataset = "CELEBA";
  c.ddim_config = "configs/celeba.yml";
  c.unet.ch_mult = {1, 2, 2, 2, 4};
  c.unet.resolution = 64;
  return c;
}

ModelConfig lsun(const std::string& category, const std::string& ddim_config) {
  ModelConfig c = cifar10();
  c.ddim_config = ddim_config;
  c.name = "lsun_" + category;
  c.dataset = "LSUN " + category;
  c.unet.ch_mult = {1, 1, 2, 2, 4, 4};
  c.unet.dropout = 0.0;
  c.unet.resolution = 256;
  c.ema_rate = 0.999;
  c.diffusion.var_type = "fixedsmall";
  return c;
}

// The embedded profile's network (dmeval's own): a small ddim UNet for the 32x32 shapes data, trained
// by `dmeval train` (scripts/train-shapes.sh).
ModelConfig shapes() {
  ModelConfig c = cifar10();
  c.name = "shapes";
  c.dataset = "dmeval shapes";
  c.ddim_config = "";
  c.unet.ch = 32;
  c.unet.ch_mult = {1, 2, 2};
  c.unet.num_res_blocks = 1;
  c.unet.attn_resolutions = {16};
  c.unet.dropout = 0.1;
  c.ema_rate = 0.999;
  return c;
}

const std::map<std::string, ModelConfig (*)()>& presets() {
  static const std::map<std::string, ModelConfig (*)()> kPresets = {
      {"cifar10", cifar10},
      {"celeba", celeba},
      {"lsun_bedroom", [] { return lsun("bedroom", "configs/bedroom.yml"); }},
      {"lsun_church", [] { return lsun("church_outdoor", "configs/church.yml"); }},
      {"lsun_cat", [] { return lsun("cat", ""); }},  // pytorch_diffusion ships it; ddim has no config
      {"shapes", shapes},
  };
  return kPresets;
}

// Typed access to a YAML node with errors that name the file and the key path.
class YamlReader {
 public:
  YamlReader(std::string path, YAML::Node root) : path_(std::move(path)), root_(std::move(root)) {}

  YAML::Node section(const char* name, bool required) const {
    YAML::Node n = root_[name];
    if (!n && required) fail("{}: missing section '{}'", path_, name);
    if (n && !n.IsMap()) fail("{}: '{}' must be a mapping", path_, name);
    return n;
  }

  template <typename T>
  void get(const YAML::Node& sec, const char* section, const char* key, T& out, bool required) const {
    if (!sec) {
      if (required) fail("{}: missing key '{}.{}'", path_, section, key);
      return;
    }
    YAML::Node v = sec[key];
    if (!v || v.IsNull()) {
      if (required) fail("{}: missing key '{}.{}'", path_, section, key);
      return;
    }
    try {
      out = v.as<T>();
    } catch (const YAML::Exception& e) {
      fail("{}: key '{}.{}' has the wrong type: {}", path_, section, key, e.what());
    }
  }

 private:
  std::string path_;
  YAML::Node root_;
};

}  // namespace

const std::vector<std::string>& model_preset_names() {
  static const std::vector<std::string> kNames = [] {
    std::vector<std::string> n;
    for (const auto& [k, v] : presets()) n.push_back(k);
    return n;
  }();
  return kNames;
}

ModelConfig model_preset(const std::string& name) {
  auto it = presets().find(name);
  if (it == presets().end())
    fail("unknown model '{}': presets are {} (or give a ddim .yml config)", name,
         fmt::join(model_preset_names(), ", "));
  ModelConfig c = it->second();
  c.source = "preset";
  validate(c);
  return c;
}

ModelConfig read_ddim_yaml(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open the config file", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_ddim_yaml(ss.str(), path);
}

ModelConfig parse_ddim_yaml(const std::string& text, const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    fail("{}: not valid YAML: {}", path, e.what());
  }
  if (!root.IsMap()) fail("{}: a ddim config is a mapping with sections data, model, diffusion", path);
  YamlReader r(path, root);
  ModelConfig c;
  c.name = path;
  c.source = path;
  YAML::Node data = r.section("data", true), model = r.section("model", true),
             diffusion = r.section("diffusion", true);
  r.get(data, "data", "image_size", c.unet.resolution, true);
  r.get(data, "data", "channels", c.channels, false);
  std::string dataset, category;
  r.get(data, "data", "dataset", dataset, false);
  r.get(data, "data", "category", category, false);
  c.dataset = category.empty() ? dataset : dataset + " " + category;
  r.get(model, "model", "type", c.unet.type, false);
  r.get(model, "model", "in_channels", c.unet.in_channels, true);
  r.get(model, "model", "out_ch", c.unet.out_ch, true);
  r.get(model, "model", "ch", c.unet.ch, true);
  r.get(model, "model", "ch_mult", c.unet.ch_mult, true);
  r.get(model, "model", "num_res_blocks", c.unet.num_res_blocks, true);
  r.get(model, "model", "attn_resolutions", c.unet.attn_resolutions, true);
  r.get(model, "model", "dropout", c.unet.dropout, false);
  r.get(model, "model", "resamp_with_conv", c.unet.resamp_with_conv, true);
  r.get(model, "model", "var_type", c.diffusion.var_type, false);
  r.get(model, "model", "ema", c.ema, false);
  r.get(model, "model", "ema_rate", c.ema_rate, false);
  r.get(diffusion, "diffusion", "beta_schedule", c.diffusion.beta_schedule, true);
  r.get(diffusion, "diffusion", "beta_start", c.diffusion.beta_start, true);
  r.get(diffusion, "diffusion", "beta_end", c.diffusion.beta_end, true);
  r.get(diffusion, "diffusion", "num_diffusion_timesteps", c.diffusion.num_timesteps, true);
  c.unet.num_timesteps = c.diffusion.num_timesteps;
  try {
    validate(c);
  } catch (const Error& e) {
    fail("{}: {}", path, e.what());
  }
  return c;
}

ModelConfig resolve_model_config(const std::string& name_or_path) {
  auto ends_with = [&](const char* s) {
    std::string suf(s);
    return name_or_path.size() >= suf.size() &&
           name_or_path.compare(name_or_path.size() - suf.size(), suf.size(), suf) == 0;
  };
  if (ends_with(".yml") || ends_with(".yaml")) return read_ddim_yaml(name_or_path);
  return model_preset(name_or_path);
}

std::string describe(const ModelConfig& c) {
  return fmt::format("ddim UNet {}{}: {}", c.name, c.source == "preset" ? " (preset)" : "",
                     describe_architecture(c));
}

std::string describe_architecture(const ModelConfig& c) {
  const UNetConfig& u = c.unet;
  return fmt::format(
      "{} ch {}, ch_mult [{}], res blocks {}, attn [{}], {}x{}x{}, dropout {}, {} beta {}..{} T={}", u.type,
      u.ch, fmt::join(u.ch_mult, ","), u.num_res_blocks, fmt::join(u.attn_resolutions, ","), u.in_channels,
      u.resolution, u.resolution, u.dropout, c.diffusion.beta_schedule, c.diffusion.beta_start,
      c.diffusion.beta_end, c.diffusion.num_timesteps);
}

void validate(const ModelConfig& c) {
  const UNetConfig& u = c.unet;
  DMEVAL_CHECK(u.type == "simple" || u.type == "bayesian", "model.type '{}' must be simple or bayesian",
               u.type);
  DMEVAL_CHECK(u.ch > 0 && u.ch % 32 == 0, "model.ch = {} must be a positive multiple of 32 (GroupNorm(32))",
               u.ch);
  DMEVAL_CHECK(!u.ch_mult.empty(), "model.ch_mult must not be empty");
  for (int64_t m : u.ch_mult) DMEVAL_CHECK(m > 0, "model.ch_mult entries must be positive, got {}", m);
  DMEVAL_CHECK(u.num_res_blocks >= 1, "model.num_res_blocks = {} must be at least 1", u.num_res_blocks);
  DMEVAL_CHECK(u.in_channels >= 1 && u.out_ch >= 1, "model.in_channels / out_ch must be positive");
  DMEVAL_CHECK(u.dropout >= 0 && u.dropout < 1, "model.dropout = {} must be in [0, 1)", u.dropout);
  const int64_t down = int64_t{1} << (u.ch_mult.size() - 1);
  DMEVAL_CHECK(u.resolution > 0 && u.resolution % down == 0,
               "data.image_size = {} must be divisible by 2^(levels-1) = {}", u.resolution, down);
  DMEVAL_CHECK(c.diffusion.num_timesteps >= 1, "diffusion.num_diffusion_timesteps must be positive");
  DMEVAL_CHECK(c.channels == u.in_channels, "data.channels = {} differs from model.in_channels = {}",
               c.channels, u.in_channels);
}

}  // namespace dmeval
