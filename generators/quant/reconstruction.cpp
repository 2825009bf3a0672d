#include "generators/quant/reconstruction.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>

#include "core/error.h"
#include "generators/quant/tensor_cache.h"

namespace dmeval {

namespace {

void collect(torch::nn::Module& m, const std::string& prefix, QuantizedUNet& model,
             std::map<std::string, std::pair<std::string, QuantLayer*>>& layer_of,
             std::vector<ReconUnit>& out) {
  for (const auto& child : m.named_children()) {
    const std::string name = prefix.empty() ? child.key() : prefix + "." + child.key();
    torch::nn::Module* c = child.value().get();
    ReconUnit u;
    u.name = name;
    if (auto* conv = dynamic_cast<Conv2dLayerImpl*>(c)) {
      u.kind = ReconUnit::Kind::kLayer;
      u.conv = conv;
    } else if (auto* lin = dynamic_cast<LinearLayerImpl*>(c)) {
      u.kind = ReconUnit::Kind::kLayer;
      u.linear = lin;
    } else if (auto* rb = dynamic_cast<ResnetBlockImpl*>(c)) {
      u.kind = ReconUnit::Kind::kResnet;
      u.resnet = rb;
    } else if (auto* ab = dynamic_cast<AttnBlockImpl*>(c)) {
      u.kind = ReconUnit::Kind::kAttention;
      u.attn = ab;
      for (auto& [n, q] : model.attention())
        if (n == name) u.attention.push_back(q.get());
    } else if (auto* blk = dynamic_cast<ReconBlock*>(c)) {
      u.kind = ReconUnit::Kind::kBlock;
      u.block = blk;
      for (auto& [n, q] : model.attention())
        if (n.rfind(name + ".", 0) == 0) u.attention.push_back(q.get());
    } else {
      collect(*c, name, model, layer_of, out);
      continue;
    }
    for (auto& [lname, entry] : layer_of)
      if (lname == name || lname.rfind(name + ".", 0) == 0) u.layers.push_back(entry);
    std::sort(u.layers.begin(), u.layers.end(), [&](const auto& a, const auto& b) {
      return std::find_if(model.layers().begin(), model.layers().end(),
                          [&](auto& l) { return l.first == a.first; }) <
             std::find_if(
                 model.layers().begin(), model.layers().end(), [&](auto& l) { return l.first == b.first; });
    });
    if (!u.layers.empty() || !u.attention.empty()) out.push_back(std::move(u));
  }
}

void set_unit_state(ReconUnit& u, bool weight, bool act) {
  for (auto& [n, q] : u.layers) {
    q->use_weight_quant = weight;
    q->use_act_quant = act;
  }
  for (QuantAttention* a : u.attention) a->use_act_quant = act;
}

torch::Tensor run_unit(ReconUnit& u, const std::vector<torch::Tensor>& in) {
  switch (u.kind) {
    case ReconUnit::Kind::kLayer: return u.conv ? u.conv->forward(in[0]) : u.linear->forward(in[0]);
    case ReconUnit::Kind::kResnet: return u.resnet->forward(in[0], in[1], 0);
    case ReconUnit::Kind::kAttention: return u.attn->forward(in[0]);
    case ReconUnit::Kind::kBlock: return u.block->run(in);
  }
  return {};
}

// Runs the network on x/t until the unit has run; `want_output` also captures its output.
void capture(QuantizedUNet& model, ReconUnit& u, const CalibSet& batch, bool want_output,
             std::vector<torch::Tensor>& inputs, torch::Tensor& output) {
  auto grab = [&](std::vector<torch::Tensor> in, const torch::Tensor& out) {
    inputs = std::move(in);
    if (want_output) output = out.detach();
    throw StopForward{};
  };
  switch (u.kind) {
    case ReconUnit::Kind::kLayer: {
      QuantLayer* q = u.layers.at(0).second;
      q->probe = [&](const torch::Tensor& x, const torch::Tensor& out) { grab({x.detach()}, out); };
      break;
    }
    case ReconUnit::Kind::kResnet:
      u.resnet->probe = [&](const torch::Tensor& x, const torch::Tensor& temb, const torch::Tensor& out) {
        grab({x.detach(), temb.detach()}, out);
      };
      break;
    case ReconUnit::Kind::kAttention:
      u.attn->probe = [&](const torch::Tensor& x, const torch::Tensor& out) { grab({x.detach()}, out); };
      break;
    case ReconUnit::Kind::kBlock:
      u.block->probe = [&](const std::vector<torch::Tensor>& in, const torch::Tensor& out) {
        std::vector<torch::Tensor> detached;
        for (const auto& t : in) detached.push_back(t.detach());
        grab(std::move(detached), out);
      };
      break;
  }
  try {
    model.forward(batch.x, batch.t, batch.cond());
  } catch (const StopForward&) {
  }
  if (u.kind == ReconUnit::Kind::kLayer) u.layers.at(0).second->probe = nullptr;
  if (u.resnet) u.resnet->probe = nullptr;
  if (u.attn) u.attn->probe = nullptr;
  if (u.block) u.block->probe = nullptr;
  DMEVAL_CHECK(!inputs.empty(), "unit {} was not reached by the forward pass", u.name);
}

}  // namespace

std::vector<ReconUnit> reconstruction_units(QuantizedUNet& model) {
  std::map<std::string, std::pair<std::string, QuantLayer*>> layer_of;
  for (auto& [n, q] : model.layers()) layer_of[n] = {n, q.get()};
  std::vector<ReconUnit> out;
  collect(model.network(), "", model, layer_of, out);
  return out;
}

ReconReport reconstruct(QuantizedUNet& model, ReconUnit& unit, const CalibSet& calib, const ReconOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  ReconReport report;
  report.unit = unit.name;
  DMEVAL_CHECK(calib.size() >= 1, "no calibration data");
  DMEVAL_CHECK(torch::isfinite(calib.x).all().item<bool>(), "the calibration data for {} holds NaN or Inf",
               unit.name);
  for (auto& p : model.network().parameters()) p.set_requires_grad(false);

  // 1. Cache the unit's inputs and full-precision outputs.
  std::vector<TensorCache> in_cache;
  TensorCache out_cache(o.cache_memory_limit);
  {
    torch::NoGradGuard no_grad;
    // The reference caches int(N / batch) batches (the remainder is dropped); at least one here.
    const int64_t batches = std::max<int64_t>(1, calib.size() / o.cache_batch);
    for (int64_t bi = 0; bi < batches; ++bi) {
      const int64_t b = bi * o.cache_batch;
      CalibSet batch = calib.slice(b, b + o.cache_batch);
      std::vector<torch::Tensor> inputs;
      torch::Tensor output;
      model.set_quant_state(false, false);
      capture(model, unit, batch, true, inputs, output);
      if (o.asym) {
        model.set_quant_state(true, o.act_quant);
        torch::Tensor unused;
        capture(model, unit, batch, false, inputs, unused);
      }
      if (in_cache.empty())
        for (size_t i = 0; i < inputs.size(); ++i) in_cache.emplace_back(o.cache_memory_limit);
      for (size_t i = 0; i < inputs.size(); ++i) in_cache[i].append(inputs[i]);
      out_cache.append(output);
    }
    model.set_quant_state(false, false);
    set_unit_state(unit, true, o.act_quant);
  }

  report.cache_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // The unit's error over the whole cache, in batches.
  auto full_loss = [&]() {
    torch::NoGradGuard no_grad;
    double total = 0;
    int64_t count = 0;
    const int64_t rows = out_cache.rows();
    for (int64_t b = 0; b < rows; b += 64) {
      torch::Tensor idx = torch::arange(b, std::min(rows, b + 64), torch::kLong);
      std::vector<torch::Tensor> in;
      for (auto& c : in_cache) in.push_back(c.gather(idx).to(calib.x.device()));
      torch::Tensor out = run_unit(unit, in);
      total += lp_loss(out, out_cache.gather(idx).to(out.device()), o.p, false).item<double>() *
               static_cast<double>(idx.numel());
      count += idx.numel();
    }
    return count ? total / static_cast<double>(count) : 0.0;
  };
  report.loss_before = full_loss();

  // 2. What is optimised.
  std::vector<torch::Tensor> params;
  std::vector<AdaRoundQuantizer*> regularised, all_ada;
  if (!o.act_quant) {
    for (auto& [n, q] : unit.layers) {
      auto convert = [&](WeightQuantizerSlot& slot, const torch::Tensor& weight_part, bool regularise) {
        if (!slot.defined()) return;
        if (!slot.adaround) slot.adaround = std::make_unique<AdaRoundQuantizer>(*slot.uniform, weight_part);
        slot.adaround->soft = true;
        slot.adaround->alpha().requires_grad_(true);
        params.push_back(slot.adaround->alpha());
        all_ada.push_back(slot.adaround.get());
        if (regularise) regularised.push_back(slot.adaround.get());
      };
      // the layer's float weight, found through the model's layer handles
      torch::Tensor weight;
      for (auto& h : layer_handles(model.network()))
        if (h.name == n) weight = h.weight();
      if (q->split != 0) {
        convert(q->weight, weight.slice(1, 0, q->split), true);
        convert(q->weight_0, weight.slice(1, q->split), o.regularise_split_twin);
      } else {
        convert(q->weight, weight, true);
      }
    }
  } else {
    for (QuantAttention* a : unit.attention) {
      params.push_back(a->act_q->learnable_delta());
      params.push_back(a->act_k->learnable_delta());
      params.push_back(a->act_v->learnable_delta());
      if (a->act_w->spec().bits != 16) params.push_back(a->act_w->learnable_delta());
    }
    for (auto& [n, q] : unit.layers) {
      if (q->act && q->act->delta().defined()) params.push_back(q->act->learnable_delta());
      if (q->act_0 && q->act_0->delta().defined()) params.push_back(q->act_0->learnable_delta());
    }
  }
  report.params = static_cast<int64_t>(params.size());
  if (params.empty() || o.iters <= 0) {
    for (AdaRoundQuantizer* a : all_ada) a->soft = false;
    report.loss_after = full_loss();
    return report;
  }

  // 3. Optimise.
  const double lr = o.act_quant ? o.lr_act : o.lr_weight;
  torch::optim::Adam opt(params, torch::optim::AdamOptions(lr));
  AdaRoundLoss loss_fn;
  loss_fn.weight = o.round_weight;
  loss_fn.max_count = o.iters;
  loss_fn.b_start = o.b_start;
  loss_fn.b_end = o.b_end;
  loss_fn.warmup = o.warmup;
  loss_fn.p = o.p;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  const int64_t n = out_cache.rows();
  const auto t_iter = std::chrono::steady_clock::now();
  torch::AutoGradMode grad(true);
  for (int64_t i = 0; i < o.iters; ++i) {
    torch::Tensor idx = torch::randperm(n, gen, torch::kLong).slice(0, 0, o.batch_size);
    std::vector<torch::Tensor> in;
    for (auto& c : in_cache) in.push_back(c.gather(idx).to(calib.x.device()));
    torch::Tensor target = out_cache.gather(idx).to(calib.x.device());
    opt.zero_grad();
    torch::Tensor out = run_unit(unit, in);
    torch::Tensor rec = lp_loss(out, target, o.p, /*reduce_all=*/false);
    torch::Tensor loss = rec;
    const int64_t count = i + 1;
    if (!o.act_quant && static_cast<double>(count) >= static_cast<double>(o.iters) * o.warmup) {
      const double b = loss_fn.temperature(count);
      for (AdaRoundQuantizer* a : regularised)
        loss = loss + o.round_weight * (1 - ((a->soft_targets() - .5).abs() * 2).pow(b)).sum();
    }
    loss.backward();
    opt.step();
    if (o.act_quant) {  // CosineAnnealingLR(T_max = iters, eta_min = 0), closed form
      const double lr_i =
          lr * (1 + std::cos(M_PI * static_cast<double>(count) / static_cast<double>(o.iters))) / 2;
      for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamOptions&>(g.options()).lr(lr_i);
    }
    const double r = rec.item<double>();
    DMEVAL_CHECK(
        std::isfinite(r) && std::isfinite(loss.item<double>()),
        "reconstruction of {} diverged at iteration {} of {}: the loss is {} (learning rate too high, or "
        "NaN/Inf in the calibration data or the model?)",
        unit.name, i + 1, o.iters, r);
    if (i == 0) report.first_rec_loss = r;
    report.last_rec_loss = r;
  }
  report.iters = o.iters;
  report.iter_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_iter).count();
  for (AdaRoundQuantizer* a : all_ada) a->soft = false;
  // Learned steps stay leaves without grad afterwards.
  for (auto& p : params) p.set_requires_grad(false);
  report.loss_after = full_loss();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

nlohmann::ordered_json recon_record(const ReconReport& r, const char* before, const char* after) {
  return {{"unit", r.unit}, {before, r.loss_before},      {after, r.loss_after},
          {"s", r.seconds}, {"cache_s", r.cache_seconds}, {"iter_s", r.iter_seconds}};
}

}  // namespace dmeval
