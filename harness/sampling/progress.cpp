#include "harness/sampling/progress.h"

#include <unistd.h>

#include <fmt/format.h>

#include <cstdio>

namespace dmeval {

namespace {
std::string duration(double s) {
  if (s < 0 || s > 1e8) return "?";
  const auto t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600) return fmt::format("{}h{:02d}m", t / 3600, (t / 60) % 60);
  if (t >= 60) return fmt::format("{}m{:02d}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}
}  // namespace

Progress::Progress(std::string label, int64_t total, int64_t done, bool enabled, double log_every_s)
    : label_(std::move(label)),
      total_(total),
      done_(done),
      start_done_(done),
      enabled_(enabled),
      tty_(isatty(STDERR_FILENO) != 0),
      log_every_s_(log_every_s),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_) {}

double Progress::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

double Progress::images_per_second() const {
  const double t = elapsed_s();
  return t > 0 ? static_cast<double>(done_ - start_done_) / t : 0.0;
}

void Progress::advance(int64_t images) {
  done_ += images;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_print_).count();
  if (tty_ ? since >= 0.2 : since >= log_every_s_) {
    last_print_ = now;
    print(false);
  }
}

void Progress::finish() {
  print(true);
}

void Progress::print(bool final) {
  if (!enabled_) return;
  const double rate = images_per_second();
  const double eta = rate > 0 ? static_cast<double>(total_ - done_) / rate : -1;
  const double frac = total_ > 0 ? static_cast<double>(done_) / static_cast<double>(total_) : 1.0;
  if (tty_) {
    const int width = 30, filled = static_cast<int>(frac * width + 0.5);
    std::fprintf(stderr, "\r%s [%s%s] %lld/%lld %.2f img/s ETA %s   ", label_.c_str(),
                 std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(),
                 static_cast<long long>(done_), static_cast<long long>(total_), rate,
                 final ? "0s" : duration(eta).c_str());
    if (final) std::fprintf(stderr, "\n");
  } else {
    std::fprintf(stderr, "%s: %lld/%lld images (%.1f%%), %.2f img/s, elapsed %s, ETA %s\n", label_.c_str(),
                 static_cast<long long>(done_), static_cast<long long>(total_), 100.0 * frac, rate,
                 duration(elapsed_s()).c_str(), final ? "0s" : duration(eta).c_str());
  }
  std::fflush(stderr);
}

}  // namespace dmeval
