#include "harness/cli/option_table.h"

#include "core/error.h"

namespace dmeval::cli::option_detail {

namespace {
template <class... F>
struct Overload : F... {
  using F::operator()...;
};
template <class... F>
Overload(F...) -> Overload<F...>;
}  // namespace

void throw_option_error(const std::string& message) {
  throw Error(message);
}

std::string key_of_flags(const std::string& flags) {
  std::string first = flags.substr(0, flags.find(','));
  while (!first.empty() && first.front() == '-') first.erase(first.begin());
  for (char& c : first)
    if (c == '-') c = '_';
  return first;
}

CLI::Option* bind(CLI::App* cmd, const std::string& flags, OptionRef ref, const std::string& help,
                  const std::vector<std::string>& choices, bool show_default) {
  CLI::Option* opt = std::visit(Overload{[&](bool* p) { return cmd->add_flag(flags, *p, help); },
                                         [&](auto* p) { return cmd->add_option(flags, *p, help); }},
                                ref);
  if (!choices.empty()) opt->check(CLI::IsMember(choices));
  if (show_default && !std::holds_alternative<bool*>(ref)) opt->capture_default_str();
  return opt;
}

nlohmann::ordered_json to_json(OptionRef ref) {
  return std::visit([](auto* p) { return nlohmann::ordered_json(*p); }, ref);
}

std::string type_name(OptionRef ref) {
  return std::visit(Overload{[](int64_t*) { return std::string("an integer"); },
                             [](double*) { return std::string("a number"); },
                             [](bool*) { return std::string("true or false"); },
                             [](std::string*) { return std::string("a string"); },
                             [](std::vector<std::string>*) { return std::string("a list of strings"); }},
                    ref);
}

void from_json(const nlohmann::json& v, OptionRef ref, const std::string& where, const std::string& key) {
  auto wrong = [&] { fail("{}: option '{}' must be {}, not {}", where, key, type_name(ref), v.dump()); };
  std::visit(Overload{[&](int64_t* p) {
                        if (!v.is_number_integer()) wrong();
                        *p = v.get<int64_t>();
                      },
                      [&](double* p) {
                        if (!v.is_number()) wrong();
                        *p = v.get<double>();
                      },
                      [&](bool* p) {
                        if (!v.is_boolean()) wrong();
                        *p = v.get<bool>();
                      },
                      [&](std::string* p) {
                        if (!v.is_string()) wrong();
                        *p = v.get<std::string>();
                      },
                      [&](std::vector<std::string>* p) {
                        if (!v.is_array()) wrong();
                        for (const auto& x : v)
                          if (!x.is_string()) wrong();
                        *p = v.get<std::vector<std::string>>();
                      }},
             ref);
}

}  // namespace dmeval::cli::option_detail
