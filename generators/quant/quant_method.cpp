#include "generators/quant/quant_method.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include "core/error.h"

namespace dmeval {

std::string BitWidths::str() const {
  return fmt::format("{}/{}", weight, act);
}

std::string BitWidths::label() const {
  if (!weight_quantized() && !act_quantized()) return "FP";
  return fmt::format("W{}A{}", weight, act);
}

BitWidths parse_bits(const std::string& spec) {
  if (spec == "fp" || spec == "FP") return {32, 32};
  auto number = [&](const std::string& s) {
    size_t used = 0;
    int v = -1;
    try {
      v = std::stoi(s, &used);
    } catch (const std::exception&) {
    }
    if (used != s.size() || v < 1 || v > 32)
      fail("--bits '{}' must be W/A with bit widths 1..32 (32 = float)", spec);
    return v;
  };
  const size_t slash = spec.find('/');
  if (slash == std::string::npos) return {number(spec), 32};
  return {number(spec.substr(0, slash)), number(spec.substr(slash + 1))};
}

namespace {
const std::vector<std::unique_ptr<QuantMethod>>& registry() {
  static const std::vector<std::unique_ptr<QuantMethod>> kMethods = [] {
    std::vector<std::unique_ptr<QuantMethod>> m;
    m.push_back(make_fp_method());
    m.push_back(make_baseline_method());
    m.push_back(make_qdiffusion_method());
    m.push_back(make_ptq4dm_method());
    m.push_back(make_ptqd_method());
    m.push_back(make_tinydm_method());
    m.push_back(make_tinydm_b1_method());
    m.push_back(make_tinydm_attn_method());
    m.push_back(make_binarydm_method());
    m.push_back(make_binary_baseline_method());
    m.push_back(make_lsq_method());
    return m;
  }();
  return kMethods;
}
}  // namespace

std::vector<std::string> quant_method_names() {
  std::vector<std::string> n;
  for (const auto& m : registry()) n.push_back(m->name());
  return n;
}

const QuantMethod& quant_method(const std::string& name) {
  for (const auto& m : registry())
    if (m->name() == name) return *m;
  fail("unknown method '{}': one of {}", name, fmt::join(quant_method_names(), ", "));
}

void check_method_bits(const QuantMethod& method, const BitWidths& bits) {
  try {
    method.check_bits(bits);
  } catch (const Error& e) {
    std::vector<std::string> can;
    for (const auto& m : registry()) {
      try {
        m->check_bits(bits);
        can.push_back(m->name());
      } catch (const Error&) {
      }
    }
    fail("{}; methods that support --bits {}: {}", e.what(), bits.str(),
         can.empty() ? std::string("none") : fmt::format("{}", fmt::join(can, ", ")));
  }
}

nlohmann::ordered_json merge_settings(const QuantMethod& method, const std::vector<std::string>& overrides) {
  nlohmann::ordered_json s = method.default_settings();
  for (const std::string& kv : overrides) {
    const size_t eq = kv.find('=');
    DMEVAL_CHECK(eq != std::string::npos && eq > 0, "--calib '{}' must be key=value", kv);
    const std::string key = kv.substr(0, eq), value = kv.substr(eq + 1);
    if (!s.contains(key)) {
      std::vector<std::string> keys;
      for (const auto& [k, v] : s.items()) keys.push_back(k);
      fail("method {} has no setting '{}' (its settings: {})", method.name(), key,
           keys.empty() ? std::string("none") : fmt::format("{}", fmt::join(keys, ", ")));
    }
    nlohmann::ordered_json& slot = s[key];
    try {
      if (slot.is_boolean()) {
        DMEVAL_CHECK(value == "true" || value == "false" || value == "1" || value == "0",
                     "--calib {}: '{}' is not a boolean", key, value);
        slot = value == "true" || value == "1";
      } else if (slot.is_number_integer()) {
        size_t used = 0;
        const long long v = std::stoll(value, &used);
        DMEVAL_CHECK(used == value.size(), "--calib {}: '{}' is not an integer", key, value);
        slot = v;
      } else if (slot.is_number()) {
        size_t used = 0;
        const double v = std::stod(value, &used);
        DMEVAL_CHECK(used == value.size(), "--calib {}: '{}' is not a number", key, value);
        slot = v;
      } else {
        slot = value;
      }
    } catch (const std::invalid_argument&) {
      fail("--calib {}: '{}' is not a valid value", key, value);
    } catch (const std::out_of_range&) {
      fail("--calib {}: '{}' is out of range", key, value);
    }
  }
  return s;
}

void QuantMethod::fit(QuantContext&, QuantizedModel&, const std::string&) const {
  fail("method {} has no fitting step (it is post-training)", name());
}

}  // namespace dmeval
