// Progress of a long run: a bar with images/s and ETA on a terminal, plain log lines otherwise
// (every `log_every_s` seconds and at the end), both on stderr.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace dmeval {

class Progress {
 public:
  // `total` images to do in this process, `done` already done before it started.
  Progress(std::string label, int64_t total, int64_t done, bool enabled = true, double log_every_s = 30.0);
  void advance(int64_t images);
  void finish();
  double images_per_second() const;
  double elapsed_s() const;

 private:
  void print(bool final);
  std::string label_;
  int64_t total_, done_, start_done_;
  bool enabled_, tty_;
  double log_every_s_;
  std::chrono::steady_clock::time_point start_, last_print_;
};

}  // namespace dmeval
