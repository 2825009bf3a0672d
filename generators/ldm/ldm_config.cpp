#include "generators/ldm/ldm_config.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <set>
#include <sstream>

#include "core/error.h"

namespace dmeval {

namespace {

// The released configs' values (latent-diffusion a506df5: configs/latent-diffusion/
// lsun_bedrooms-ldm-vq-4.yaml and cin256-v2.yaml; spec ldm.md §1.3, §2, §3), as the config tree.
const char* kLsunBedrooms = R"({"target": "ldm.models.diffusion.ddpm.LatentDiffusion", "params": {
  "linear_start": 0.0015, "linear_end": 0.0195, "timesteps": 1000, "image_size": 64, "channels": 3,
  "use_ema": true,
  "unet_config": {"target": "ldm.modules.diffusionmodules.openaimodel.UNetModel", "params": {
    "image_size": 64, "in_channels": 3, "out_channels": 3, "model_channels": 224,
    "attention_resolutions": [8, 4, 2], "num_res_blocks": 2, "channel_mult": [1, 2, 3, 4],
    "num_head_channels": 32}},
  "first_stage_config": {"target": "ldm.models.autoencoder.VQModelInterface", "params": {
    "embed_dim": 3, "n_embed": 8192, "ddconfig": {"double_z": false, "z_channels": 3, "resolution": 256,
    "in_channels": 3, "out_ch": 3, "ch": 128, "ch_mult": [1, 2, 4], "num_res_blocks": 2,
    "attn_resolutions": [], "dropout": 0.0}}},
  "cond_stage_config": "__is_unconditional__"}})";

const char* kCin256V2 = R"({"target": "ldm.models.diffusion.ddpm.LatentDiffusion", "params": {
  "linear_start": 0.0015, "linear_end": 0.0195, "timesteps": 1000, "image_size": 64, "channels": 3,
  "use_ema": false, "conditioning_key": "crossattn", "cond_stage_key": "class_label",
  "unet_config": {"target": "ldm.modules.diffusionmodules.openaimodel.UNetModel", "params": {
    "image_size": 64, "in_channels": 3, "out_channels": 3, "model_channels": 192,
    "attention_resolutions": [8, 4, 2], "num_res_blocks": 2, "channel_mult": [1, 2, 3, 5], "num_heads": 1,
    "use_spatial_transformer": true, "transformer_depth": 1, "context_dim": 512}},
  "first_stage_config": {"target": "ldm.models.autoencoder.VQModelInterface", "params": {
    "embed_dim": 3, "n_embed": 8192, "ddconfig": {"double_z": false, "z_channels": 3, "resolution": 256,
    "in_channels": 3, "out_ch": 3, "ch": 128, "ch_mult": [1, 2, 4], "num_res_blocks": 2,
    "attn_resolutions": [], "dropout": 0.0}}},
  "cond_stage_config": {"target": "ldm.modules.encoders.modules.ClassEmbedder", "params": {
    "embed_dim": 512, "n_classes": 1001, "key": "class_label"}}}})";

// The embedded latent profile's model (profiles/shapes-ldm, dmeval's construction): the LDM-4 layout
// scaled to 32x32 shapes images — a VQ-f4 first stage (8x8x3 latents, 512 codes), a class-conditional
// UNet with SpatialTransformers at both levels and the class embedder (4 shape classes + the
// unconditional one), the LDM schedule. scale_factor = 1 / std of the trained encoder's latents on the
// training images (LatentDiffusion's scale_by_std rule, computed once by `dmeval train-vq` and fixed
// here, as the released configs fix theirs: 1 / 0.5615 on the first 2,048 training images).
const char* kShapesLdm = R"({"target": "ldm.models.diffusion.ddpm.LatentDiffusion", "params": {
  "linear_start": 0.0015, "linear_end": 0.0195, "timesteps": 1000, "image_size": 8, "channels": 3,
  "use_ema": false, "conditioning_key": "crossattn", "cond_stage_key": "class_label",
  "scale_factor": 1.7808,
  "unet_config": {"target": "ldm.modules.diffusionmodules.openaimodel.UNetModel", "params": {
    "image_size": 8, "in_channels": 3, "out_channels": 3, "model_channels": 64,
    "attention_resolutions": [1, 2], "num_res_blocks": 1, "channel_mult": [1, 2], "num_head_channels": 32,
    "use_spatial_transformer": true, "transformer_depth": 1, "context_dim": 64}},
  "first_stage_config": {"target": "ldm.models.autoencoder.VQModelInterface", "params": {
    "embed_dim": 3, "n_embed": 512, "ddconfig": {"double_z": false, "z_channels": 3, "resolution": 32,
    "in_channels": 3, "out_ch": 3, "ch": 32, "ch_mult": [1, 2, 2], "num_res_blocks": 1,
    "attn_resolutions": [], "dropout": 0.0}}},
  "cond_stage_config": {"target": "ldm.modules.encoders.modules.ClassEmbedder", "params": {
    "embed_dim": 64, "n_classes": 5, "key": "class_label"}}}})";

