// `fp`: the full-precision model, as a method so that tables and sweeps treat it like the others.
#include "core/error.h"
#include "generators/quant/quant_method.h"

namespace dmeval {

namespace {
class FpModel : public QuantizedModel {
 public:
  FpModel(std::shared_ptr<DiffusionModel> model, UNetRunOptions run)
      : QuantizedModel(run), model_(std::move(model)) {}
  EpsModel eps(const Conditioning& c = {}) override { return model_->eps(run_, c); }
  std::vector<std::pair<std::string, torch::Tensor>> state() override { return {}; }
  double weight_bits(const LayerInfo&) const override { return 32; }

 private:
  std::shared_ptr<DiffusionModel> model_;
};

class FpMethod : public QuantMethod {
 public:
  std::string name() const override { return "fp"; }
  std::string description() const override { return "full precision (float32), no quantization"; }
  void check_bits(const BitWidths& b) const override {
    DMEVAL_CHECK(!b.weight_quantized() && !b.act_quantized(),
                 "method fp is float32: --bits must be 32/32, not {}", b.str());
  }
  std::unique_ptr<QuantizedModel> calibrate(QuantContext& ctx) const override {
    return std::make_unique<FpModel>(ctx.model, ctx.run);
  }
  std::unique_ptr<QuantizedModel> restore(QuantContext& ctx,
                                          const std::map<std::string, torch::Tensor>&) const override {
    return calibrate(ctx);
  }
};
}  // namespace

std::unique_ptr<QuantMethod> make_fp_method() {
  return std::make_unique<FpMethod>();
}

}  // namespace dmeval
