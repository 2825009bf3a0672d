// BRECQ-style reconstruction as q-diffusion (and PTQD) run it (spec generators.md §5.2, 6.1): the
// network is walked in module order; a layer outside any block is reconstructed alone, a ResnetBlock
// or AttnBlock as a unit. For each unit, inputs and full-precision outputs are cached from the
// calibration set (inputs from the quantized network when `asym`), then either the AdaRound logits
// of its weights are optimised (Adam, rounding regulariser with temperature decay, hard rounding
// afterwards) or its activation steps Δ are learned (Adam with cosine annealing).
//
// The block units are the ddim family's ResnetBlock and AttnBlock and any family's ReconBlocks
// (generators/layers.h: LDM's ResBlock and BasicTransformerBlock, with the transformer's attention
// quantizers); layers outside them are units of their own (LDM's AttentionBlock projections: q-diffusion
// descends into that unreplaced block).
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "generators/ddim/ddim_unet.h"
#include "generators/quant/calibration_data.h"
#include "generators/quant/quantized_unet.h"

namespace dmeval {

struct ReconUnit {
  enum class Kind { kLayer, kResnet, kAttention, kBlock };
  std::string name;
  Kind kind = Kind::kLayer;
  std::vector<std::pair<std::string, QuantLayer*>> layers;  // quantized layers inside, module order
  std::vector<QuantAttention*> attention;                   // attention quantizers inside
  Conv2dLayerImpl* conv = nullptr;
  LinearLayerImpl* linear = nullptr;
  ResnetBlockImpl* resnet = nullptr;
  AttnBlockImpl* attn = nullptr;
  ReconBlock* block = nullptr;
};

// q-diffusion's recursion order: temb.dense.0, temb.dense.1, conv_in, down.0.block.0, ...,
// down.i.downsample.conv, mid.block_1, mid.attn_1, mid.block_2, up..., conv_out.
std::vector<ReconUnit> reconstruction_units(QuantizedUNet& model);

struct ReconOptions {
  bool act_quant = false;  // false: AdaRound the weights; true: learn the activation steps
  int64_t iters = 20000;
  int64_t batch_size = 32;
  int64_t cache_batch = 8;     // forward batch when caching unit inputs/outputs
  double round_weight = 0.01;  // rounding regulariser weight
  double b_start = 20, b_end = 2, warmup = 0.2;
  double p = 2.0;           // lp_loss exponent (2.4 for activations in q-diffusion)
  double lr_weight = 1e-3;  // Adam default (q-diffusion does not set it for AdaRound)
  double lr_act = 4e-4;     // with cosine annealing to 0 over iters
  bool asym = true;         // inputs from the quantized network, targets from the FP one
  // q-diffusion regularises only each layer's first weight quantizer (not the split twin): quirk,
  // reproduced by default.
  bool regularise_split_twin = false;
  uint64_t seed = 0;
  int64_t cache_memory_limit = int64_t{1} << 30;
};

struct ReconReport {
  std::string unit;
  int64_t iters = 0, params = 0;
  double first_rec_loss = 0, last_rec_loss = 0;             // training minibatch losses
  double seconds = 0, cache_seconds = 0, iter_seconds = 0;  // total, caching, the optimisation loop
  // The unit's output error (lp_loss against the FP output over every cached sample) with the
  // quantizers as they were before (nearest rounding / initial steps) and after (hard AdaRound /
  // learned steps).
  double loss_before = 0, loss_after = 0;
};

ReconReport reconstruct(QuantizedUNet& model, ReconUnit& unit, const CalibSet& calib,
                        const ReconOptions& options);
// The report as a method's record: the unit, its error before/after under the given names
// ("nearest"/"adaround" for weights, "initial"/"learned" for activation steps) and the times.
nlohmann::ordered_json recon_record(const ReconReport& r, const char* before, const char* after);

}  // namespace dmeval
