#include "generators/quant/binarydm_training.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <filesystem>
#include <map>

#include "core/byte_source.h"
#include "core/checkpoint.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "core/torch_bridge.h"

namespace dmeval {

BnnStudent::BnnStudent(const DiffusionModel& fp, const BnnLayerSettings& s, uint64_t seed) : settings(s) {
  model = fp.clone();
  torch::nn::Module& net = model->network();
  plan = binarydm_plan(model->family(), list_layers(net), s.order2_groups);
  std::vector<LayerHandle> handles = layer_handles(net);
  torch::Generator gen = at::detail::createCPUGenerator(seed);
  for (size_t i = 0; i < handles.size(); ++i) {
    LayerHandle& h = handles[i];
    BnnLayerSpec spec;
    spec.order = plan.layers[i].order;
    spec.lsq_bits = s.lsq_bits;
    spec.act_bits = s.act_bits;
    spec.stays_full = plan.layers[i].stays_full;
    torch::nn::Module& m = h.conv ? static_cast<torch::nn::Module&>(*h.conv) : *h.linear;
    const int64_t out = h.conv ? h.conv->out_channels : h.linear->out_features;
    auto layer = std::make_shared<BnnLayer>(m, out, h.weight().dim(), spec, gen);
    DMEVAL_CHECK(!h.quantizer(), "layer {} already has a quantizer", h.name);
    h.quantizer() = layer;
    layers.push_back(layer);
  }
  if (s.attention_bits < 32)
    for (const AttentionHook& hook : model->attention_hooks()) {
      auto q = std::make_shared<BnnAttentionQuantizer>(module_at(net, hook.name), s.attention_bits);
      *hook.quantizer = q;
      attention.push_back(q);
    }
}

void BnnStudent::set_step(int64_t step) {
  for (size_t i = 0; i < layers.size(); ++i) {
    const BnnPlanEntry& e = plan.layers[i];
    layers[i]->full =
        e.stays_full || e.group < 0 || (settings.progressive && step < plan.switch_step(e.group));
  }
  for (auto& a : attention) a->on = !settings.progressive || step >= plan.attention_step();
}

void BnnStudent::set_final() {
  set_step(std::numeric_limits<int64_t>::max() / 2);
}

void BnnStudent::mark_inited_before(int64_t step) {
  for (size_t i = 0; i < layers.size(); ++i) {
    const BnnPlanEntry& e = plan.layers[i];
    if (e.stays_full || e.group < 0) continue;
    const int64_t first = settings.progressive ? plan.switch_step(e.group) : 0;
    layers[i]->set_inited(first < step);
  }
}

std::vector<std::pair<std::string, torch::Tensor>> BnnStudent::state() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : model->network().named_parameters(true)) out.emplace_back(p.key(), p.value().detach());
  return out;
}

void BnnStudent::load_state(const std::map<std::string, torch::Tensor>& state, const std::string& source) {
  auto params = model->network().named_parameters(true);
  torch::NoGradGuard no_grad;
  for (auto& p : params) {
    auto it = state.find(p.key());
    DMEVAL_CHECK(it != state.end(), "{}: no tensor '{}' (a binarized {} network)", source, p.key(),
                 model->family());
    DMEVAL_CHECK(it->second.sizes() == p.value().sizes(), "{}: '{}' has shape {}, the network's is {}",
                 source, p.key(), fmt::format("{}", it->second.sizes()),
                 fmt::format("{}", p.value().sizes()));
    p.value().copy_(it->second.to(p.value().dtype()));
  }
  for (const auto& [k, v] : state)
    DMEVAL_CHECK(params.contains(k) || k.rfind("lrm.", 0) == 0, "{}: '{}' is not a parameter of the network",
                 source, k);
}

double BnnStudent::weight_bits(const std::string& name) const {
  for (size_t i = 0; i < plan.layers.size(); ++i)
    if (plan.layers[i].name == name) {
      if (plan.layers[i].stays_full || plan.layers[i].group < 0) return 32;
      return settings.lsq_bits > 0 ? settings.lsq_bits : plan.layers[i].order;
    }
  fail("no layer '{}' in the binarized network", name);
}

