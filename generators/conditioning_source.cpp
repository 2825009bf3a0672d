#include "generators/conditioning_source.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>

#include "core/error.h"
#include "generators/philox.h"

namespace dmeval {

namespace {

constexpr const char* kForms = "none, class=C, per-class=N, uniform, uniform-runs=N";

class NoConditioning : public ConditioningSource {
 public:
  std::string describe() const override { return "none"; }
  bool empty() const override { return true; }
  Conditioning images(int64_t, int64_t) const override { return {}; }
};

// A class per image from a function of the image index.
class ClassConditioning : public ConditioningSource {
 public:
  ClassConditioning(std::string spec, std::function<int64_t(int64_t)> label)
      : spec_(std::move(spec)), label_(std::move(label)) {}
  std::string describe() const override { return spec_; }
  Conditioning images(int64_t first, int64_t count) const override {
    std::vector<int64_t> y(static_cast<size_t>(count));
    for (int64_t j = 0; j < count; ++j) y[static_cast<size_t>(j)] = label_(first + j);
    Conditioning c;
    c.class_labels = torch::tensor(y, torch::kLong);
    return c;
  }

 private:
  std::string spec_;
  std::function<int64_t(int64_t)> label_;
};

int64_t uniform_class(uint64_t seed, int64_t index, int64_t k) {
  const uint64_t i = static_cast<uint64_t>(index);
  const PhiloxCounter words =
      philox4x32_10({0u, 0xC1A55u, static_cast<uint32_t>(i), static_cast<uint32_t>(i >> 32)},
                    {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)});
  const uint64_t r = (static_cast<uint64_t>(words[1]) << 32) | words[0];
  return static_cast<int64_t>(r % static_cast<uint64_t>(k));
}

int64_t parse_count(const std::string& spec, const std::string& value) {
  size_t used = 0;
  int64_t v = -1;
  try {
    v = std::stoll(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  DMEVAL_CHECK(used == value.size() && !value.empty() && v >= 0,
               "--conditioning {}: '{}' is not a non-negative integer (forms: {})", spec, value, kForms);
  return v;
}

}  // namespace

std::unique_ptr<ConditioningSource> make_conditioning_source(const std::string& spec, uint64_t seed,
                                                             int64_t k) {
  if (spec == "none") {
    return std::make_unique<NoConditioning>();
  }
  const size_t eq = spec.find('=');
  const std::string kind = spec.substr(0, eq), value = eq == std::string::npos ? "" : spec.substr(eq + 1);
  const bool known = kind == "class" || kind == "per-class" || kind == "uniform" || kind == "uniform-runs";
  DMEVAL_CHECK(known, "--conditioning '{}' is not a conditioning source (forms: {})", spec, kForms);
  DMEVAL_CHECK(k > 0, "--conditioning {}: the model is not class-conditional (use none)", spec);
  if (kind == "uniform") {
    DMEVAL_CHECK(eq == std::string::npos, "--conditioning {}: uniform takes no value", spec);
    return std::make_unique<ClassConditioning>(fmt::format("uniform (seed {}, {} classes)", seed, k),
                                               [seed, k](int64_t i) { return uniform_class(seed, i, k); });
  }
  const int64_t n = parse_count(spec, value);
  if (kind == "class") {
    DMEVAL_CHECK(n < k, "--conditioning {}: the model has classes 0..{}", spec, k - 1);
    return std::make_unique<ClassConditioning>(spec, [n](int64_t) { return n; });
  }
  DMEVAL_CHECK(n >= 1, "--conditioning {}: needs at least one image per class or run", spec);
  if (kind == "per-class")
    return std::make_unique<ClassConditioning>(fmt::format("per-class={} ({} classes)", n, k),
                                               [n, k](int64_t i) { return (i / n) % k; });
  return std::make_unique<ClassConditioning>(
      fmt::format("uniform-runs={} (seed {}, {} classes)", n, seed, k),
      [seed, n, k](int64_t i) { return uniform_class(seed, i / n, k); });
}

std::string default_conditioning(const DiffusionModel& model) {
  if (model.num_classes() == 0 && model.conditioning().empty()) return "none";
  fail("model {} (family {}) is conditional ({}): choose how images are conditioned with --conditioning ({})",
       model.name(), model.family(), fmt::join(model.conditioning(), ", "), kForms);
}

}  // namespace dmeval