int64_t int_of(const nlohmann::json& j, const char* key, const std::string& source) {
  DMEVAL_CHECK(j.contains(key) && j.at(key).is_number_integer(),
               "{}: first_stage_config needs an integer '{}'", source, key);
  return j.at(key).get<int64_t>();
}

std::vector<int64_t> list_of(const nlohmann::json& j, const char* key, const std::string& source) {
  DMEVAL_CHECK(j.contains(key) && j.at(key).is_array(), "{}: first_stage_config needs a list '{}'", source,
               key);
  std::vector<int64_t> out;
  for (const auto& e : j.at(key)) {
    DMEVAL_CHECK(e.is_number_integer(), "{}: '{}' must be a list of integers", source, key);
    out.push_back(e.get<int64_t>());
  }
  return out;
}

// YAML scalars carry no type: integers, then floats, then booleans and null, else strings.
nlohmann::json yaml_to_json(const YAML::Node& n) {
  if (n.IsMap()) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& kv : n) j[kv.first.as<std::string>()] = yaml_to_json(kv.second);
    return j;
  }
  if (n.IsSequence()) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& e : n) j.push_back(yaml_to_json(e));
    return j;
  }
  if (n.IsNull()) return nullptr;
  const std::string s = n.as<std::string>();
  if (s == "true" || s == "True") return true;
  if (s == "false" || s == "False") return false;
  if (s == "null" || s == "None" || s == "~") return nullptr;
  try {
    size_t used = 0;
    const long long v = std::stoll(s, &used);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  try {
    size_t used = 0;
    const double v = std::stod(s, &used);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  return s;
}

}  // namespace

LdmUNetConfig ldm_unet_config_from_json(const nlohmann::json& p, const std::string& source) {
  DMEVAL_CHECK(p.is_object(), "{}: unet_config.params must be an object", source);
  LdmUNetConfig c;
  static const std::set<std::string> kIgnored = {"use_checkpoint", "use_fp16", "num_heads_upsample"};
  for (auto it = p.begin(); it != p.end(); ++it) {
    const std::string& k = it.key();
    const nlohmann::json& v = it.value();
    auto i64 = [&] {
      DMEVAL_CHECK(v.is_number_integer(), "{}: unet_config.params.{} must be an integer", source, k);
      return v.get<int64_t>();
    };
    auto list = [&] {
      DMEVAL_CHECK(v.is_array(), "{}: unet_config.params.{} must be a list of integers", source, k);
      std::vector<int64_t> out;
      for (const auto& e : v) {
        DMEVAL_CHECK(e.is_number_integer(), "{}: unet_config.params.{} must be a list of integers", source,
                     k);
        out.push_back(e.get<int64_t>());
      }
      return out;
    };
    auto flag = [&] {
      DMEVAL_CHECK(v.is_boolean(), "{}: unet_config.params.{} must be true or false", source, k);
      return v.get<bool>();
    };
    auto unsupported_if = [&](bool bad) {
      DMEVAL_CHECK(!bad, "{}: unet_config.params.{} = {} is not supported (neither LDM-4 model uses it)",
                   source, k, v.dump());
    };
    if (k == "image_size")
      c.image_size = i64();
    else if (k == "in_channels")
      c.in_channels = i64();
    else if (k == "out_channels")
      c.out_channels = i64();
    else if (k == "model_channels")
      c.model_channels = i64();
    else if (k == "num_res_blocks")
      c.num_res_blocks = i64();
    else if (k == "attention_resolutions")
      c.attention_resolutions = list();
    else if (k == "channel_mult")
      c.channel_mult = list();
    else if (k == "num_heads")
      c.num_heads = i64();
    else if (k == "num_head_channels")
      c.num_head_channels = i64();
    else if (k == "use_spatial_transformer")
      c.use_spatial_transformer = flag();
    else if (k == "transformer_depth")
      c.transformer_depth = i64();
    else if (k == "context_dim")
      c.context_dim = i64();
    else if (k == "legacy")
      c.legacy = flag();
    else if (k == "dropout")
      c.dropout = v.get<double>();
    else if (k == "use_scale_shift_norm" || k == "resblock_updown" || k == "use_new_attention_order")
      unsupported_if(flag());
    else if (k == "conv_resample")
      unsupported_if(!flag());
    else if (k == "dims")
      unsupported_if(i64() != 2);
    else if (k == "num_classes")
      unsupported_if(!v.is_null());
    else if (!kIgnored.count(k))
      fail("{}: unet_config.params has an unknown key '{}'", source, k);
  }
  DMEVAL_CHECK(c.model_channels > 0 && c.num_res_blocks > 0 && !c.channel_mult.empty(),
               "{}: model_channels, num_res_blocks and channel_mult must be positive / non-empty", source);
  DMEVAL_CHECK(c.num_heads > 0 || c.num_head_channels > 0, "{}: set num_heads or num_head_channels", source);
  DMEVAL_CHECK(!c.use_spatial_transformer || c.context_dim > 0,
               "{}: a SpatialTransformer model needs context_dim", source);
  DMEVAL_CHECK(c.legacy, "{}: legacy = false is not supported (both LDM-4 models use the legacy heads)",
               source);
  return c;
}

