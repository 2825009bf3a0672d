// dmeval's error type. Every reader throws dmeval::Error with a message that names the file,
// the offset or key, and what was wrong, so a user can act on it without a debugger.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace dmeval {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws dmeval::Error with an fmt-formatted message.
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace dmeval

// Checks a condition on untrusted input; on failure throws dmeval::Error with the message.
#define DMEVAL_CHECK(cond, ...)               \
  do {                                        \
    if (!(cond)) ::dmeval::fail(__VA_ARGS__); \
  } while (0)
