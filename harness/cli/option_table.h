// Options declared once: a table of fields (key, command-line names, help, type, where they may
// come from) drives the command-line binding, the JSON round trip of a run's options and the
// profile files, so an option is written in one place. Tables compose: a command's table includes
// the model, quantization, sampler and generation groups through the member that holds them.
//
// Keys are the long flag without dashes, `-` as `_` (`--micro-batch` -> `micro_batch`); the same key
// names an option on the command line, in options.json and in a profile's "options".
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <functional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

namespace dmeval::cli {

using OptionRef = std::variant<int64_t*, double*, bool*, std::string*, std::vector<std::string>*>;

enum OptionTrait : unsigned {
  kSaved = 1,    // written to a run's options.json (what --resume continues with)
  kProfile = 2,  // a profile may set it
  kPath = 4,     // a file or folder: relative values in a profile are relative to the profile's folder
};
constexpr unsigned kDefaultTraits = kSaved | kProfile;

// The type-erased pieces every table shares (option_table.cpp).
namespace option_detail {
CLI::Option* bind(CLI::App* cmd, const std::string& flags, OptionRef ref, const std::string& help,
                  const std::vector<std::string>& choices, bool show_default);
nlohmann::ordered_json to_json(OptionRef ref);
// Sets the field from a JSON value of the field's type; throws naming `where` and `key` otherwise.
void from_json(const nlohmann::json& value, OptionRef ref, const std::string& where, const std::string& key);
std::string type_name(OptionRef ref);
std::string key_of_flags(const std::string& flags);
}  // namespace option_detail

template <class S>
struct OptionEntry {
  std::string key;    // options.json / profile key
  std::string flags;  // "--steps" (CLI11 names, comma-separated)
  std::string help;
  std::function<OptionRef(S&)> ref;
  unsigned traits = kDefaultTraits;
  std::vector<std::string> choices;  // empty: any value
  bool show_default = true;
  std::string long_flag() const { return flags.substr(0, flags.find(',')); }
};

template <class S>
class OptionTable {
 public:
  using Entry = OptionEntry<S>;

  template <class T>
  OptionTable& add(const std::string& flags, T S::*member, const std::string& help,
                   unsigned traits = kDefaultTraits, std::vector<std::string> choices = {},
                   bool show_default = true) {
    Entry e;
    e.key = option_detail::key_of_flags(flags);
    e.flags = flags;
    e.help = help;
    e.ref = [member](S& s) -> OptionRef { return &(s.*member); };
    e.traits = traits;
    e.choices = std::move(choices);
    e.show_default = show_default;
    return push(std::move(e));
  }

  // Every entry of `inner`, reached through `member`.
  template <class Inner>
  OptionTable& include(const OptionTable<Inner>& inner, Inner S::*member) {
    for (const auto& ie : inner.entries()) {
      Entry e;
      e.key = ie.key;
      e.flags = ie.flags;
      e.help = ie.help;
      e.ref = [member, r = ie.ref](S& s) -> OptionRef { return r(s.*member); };
      e.traits = ie.traits;
      e.choices = ie.choices;
      e.show_default = ie.show_default;
      push(std::move(e));
    }
    return *this;
  }

  // Every entry of the base class `Base` of S.
  template <class Base>
  OptionTable& include_base(const OptionTable<Base>& inner) {
    static_assert(std::is_base_of<Base, S>::value, "include_base needs a base class");
    for (const auto& ie : inner.entries()) {
      Entry e;
      e.key = ie.key;
      e.flags = ie.flags;
      e.help = ie.help;
      e.ref = [r = ie.ref](S& s) -> OptionRef { return r(static_cast<Base&>(s)); };
      e.traits = ie.traits;
      e.choices = ie.choices;
      e.show_default = ie.show_default;
      push(std::move(e));
    }
    return *this;
  }

