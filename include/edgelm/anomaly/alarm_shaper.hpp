// Turns a stream of surprise values into reports: one event, one report. After reporting a
// value v, a later surprise is reported only if it exceeds v scaled by the fraction of the rest
// period still to run: just after an alarm only an escalation is reported, and the bar falls
// linearly to zero over `rest_period` samples, so a distinct later event can alarm again
// sooner the stronger it is. Everything not reported is 0.
//
//   AlarmShaper shaper(500);
//   float reported = shaper.update(surprise);
#pragma once
#include <cstdint>

namespace edgelm::anomaly {

class AlarmShaper {
 public:
  explicit AlarmShaper(int rest_period = 500) : rest_(rest_period < 1 ? 1 : rest_period) {}
  float update(float surprise) {
    ++t_;
    const uint32_t since = t_ - last_t_;
    const float remaining = since >= static_cast<uint32_t>(rest_)
                                ? 0.0f
                                : 1.0f - static_cast<float>(since) / static_cast<float>(rest_);
    if (!(surprise > 0.0f) || !(surprise > level_ * remaining)) return 0.0f;
    level_ = surprise;
    last_t_ = t_;
    return surprise;
  }

 private:
  int rest_;
  uint32_t t_ = 0;
  uint32_t last_t_ = 0;
  float level_ = 0.0f;
};

}  // namespace edgelm::anomaly