VqDecoderConfig vq_decoder_config_from_json(const nlohmann::json& p, const std::string& source) {
  DMEVAL_CHECK(p.is_object() && p.contains("ddconfig") && p.at("ddconfig").is_object(),
               "{}: first_stage_config.params needs a ddconfig object", source);
  const nlohmann::json& d = p.at("ddconfig");
  VqDecoderConfig c;
  c.embed_dim = int_of(p, "embed_dim", source);
  c.n_embed = int_of(p, "n_embed", source);
  c.z_channels = int_of(d, "z_channels", source);
  c.resolution = int_of(d, "resolution", source);
  c.out_ch = int_of(d, "out_ch", source);
  c.in_channels = d.contains("in_channels") ? int_of(d, "in_channels", source) : c.out_ch;
  c.ch = int_of(d, "ch", source);
  c.num_res_blocks = int_of(d, "num_res_blocks", source);
  c.ch_mult = list_of(d, "ch_mult", source);
  c.attn_resolutions = list_of(d, "attn_resolutions", source);
  DMEVAL_CHECK(!d.value("double_z", false), "{}: double_z = true is a KL first stage, not a VQ one", source);
  DMEVAL_CHECK(c.embed_dim == c.z_channels, "{}: embed_dim {} differs from z_channels {}", source,
               c.embed_dim, c.z_channels);
  DMEVAL_CHECK(!c.ch_mult.empty() && c.ch > 0 && c.n_embed > 0, "{}: bad first stage sizes", source);
  return c;
}

LdmConfig ldm_config_from_json(const nlohmann::json& tree, const std::string& source) {
  const nlohmann::json& root = tree.contains("model") ? tree.at("model") : tree;
  DMEVAL_CHECK(root.is_object() && root.contains("params") && root.at("params").is_object(),
               "{}: not a LatentDiffusion config (no params)", source);
  const nlohmann::json& p = root.at("params");
  LdmConfig c;
  c.source = source;
  DMEVAL_CHECK(p.contains("unet_config") && p.at("unet_config").contains("params"),
               "{}: params.unet_config.params is missing", source);
  c.unet = ldm_unet_config_from_json(p.at("unet_config").at("params"), source);
  DMEVAL_CHECK(p.contains("first_stage_config") && p.at("first_stage_config").contains("params"),
               "{}: params.first_stage_config.params is missing", source);
  const std::string fs_target = p.at("first_stage_config").value("target", std::string());
  DMEVAL_CHECK(fs_target.find("VQModel") != std::string::npos,
               "{}: first stage {} is not a VQ model (the KL autoencoders come with Stable Diffusion)",
               source, fs_target);
  c.first_stage = vq_decoder_config_from_json(p.at("first_stage_config").at("params"), source);
  DMEVAL_CHECK(c.first_stage.embed_dim == c.unet.in_channels,
               "{}: the first stage's latent has {} channels, the UNet takes {}", source,
               c.first_stage.embed_dim, c.unet.in_channels);
  if (p.contains("cond_stage_config") && p.at("cond_stage_config").is_object()) {
    const nlohmann::json& cs = p.at("cond_stage_config");
    const std::string target = cs.value("target", std::string());
    DMEVAL_CHECK(target.find("ClassEmbedder") != std::string::npos,
                 "{}: conditioning stage {} is not supported yet (class embedder only)", source, target);
    c.n_classes = cs.at("params").at("n_classes").get<int64_t>();
    c.class_embed_dim = cs.at("params").at("embed_dim").get<int64_t>();
    DMEVAL_CHECK(c.unet.use_spatial_transformer && c.unet.context_dim == c.class_embed_dim,
                 "{}: the class embedding ({}) must feed the UNet's cross-attention (context_dim {})", source,
                 c.class_embed_dim, c.unet.context_dim);
  }
  c.linear_start = p.value("linear_start", 0.0015);
  c.linear_end = p.value("linear_end", 0.0195);
  c.timesteps = p.value("timesteps", int64_t{1000});
  c.use_ema = p.value("use_ema", true);  // LatentDiffusion's default
  c.scale_factor = p.value("scale_factor", 1.0);
  DMEVAL_CHECK(!p.value("scale_by_std", false), "{}: scale_by_std is not supported", source);
  return c;
}

