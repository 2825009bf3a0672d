// Runs the real dmeval binary (integration tests) and captures its output.
#pragma once

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace dmeval::test {

struct RunResult {
  int exit_code = -1;
  std::string output;  // stdout (and stderr unless discarded)
};

// Runs a shell command line and captures its stdout.
inline RunResult run_dmeval_cmd(const std::string& cmd) {
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

// With stderr = false, stderr is discarded and `output` is stdout alone (for JSON parsing).
inline RunResult run_dmeval(const std::string& args, bool stderr = true) {
  return run_dmeval_cmd(std::string(DMEVAL_BIN) + " " + args + (stderr ? " 2>&1" : " 2>/dev/null"));
}

// dmeval under `env ENV_ARGS` (e.g. "-u DMEVAL_WEIGHTS HOME=/tmp/x"), stderr included.
inline RunResult run_dmeval_env(const std::string& env_args, const std::string& args) {
  return run_dmeval_cmd("env " + env_args + " " + std::string(DMEVAL_BIN) + " " + args + " 2>&1");
}

// Any shell command line, stdout only unless it redirects stderr itself.
inline RunResult run_shell(const std::string& cmd) {
  return run_dmeval_cmd(cmd);
}

// Starts dmeval with `args` (split at spaces), waits until `ready()` holds, kills it with SIGKILL and
// reaps it. Returns true when the process was indeed killed by the signal (false: it ended first, or
// `ready` never held in `timeout_s`).
inline bool run_dmeval_and_kill_when(const std::string& args, const std::function<bool()>& ready,
                                     int timeout_s = 300) {
  std::vector<std::string> argv_s = {DMEVAL_BIN};
  std::istringstream ss(args);
  for (std::string a; ss >> a;) argv_s.push_back(a);
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid;
  if (posix_spawn(&pid, DMEVAL_BIN, nullptr, nullptr, argv.data(), environ) != 0) return false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (!ready() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

// The same once `marker` exists (e.g. a run's first committed chunk record).
inline bool run_dmeval_and_kill_at(const std::string& args, const std::string& marker, int timeout_s = 300) {
  return run_dmeval_and_kill_when(
      args, [&] { return std::filesystem::exists(marker); }, timeout_s);
}

}  // namespace dmeval::test
