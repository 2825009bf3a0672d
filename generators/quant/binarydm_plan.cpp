#include "generators/quant/binarydm_plan.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <map>
#include <regex>

#include "core/error.h"
#include "generators/model_cost.h"

namespace dmeval {

namespace {

bool has(const std::vector<int>& v, int x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// openaimodel_ours.py's assignment by module name.
BnnPlan ldm_plan(const std::vector<LayerInfo>& layers, const std::vector<int>& order2) {
  BnnPlan p;
  p.groups = 5;
  p.rule =
      "openaimodel_ours.py: middle -> group 4; input_blocks.i -> i // 3; output_blocks.i -> 3 - i // 3; "
      "float: time_embed.0/.2, input_blocks.0.0, out.2";
  static const std::regex in_re(R"(^input_blocks\.(\d+)\.)"), out_re(R"(^output_blocks\.(\d+)\.)");
  for (const LayerInfo& l : layers) {
    BnnPlanEntry e{l.name};
    std::smatch m;
    if (l.name.find("middle") != std::string::npos) {
      e.group = 4;
    } else if (std::regex_search(l.name, m, in_re)) {
      e.group = std::stoi(m[1]) / 3;
    } else if (std::regex_search(l.name, m, out_re)) {
      e.group = 3 - std::stoi(m[1]) / 3;
    }
    DMEVAL_CHECK(e.group <= 4 && e.group >= -1,
                 "BinaryDM's LDM grouping (i // 3 over four levels) does not fit layer {} (group {})", l.name,
                 e.group);
    e.order = e.group >= 0 && has(order2, e.group) ? 2 : 1;
    p.layers.push_back(e);
  }
  // The reference forces bnn_modules[0, 1, 2, -1] (time_embed.0, time_embed.2, the input conv, the output
  // conv) back to float at every switch.
  DMEVAL_CHECK(p.layers.size() >= 4, "a UNet with {} layers", p.layers.size());
  for (size_t i : {size_t{0}, size_t{1}, size_t{2}, p.layers.size() - 1}) {
    p.layers[i].stays_full = true;
    p.layers[i].order = 2;  // the constructor's default, never used
  }
  return p;
}

// spec §6.1 on the ermongroup/ddim Model (dmeval's construction).
BnnPlan ddim_plan(const std::vector<LayerInfo>& layers, const std::vector<int>& order2) {
  BnnPlan p;
  p.construction = true;
  int levels = 0;
  static const std::regex down_re(R"(^down\.(\d+)\.)"), up_re(R"(^up\.(\d+)\.)");
  for (const LayerInfo& l : layers) {
    std::smatch m;
    if (std::regex_search(l.name, m, down_re)) levels = std::max(levels, std::stoi(m[1]) + 1);
  }
  p.groups = levels + 1;
  p.rule = fmt::format(
      "down[l] -> group l (downsample -> l + 1), up[l] -> l, mid -> {}; order 2 in groups 0-1; float: "
      "temb.dense, "
      "conv_in, conv_out",
      levels);
  for (const LayerInfo& l : layers) {
    BnnPlanEntry e{l.name};
    std::smatch m;
    if (l.role == LayerRole::kTimestepMlp || l.role == LayerRole::kFirstConv ||
        l.role == LayerRole::kLastConv) {
      e.stays_full = true;
    } else if (l.name.rfind("mid.", 0) == 0) {
      e.group = levels;
    } else if (std::regex_search(l.name, m, down_re)) {
      e.group = std::stoi(m[1]) + (l.name.find(".downsample.") != std::string::npos ? 1 : 0);
    } else if (std::regex_search(l.name, m, up_re)) {
      e.group = std::stoi(m[1]);
    } else {
      fail("BinaryDM's ddim mapping has no group for layer {}", l.name);
    }
    e.order = e.group >= 0 && has(order2, e.group) ? 2 : 1;
    if (e.stays_full) e.order = 2;  // the constructor's default, never used
    p.layers.push_back(e);
  }
  return p;
}

}  // namespace

BnnPlan binarydm_plan(const std::string& family, const std::vector<LayerInfo>& layers,
                      const std::vector<int>& order2_groups) {
  if (family == "ldm") return ldm_plan(layers, order2_groups);
  if (family == "ddim-unet") return ddim_plan(layers, order2_groups);
  fail("BinaryDM has no layer grouping for the {} family (it has: ldm, ddim-unet)", family);
}

namespace {
// Counts one layer's MACs and calls the layer's previous quantizer (or the float op).
class MacProbe : public LayerQuantizer {
 public:
  MacProbe(std::shared_ptr<LayerQuantizer> inner, int64_t per_output, int64_t* out)
      : inner_(std::move(inner)), per_output_(per_output), out_(out) {}
  torch::Tensor forward(const torch::Tensor& x, const LayerCall& call) override {
    torch::Tensor y = inner_ ? inner_->forward(x, call) : call.op(x, call.weight, call.bias);
    *out_ += y.numel() * per_output_;
    return y;
  }

