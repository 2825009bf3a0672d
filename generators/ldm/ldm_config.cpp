#include "generators/ldm/ldm_config.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
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
  return {"lsun_bedrooms-ldm-vq-4", "cin256-v2"};
}

LdmConfig resolve_ldm_config(const std::string& name) {
  if (name == "lsun_bedrooms-ldm-vq-4" || name == "cin256-v2") {
    LdmConfig c = ldm_config_from_json(nlohmann::json::parse(name == "cin256-v2" ? kCin256V2 : kLsunBedrooms),
                                       "preset " + name);
    c.name = name;
    c.dataset =
        name == "cin256-v2" ? "ImageNet 256x256, class-conditional (1000 classes)" : "LSUN-Bedrooms 256x256";
    return c;
  }
  std::ifstream in(name);
  DMEVAL_CHECK(in.good(), "'{}' is neither an LDM preset ({}) nor a readable config file", name,
               fmt::join(ldm_preset_names(), ", "));
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json tree;
  const bool json_file = name.size() > 5 && name.substr(name.size() - 5) == ".json";
  try {
    tree = json_file ? nlohmann::json::parse(ss.str()) : yaml_to_json(YAML::Load(ss.str()));
  } catch (const std::exception& e) {
    fail("{}: not a valid {} file: {}", name, json_file ? "JSON" : "YAML", e.what());
  }
  LdmConfig c = ldm_config_from_json(tree, name);
  c.name = name;
  return c;
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