std::vector<std::string> ldm_preset_names() {
  return {"lsun_bedrooms-ldm-vq-4", "cin256-v2", "shapes-ldm"};
}

LdmConfig resolve_ldm_config(const std::string& name) {
  if (name == "lsun_bedrooms-ldm-vq-4" || name == "cin256-v2") {
    LdmConfig c = ldm_config_from_json(nlohmann::json::parse(name == "cin256-v2" ? kCin256V2 : kLsunBedrooms),
                                       "preset " + name);
    c.name = name;
    // Named as the published tables name them (reports/published), so --with-paper finds their rows.
    c.dataset = name == "cin256-v2" ? "ImageNet 256x256 class-cond" : "LSUN-Bedrooms 256x256";
    return c;
  }
  if (name == "shapes-ldm") {
    LdmConfig c = ldm_config_from_json(nlohmann::json::parse(kShapesLdm), "preset shapes-ldm");
    c.name = name;
    c.dataset = "dmeval shapes";
    return c;
  }
  std::ifstream in(name);
  DMEVAL_CHECK(in.good(), "'{}' is neither an LDM preset ({}) nor a readable config file", name,
               fmt::join(ldm_preset_names(), ", "));
  std::stringstream ss;
  ss << in.rdbuf();
  const bool json_file = name.size() > 5 && name.substr(name.size() - 5) == ".json";
  LdmConfig c = parse_ldm_config_text(ss.str(), name, json_file);
  c.name = name;
  return c;
}

LdmConfig parse_ldm_config_text(const std::string& text, const std::string& source, bool json) {
  nlohmann::json tree;
  try {
    tree = json ? nlohmann::json::parse(text) : yaml_to_json(YAML::Load(text));
  } catch (const std::exception& e) {
    fail("{}: not a valid {} file: {}", source, json ? "JSON" : "YAML", e.what());
  }
  // Any other exception of the JSON library (a value of another type) names the file too.
  try {
    return ldm_config_from_json(tree, source);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail("{}: not a LatentDiffusion config: {}", source, e.what());
  }
}

bool looks_like_ldm_config(const std::string& path) {
  std::ifstream in(path);
  if (!in.good()) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  return text.find("unet_config") != std::string::npos &&
         text.find("first_stage_config") != std::string::npos;
}

nlohmann::ordered_json describe_ldm_config(const LdmConfig& c) {
  const LdmUNetConfig& u = c.unet;
  nlohmann::ordered_json unet;
  unet["image_size"] = u.image_size;
  unet["in_channels"] = u.in_channels;
  unet["out_channels"] = u.out_channels;
  unet["model_channels"] = u.model_channels;
  unet["num_res_blocks"] = u.num_res_blocks;
  unet["attention_resolutions"] = u.attention_resolutions;
  unet["channel_mult"] = u.channel_mult;
  unet["num_heads"] = u.num_heads;
  unet["num_head_channels"] = u.num_head_channels;
  unet["use_spatial_transformer"] = u.use_spatial_transformer;
  unet["transformer_depth"] = u.transformer_depth;
  unet["context_dim"] = u.context_dim;
  unet["legacy"] = u.legacy;
  const VqDecoderConfig& f = c.first_stage;
  nlohmann::ordered_json fs;
  fs["kind"] = "VQModelInterface";
  fs["embed_dim"] = f.embed_dim;
  fs["n_embed"] = f.n_embed;
  fs["z_channels"] = f.z_channels;
  fs["resolution"] = f.resolution;
  fs["out_ch"] = f.out_ch;
  fs["ch"] = f.ch;
  fs["ch_mult"] = f.ch_mult;
  fs["num_res_blocks"] = f.num_res_blocks;
  fs["attn_resolutions"] = f.attn_resolutions;
  nlohmann::ordered_json j;
  j["unet"] = unet;
  j["first_stage"] = fs;
  if (c.n_classes > 0) j["class_embedder"] = {{"n_classes", c.n_classes}, {"embed_dim", c.class_embed_dim}};
  j["schedule"] = {{"kind", "linear (sqrt-space)"},
                   {"linear_start", c.linear_start},
                   {"linear_end", c.linear_end},
                   {"timesteps", c.timesteps}};
  j["scale_factor"] = c.scale_factor;
  return j;
}

}  // namespace dmeval