  // Drops an entry (a command that sets the value itself).
  OptionTable& without(const std::string& key) {
    for (auto it = entries_.begin(); it != entries_.end(); ++it)
      if (it->key == key) {
        entries_.erase(it);
        return *this;
      }
    throw std::logic_error("option table: no key " + key);
  }
  // Changes an entry's traits (what a command saves or lets a profile set).
  OptionTable& traits(const std::string& key, unsigned t) {
    find_mutable(key).traits = t;
    return *this;
  }
  // Replaces an entry's help (the same option described for one command).
  OptionTable& help(const std::string& key, const std::string& text) {
    find_mutable(key).help = text;
    return *this;
  }

  const std::vector<Entry>& entries() const { return entries_; }
  const Entry* find(const std::string& key) const {
    for (const auto& e : entries_)
      if (e.key == key) return &e;
    return nullptr;
  }

  void bind(CLI::App* cmd, S& target) const {
    for (const auto& e : entries_)
      option_detail::bind(cmd, e.flags, e.ref(target), e.help, e.choices, e.show_default);
  }

  bool given(const CLI::App& cmd, const std::string& key) const {
    const Entry* e = find(key);
    return e && cmd.count(e->long_flag()) > 0;
  }

  nlohmann::ordered_json to_json(const S& s, unsigned traits = kSaved) const {
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    for (const auto& e : entries_)
      if (e.traits & traits) j[e.key] = option_detail::to_json(e.ref(const_cast<S&>(s)));
    return j;
  }

  // Sets the fields `j` names. Keys outside the table (or without `traits`) and values of the wrong
  // type are errors naming `where` and the key; with `require_all` every such entry must be present.
  void from_json(const nlohmann::json& j, S& s, const std::string& where, unsigned traits,
                 bool require_all = false) const {
    if (!j.is_object()) throw_error(where + ": expected a JSON object of options");
    for (auto it = j.begin(); it != j.end(); ++it) {
      const Entry* e = find(it.key());
      if (!e || !(e->traits & traits)) throw_error(unknown_key(where, it.key(), traits));
      option_detail::from_json(it.value(), e->ref(s), where, it.key());
      check_choice(*e, s, where);
    }
    if (require_all)
      for (const auto& e : entries_)
        if ((e.traits & traits) && !j.contains(e.key))
          throw_error(where + ": option '" + e.key + "' is missing");
  }

  // Copies the field `key` from `from` into `to`.
  void copy(const std::string& key, const S& from, S& to) const {
    const Entry* e = find(key);
    nlohmann::ordered_json v = option_detail::to_json(e->ref(const_cast<S&>(from)));
    option_detail::from_json(v, e->ref(to), "", key);
  }

 private:
  OptionTable& push(Entry e) {
    for (const auto& x : entries_)
      if (x.key == e.key) throw std::logic_error("option table: key declared twice: " + e.key);
    entries_.push_back(std::move(e));
    return *this;
  }
  Entry& find_mutable(const std::string& key) {
    for (auto& e : entries_)
      if (e.key == key) return e;
    throw std::logic_error("option table: no key " + key);
  }
  void check_choice(const Entry& e, S& s, const std::string& where) const {
    if (e.choices.empty()) return;
    const auto v = option_detail::to_json(e.ref(s));
    for (const auto& c : e.choices)
      if (v.is_string() && v == nlohmann::ordered_json(c)) return;
    std::string list;
    for (const auto& c : e.choices) list += (list.empty() ? "" : ", ") + c;
    throw_error(where + ": option '" + e.key + "' is " + v.dump() + "; it must be one of " + list);
  }
  std::string unknown_key(const std::string& where, const std::string& key, unsigned traits) const {
    std::string known;
    for (const auto& e : entries_)
      if (e.traits & traits) known += (known.empty() ? "" : ", ") + e.key;
    return where + ": unknown option '" + key + "' (known: " + known + ")";
  }
  [[noreturn]] static void throw_error(const std::string& message);

  std::vector<Entry> entries_;
};

namespace option_detail {
[[noreturn]] void throw_option_error(const std::string& message);
}
template <class S>
void OptionTable<S>::throw_error(const std::string& message) {
  option_detail::throw_option_error(message);
}

}  // namespace dmeval::cli
