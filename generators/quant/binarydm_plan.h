// Which layers BinaryDM binarizes, with which order and in which group of the progressive switch-on,
// per model family (spec binarydm.md §2, §4, §6.1), and the size/OPs accounting of the binarization
// papers (spec §9).
//
// ldm (openaimodel_ours.py): `middle` → group 4, order 1; `input_blocks.i` → group i // 3,
// `output_blocks.i` → group 3 − i // 3, order 2 in groups 0 and 1; time_embed.0/.2, the input conv
// and the output conv stay float. ddim (dmeval's construction — no CIFAR-10 code was published, spec
// §6.1): `down[l]` → group l (its downsample → l + 1), `up[l]` → group l, `mid` → the middle group
// (number of levels), order 2 on levels 0 and 1; the time MLP, conv_in and conv_out stay float.
// Groups switch on one per training batch from the middle (highest group) down; the attention
// quantizers at the batch after the last group.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

#include "generators/layers.h"

namespace dmeval {

struct BnnPlanEntry {
  std::string name;
  int group = -1;  // -1: none (a layer that stays float)
  int order = 1;
  bool stays_full = false;
};

struct BnnPlan {
  std::vector<BnnPlanEntry> layers;  // module order
  int groups = 0;                    // group ids 0 .. groups-1; group groups-1-s switches on at batch s
  bool construction = false;         // dmeval's mapping (no reference code for this family)
  std::string rule;                  // one line: the mapping used
  // The batch at which group g switches on, and the attention quantizers' batch.
  int64_t switch_step(int group) const { return groups - 1 - group; }
  int64_t attention_step() const { return groups; }
};

// `order2_groups`: the groups with two sign bases (BinaryDM: {0, 1}; the baseline: none).
BnnPlan binarydm_plan(const std::string& family, const std::vector<LayerInfo>& layers,
                      const std::vector<int>& order2_groups);

// The size and OPs figures (spec §9) with the formula behind each.
struct BnnCost {
  int64_t params = 0;  // every parameter of the float network
  int64_t binarized_weights = 0, order2_weights = 0, float_weights = 0, biases = 0, other = 0;
  int64_t scales_first = 0, scales_second = 0;  // out channels of binarized / order-2 layers
  int64_t macs_binarized = 0, macs_order2 = 0, macs_float = 0, macs_attention = 0;
  double fp32_mb() const;
  double size_mb() const;               // as the code trains: order-2 weights at 2 bits
  double size_single_basis_mb() const;  // every binarized weight at 1 bit (the v5 end state)
  // OPs = BOPs/64 + FLOPs, BOPs = bops_per_mac × binary MACs, attention and float layers as FLOPs.
  double ops(double bops_per_mac) const;
  double fp_ops() const;
  nlohmann::ordered_json to_json(int act_bits) const;
};
// MACs of one call of `forward` per Conv/Linear layer of `network` (module order), and of its
// attention matmuls; any quantizers attached are restored afterwards.
std::vector<std::pair<std::string, int64_t>> layer_macs(torch::nn::Module& network,
                                                        const std::function<void()>& forward,
                                                        int64_t* attention_macs);
// `macs_per_layer`: MACs of one forward at batch 1 per layer name; `attention_macs`: the two matmuls'.
BnnCost binarydm_cost(const torch::nn::Module& network, const BnnPlan& plan,
                      const std::vector<std::pair<std::string, int64_t>>& macs_per_layer,
                      int64_t attention_macs);

}  // namespace dmeval