torch::Tensor bnn_q_sample(const DiffusionSchedule& s, const torch::Tensor& x0, const torch::Tensor& t,
                           const torch::Tensor& noise) {
  // LDM register_schedule: alphas_cumprod = cumprod(1 - betas) in float64, sqrt in float64, stored float32.
  std::vector<float> a(s.betas_f64.size()), b(s.betas_f64.size());
  double cum = 1.0;
  for (size_t i = 0; i < s.betas_f64.size(); ++i) {
    cum *= 1.0 - s.betas_f64[i];
    a[i] = static_cast<float>(std::sqrt(cum));
    b[i] = static_cast<float>(std::sqrt(1.0 - cum));
  }
  torch::Tensor ta = torch::from_blob(a.data(), {static_cast<int64_t>(a.size())}, torch::kFloat32).clone();
  torch::Tensor tb = torch::from_blob(b.data(), {static_cast<int64_t>(b.size())}, torch::kFloat32).clone();
  torch::Tensor idx = t.to(torch::kLong).cpu();
  std::vector<int64_t> shape(static_cast<size_t>(x0.dim()), 1);
  shape[0] = x0.size(0);
  return ta.index_select(0, idx).view(shape).to(x0.device()) * x0 +
         tb.index_select(0, idx).view(shape).to(x0.device()) * noise;
}

namespace {

void write_named(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                 const std::map<std::string, std::string>& metadata) {
  std::vector<std::pair<std::string, TensorData>> data;
  for (const auto& [k, v] : tensors) data.emplace_back(k, from_torch(v.detach().contiguous()));
  save_atomically([&](const std::string& tmp) { write_safetensors(tmp, data, metadata); }, path);
}

std::map<std::string, torch::Tensor> read_named(const std::string& path,
                                                std::map<std::string, std::string>* meta) {
  Checkpoint ck = Checkpoint::open(path);
  std::map<std::string, torch::Tensor> out;
  for (const auto& e : ck.tensors()) out[e.path] = to_torch(ck.read(e.value));
  if (meta) *meta = parse_safetensors_header(FileSource(path)).metadata;
  return out;
}

class BnnTask : public TrainingTask {
 public:
  BnnTask(BnnStudent& student, BnnStudent& ema, DiffusionModel& teacher, const BnnBatchFn& batches,
          const BnnTrainOptions& o)
      : student_(student),
        ema_(ema),
        teacher_(teacher),
        batches_(batches),
        o_(o),
        sched_(teacher.schedule()) {}
  torch::nn::Module& model() override { return student_.model->network(); }
  torch::nn::Module* ema() override { return &ema_.model->network(); }
  torch::Tensor loss(int64_t step) override {
    student_.set_step(step);
    BnnBatch b = batches_(step);
    torch::Tensor xt = bnn_q_sample(sched_, b.x0, b.t, b.noise);
    std::vector<torch::Tensor> tf, sf;
    torch::Tensor eps;
    if (o_.lrm) {
      {
        torch::NoGradGuard no_grad;
        teacher_.forward_blocks(xt, b.t, b.c, &tf);
      }
      eps = student_.model->forward_blocks(xt, b.t, b.c, &sf);
    } else {
      eps = student_.model->forward(xt, b.t, b.c);
    }
    // LDM p_losses: per-image mean over (C, H, W), / exp(logvar = 0) + 0, mean over the batch.
    torch::Tensor simple = (eps - b.noise).square().mean({1, 2, 3}).mean();
    torch::Tensor loss = simple;
    last_ = {};
    last_.step = step;
    last_.loss_simple = simple.item<double>();
    if (o_.lrm) {
      if (lrm_.projections().empty()) torch::manual_seed(o_.pca_seed);
      torch::Tensor d = o_.lrm_weight * lrm_(sf, tf);
      last_.loss_lrm = d.item<double>();
      loss = loss + d;
    }
    last_.loss = loss.item<double>();
    for (size_t i = 0; i < student_.layers.size(); ++i)
      last_.binary_layers += student_.layers[i]->full ? 0 : 1;
    last_.attention_on = !student_.attention.empty() && student_.attention.front()->on;
    return loss;
  }
  void save(const std::string& dir, int64_t step) override {
    std::vector<std::pair<std::string, torch::Tensor>> s = student_.state();
    const auto& k = lrm_.projections();
    for (size_t i = 0; i < k.size(); ++i) s.emplace_back(fmt::format("lrm.K.{}", i), k[i]);
    const std::map<std::string, std::string> meta = {{"dmeval_train_step", std::to_string(step)}};
    write_named(dir + "/model.safetensors", s, meta);
    write_named(dir + "/ema.safetensors", ema_.state(), meta);
  }
  void load(const std::string& dir) override {
    std::map<std::string, std::string> meta;
    std::map<std::string, torch::Tensor> s = read_named(dir + "/model.safetensors", &meta);
    const int64_t step = std::stoll(meta.at("dmeval_train_step"));
    student_.load_state(s, dir + "/model.safetensors");
    ema_.load_state(read_named(dir + "/ema.safetensors", nullptr), dir + "/ema.safetensors");
    std::vector<torch::Tensor> k;
    for (size_t i = 0; s.count(fmt::format("lrm.K.{}", i)); ++i)
      k.push_back(s.at(fmt::format("lrm.K.{}", i)));
    lrm_.set_projections(std::move(k));
    student_.mark_inited_before(step);
    ema_.mark_inited_before(step);
  }
  nlohmann::ordered_json options() const override {
    nlohmann::ordered_json j = o_.record;
    j["lr"] = o_.lr;
    j["weight_decay"] = o_.weight_decay;
    j["ema"] = fmt::format("LitEma, decay min({}, (1+n)/(10+n))", o_.ema_max);
    j["lrm"] = o_.lrm ? nlohmann::ordered_json(o_.lrm_weight) : nlohmann::ordered_json(false);
    j["seed"] = o_.seed;
    j["pca_seed"] = o_.pca_seed;
    return j;
  }
  const BnnStepLog& last() const { return last_; }

