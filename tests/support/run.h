// Runs the real dmeval binary (integration tests) and captures its output.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace dmeval::test {

struct RunResult {
  int exit_code = -1;
  std::string output;  // stdout (and stderr unless discarded)
};

// With stderr = false, stderr is discarded and `output` is stdout alone (for JSON parsing).
inline RunResult run_dmeval(const std::string& args, bool stderr = true) {
  std::string cmd = std::string(DMEVAL_BIN) + " " + args + (stderr ? " 2>&1" : " 2>/dev/null");
  RunResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace dmeval::test