 private:
  std::shared_ptr<LayerQuantizer> inner_;
  int64_t per_output_;
  int64_t* out_;
};
}  // namespace

std::vector<std::pair<std::string, int64_t>> layer_macs(torch::nn::Module& network,
                                                        const std::function<void()>& forward,
                                                        int64_t* attention_macs) {
  std::vector<LayerHandle> handles = layer_handles(network);
  const std::vector<LayerInfo> infos = list_layers(network);
  std::vector<std::pair<std::string, int64_t>> out;
  for (const LayerInfo& l : infos) out.emplace_back(l.name, 0);
  std::vector<std::shared_ptr<LayerQuantizer>> saved;
  for (size_t i = 0; i < handles.size(); ++i) {
    saved.push_back(handles[i].quantizer());
    handles[i].quantizer() =
        std::make_shared<MacProbe>(saved.back(), infos[i].macs_per_output, &out[i].second);
  }
  MacCount total;
  try {
    total = count_macs(forward);
  } catch (...) {
    for (size_t i = 0; i < handles.size(); ++i) handles[i].quantizer() = saved[i];
    throw;
  }
  for (size_t i = 0; i < handles.size(); ++i) handles[i].quantizer() = saved[i];
  if (attention_macs) *attention_macs = total.attention;
  return out;
}

BnnCost binarydm_cost(const torch::nn::Module& network, const BnnPlan& plan,
                      const std::vector<std::pair<std::string, int64_t>>& macs_per_layer,
                      int64_t attention_macs) {
  BnnCost c;
  const std::vector<LayerInfo> infos = list_layers(network);
  DMEVAL_CHECK(infos.size() == plan.layers.size(), "the plan has {} layers, the network {}",
               plan.layers.size(), infos.size());
  std::map<std::string, int64_t> macs(macs_per_layer.begin(), macs_per_layer.end());
  int64_t layer_params = 0;
  for (size_t i = 0; i < infos.size(); ++i) {
    const LayerInfo& l = infos[i];
    const BnnPlanEntry& e = plan.layers[i];
    int64_t w = 1;
    for (int64_t d : l.weight_shape) w *= d;
    const int64_t m = macs.count(l.name) ? macs.at(l.name) : 0;
    layer_params += w;
    if (e.stays_full) {
      c.float_weights += w;
      c.macs_float += m;
    } else {
      c.binarized_weights += w;
      c.macs_binarized += m;
      c.scales_first += l.out_channels;
      if (e.order == 2) c.order2_weights += w, c.macs_order2 += m, c.scales_second += l.out_channels;
    }
  }
  // Parameters: every float parameter of the network except dmeval's own quantizer tensors.
  for (const auto& p : network.named_parameters(true)) {
    const std::string& k = p.key();
    if (k.find("scaling_") != std::string::npos || k.find(".alpha") != std::string::npos ||
        k.find("weight_step") != std::string::npos)
      continue;
    c.params += p.value().numel();
  }
  const ParameterCounts counts = count_parameters(network);
  c.biases = counts.layer_biases;
  c.other = c.params - layer_params - c.biases;
  c.macs_attention = attention_macs;
  return c;
}

double BnnCost::fp32_mb() const {
  return 4.0 * static_cast<double>(params) / 1e6;
}
double BnnCost::size_mb() const {
  return (static_cast<double>(binarized_weights + order2_weights) / 8.0 +
          4.0 * static_cast<double>(float_weights + biases + other + scales_first + scales_second)) /
         1e6;
}
double BnnCost::size_single_basis_mb() const {
  return (static_cast<double>(binarized_weights) / 8.0 +
          4.0 * static_cast<double>(float_weights + biases + other + scales_first)) /
         1e6;
}
double BnnCost::ops(double bops_per_mac) const {
  return bops_per_mac * static_cast<double>(macs_binarized) / 64.0 +
         static_cast<double>(macs_float + macs_attention);
}
double BnnCost::fp_ops() const {
  return static_cast<double>(macs_binarized + macs_float + macs_attention);
}

nlohmann::ordered_json BnnCost::to_json(int act_bits) const {
  nlohmann::ordered_json j;
  j["params"] = params;
  j["binarized_weights"] = binarized_weights;
  j["order2_weights"] = order2_weights;
  j["float_weights"] = float_weights;
  j["scales"] = {{"first", scales_first}, {"second", scales_second}};
  j["fp32_mb"] = fp32_mb();
  j["size_mb"] = size_mb();
  j["size_formula"] =
      "binarized weights at 1 bit (order-2 layers 2 bits) + float weights, biases, norms and scales at 32 "
      "bits, "
      "MB = 1e6 bytes";
  j["size_single_basis_mb"] = size_single_basis_mb();
  j["macs"] = {{"binarized", macs_binarized},
               {"order2", macs_order2},
               {"float", macs_float},
               {"attention", macs_attention}};
  j["fp_ops_g"] = fp_ops() / 1e9;
  j["ops_g"] = ops(1) / 1e9;
  j["ops_formula"] = "OPs = BOPs/64 + FLOPs, BOPs = binary MACs, float layers and attention matmuls as FLOPs";
  if (act_bits < 32) {
    j["ops_bitprod_g"] = ops(act_bits) / 1e9;
    j["ops_bitprod_formula"] = fmt::format(
        "OPs = BOPs/64 + FLOPs, BOPs = {} x binary MACs (W1A{} bit products)", act_bits, act_bits);
  }
  return j;
}

}  // namespace dmeval