 private:
  BnnStudent& student_;
  BnnStudent& ema_;
  DiffusionModel& teacher_;
  const BnnBatchFn& batches_;
  BnnTrainOptions o_;
  DiffusionSchedule sched_;
  LrmLoss lrm_;
  BnnStepLog last_;
};

}  // namespace

void train_binarydm(BnnStudent& student, BnnStudent& ema, DiffusionModel& teacher, const BnnBatchFn& batches,
                    const BnnTrainOptions& o, const std::string& dir,
                    const std::function<void(const BnnStepLog&)>& on_step) {
  DMEVAL_CHECK(o.steps >= 1, "BinaryDM training needs at least one step (got {})", o.steps);
  {
    // The teacher must be the student's float network: same layers, same shapes.
    const auto a = list_layers(teacher.network());
    const auto b = list_layers(student.model->network());
    DMEVAL_CHECK(a.size() == b.size(), "the teacher has {} layers, the student {}: not the same architecture",
                 a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i)
      DMEVAL_CHECK(
          a[i].name == b[i].name && a[i].weight_shape == b[i].weight_shape,
          "the teacher's layer {} ({}) differs from the student's {} ({}): not the same architecture",
          a[i].name, fmt::format("{}", fmt::join(a[i].weight_shape, "x")), b[i].name,
          fmt::format("{}", fmt::join(b[i].weight_shape, "x")));
  }
  teacher.network().eval();
  for (auto& p : teacher.network().parameters()) p.requires_grad_(false);
  TrainLoopOptions lo;
  lo.steps = o.steps;
  lo.lr = o.lr;
  lo.weight_decay = o.weight_decay;
  lo.grad_clip = 0;  // Lightning's default: none
  lo.warmup = 0;     // constant learning rate
  lo.ema_rate = o.ema_max;
  lo.ema_warmup = true;
  lo.seed = o.seed;
  lo.checkpoint_every = o.checkpoint_every;
  lo.log_every = o.log_every;
  BnnTask task(student, ema, teacher, batches, o);
  run_training(task, lo, dir, {}, [&](int64_t) {
    if (on_step) on_step(task.last());
  });
  student.set_final();
  ema.set_final();
  ema.mark_inited_before(std::numeric_limits<int64_t>::max() / 2);
}

}  // namespace dmeval
