// `dmeval model-info`: a UNet's parameters, layers, MACs per step and its size in MB under each
// storage convention at each weight bit width (the papers' "Size (MB)" column, spec §7).
#include <fmt/format.h>
#include <torch/torch.h>

#include <cstdio>
#include <optional>

#include "core/error.h"
#include "generators/model_cost.h"
#include "generators/quant/binarydm_plan.h"
#include "harness/cli/commands.h"
#include "harness/cli/model_cli.h"

namespace dmeval::cli {

void add_model_info_command(CLI::App& app) {
  struct Opts {
    ModelOptions model;
    bool json = false, layers = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("model-info", "parameters, MACs and size (MB) per bit width of a UNet");
  add_model_options(cmd, o->model);
  cmd->add_flag("--layers", o->layers, "list every Conv2d/Linear with its role");
  cmd->add_flag("--json", o->json, "print JSON");
  cmd->callback([o] {
    ModelOptions mo = o->model;
    if (mo.checkpoint.empty() && mo.random_weights < 0) mo.random_weights = 0;  // shapes only
    LoadedModel m = load_model(mo);
    const ParameterCounts c = count_parameters(m.model->network());
    const std::vector<int64_t> shape = m.model->sample_shape();
    UNetRunOptions one;
    one.micro_batch = 1;
    EpsModel eps = m.model->eps(one);
    auto forward = [&] { eps(torch::zeros({1, shape[0], shape[1], shape[2]}), torch::full({1}, 500.0f), 0); };
    const MacCount macs = count_macs(forward);
    nlohmann::ordered_json j;
    j["model"] = m.describe();
    j["params"] = c.total;
    j["layer_weights"] = c.layer_weights;
    j["layer_biases"] = c.layer_biases;
    j["other_params"] = c.other;
    j["layers"] = c.num_layers;
    j["gmacs_per_step"] = static_cast<double>(macs.total()) / 1e9;
    j["gmacs_attention"] = static_cast<double>(macs.attention) / 1e9;
    j["size_mb"] = nlohmann::ordered_json::object();
    const std::vector<double> bits = {32, 16, 8, 6, 4, 2, 1};
    for (SizeConvention conv : size_conventions()) {
      nlohmann::ordered_json row;
      for (double b : bits) row[fmt::format("W{}", b)] = model_size_bytes(c, b, conv) / 1e6;
      j["size_mb"][size_convention_name(conv)] = row;
    }
    j["size_mb_note"] = "1 MB = 1e6 bytes; add channelwise scale overhead: fp32 delta + fp32 zero point = " +
                        fmt::format("{:.3f} MB, fp32 delta + int8 zero point = {:.3f} MB",
                                    (model_size_bytes(c, 8, SizeConvention::kWeightsAtBitsRestFp32,
                                                      ScaleOverhead::kFp32DeltaFp32Zero) -
                                     model_size_bytes(c, 8, SizeConvention::kWeightsAtBitsRestFp32)) /
                                        1e6,
                                    (model_size_bytes(c, 8, SizeConvention::kWeightsAtBitsRestFp32,
                                                      ScaleOverhead::kFp32DeltaInt8Zero) -
                                     model_size_bytes(c, 8, SizeConvention::kWeightsAtBitsRestFp32)) /
                                        1e6);
    // BinaryDM's accounting (spec binarydm.md §9) for the families it has a layer plan for.
    std::optional<BnnCost> bnn;
    try {
      const BnnPlan plan = binarydm_plan(m.model->family(), list_layers(m.model->network()), {0, 1});
      int64_t attention = 0;
      const auto per_layer = layer_macs(m.model->network(), forward, &attention);
      bnn = binarydm_cost(m.model->network(), plan, per_layer, attention);
      nlohmann::ordered_json b = bnn->to_json(4);
      b["layer_plan"] = plan.rule;
      if (plan.construction) b["construction"] = "dmeval's construction (spec binarydm.md §6.1)";
      j["binarydm"] = b;
    } catch (const Error&) {
      // no BinaryDM plan for this family
    }
    if (o->layers) {
      j["layer_list"] = nlohmann::ordered_json::array();
      for (const LayerInfo& l : list_layers(m.model->network()))
        j["layer_list"].push_back({{"name", l.name},
                                   {"type", l.type},
                                   {"role", layer_role_name(l.role)},
                                   {"weight_shape", l.weight_shape}});
    }
    if (o->json) {
      std::printf("%s\n", j.dump(1).c_str());
      return;
    }
    std::printf(
        "%s\n%lld parameters (%lld Conv/Linear weights in %lld layers, %lld biases, %lld others)\n"
        "%.3f GMACs per UNet step (%.3f in attention)\n\nSize (MB = 1e6 bytes) by weight bits:\n",
        m.model->describe_line().c_str(), static_cast<long long>(c.total),
        static_cast<long long>(c.layer_weights), static_cast<long long>(c.num_layers),
        static_cast<long long>(c.layer_biases), static_cast<long long>(c.other),
        j["gmacs_per_step"].get<double>(), j["gmacs_attention"].get<double>());
    std::printf("%-38s", "convention");
    for (double b : bits) std::printf("%9s", fmt::format("W{}", b).c_str());
    std::printf("\n");
    for (SizeConvention conv : size_conventions()) {
      std::printf("%-38s", size_convention_name(conv));
      for (double b : bits) std::printf("%9.2f", model_size_bytes(c, b, conv) / 1e6);
      std::printf("\n");
    }
    std::printf("(%s)\n", j["size_mb_note"].get<std::string>().c_str());
    if (bnn) {
      const BnnCost& b = *bnn;
      std::printf(
          "\nBinaryDM accounting (spec binarydm.md §9; %s%s):\n"
          "  fp32                                   %10.2f MB   %8.2f GOPs\n"
          "  W1, order-2 layers at 2 bits (v1 code)  %10.2f MB (%5.1fx)\n"
          "  W1, single basis (v5 end state)         %10.2f MB (%5.1fx)\n"
          "  OPs, BOPs = binary MACs                 %10.2f G  (%5.1fx)\n"
          "  OPs, BOPs = 4 x binary MACs (W1A4)      %10.2f G  (%5.1fx)\n"
          "  (size: binarized weights at 1 bit, order-2 at 2, all else fp32 incl. scales; OPs = BOPs/64 + "
          "FLOPs, "
          "attention matmuls and float layers as FLOPs; %lld binarized weights, %lld in order-2 layers)\n",
          j["binarydm"]["layer_plan"].get<std::string>().c_str(),
          j["binarydm"].contains("construction") ? ", dmeval's construction" : "", b.fp32_mb(),
          b.fp_ops() / 1e9, b.size_mb(), b.fp32_mb() / b.size_mb(), b.size_single_basis_mb(),
          b.fp32_mb() / b.size_single_basis_mb(), b.ops(1) / 1e9, b.fp_ops() / b.ops(1), b.ops(4) / 1e9,
          b.fp_ops() / b.ops(4), static_cast<long long>(b.binarized_weights),
          static_cast<long long>(b.order2_weights));
    }
    if (o->layers)
      for (const LayerInfo& l : list_layers(m.model->network()))
        std::printf("  %-32s %-7s %-22s [%s]\n", l.name.c_str(), l.type.c_str(), layer_role_name(l.role),
                    fmt::format("{}", fmt::join(l.weight_shape, ", ")).c_str());
  });
}

}  // namespace dmeval::cli
