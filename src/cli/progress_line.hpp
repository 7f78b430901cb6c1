// A one-line progress indicator with an ETA on stderr, shown only when stderr is a terminal
// (pipes and logs stay quiet). Used by the long quantization-toolkit commands.
#pragma once
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace edgelm::cli {

class ProgressLine {
 public:
  explicit ProgressLine(std::string what) : what_(std::move(what)), on_(isatty(STDERR_FILENO) == 1) {}
  ~ProgressLine() { finish(); }
  // fraction in [0, 1]; `detail` is shown after the bar.
  void update(double fraction, const std::string& detail = {}) {
    if (!on_) return;
    const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
    char eta[32] = "--";
    if (fraction > 0.001) {
      const double left = elapsed * (1 - fraction) / fraction;
      std::snprintf(eta, sizeof eta, "%dm%02ds", static_cast<int>(left) / 60, static_cast<int>(left) % 60);
    }
    std::fprintf(stderr, "\r\033[K%s %5.1f%%  ETA %s  %s", what_.c_str(), 100 * fraction, eta, detail.c_str());
    std::fflush(stderr);
    shown_ = true;
  }
  void finish() {
    if (on_ && shown_) std::fprintf(stderr, "\r\033[K");
    shown_ = false;
  }

 private:
  using Clock = std::chrono::steady_clock;
  std::string what_;
  bool on_;
  bool shown_ = false;
  Clock::time_point start_ = Clock::now();
};

}  // namespace edgelm::cli
