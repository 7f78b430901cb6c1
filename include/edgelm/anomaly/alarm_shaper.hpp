// Turns a stream of surprise values into reports: one event, one report. After reporting a
// value v, a later surprise is reported only if it exceeds v scaled by the fraction of the rest
// period still to run: just after an alarm only an escalation is reported, and the bar falls
// linearly to zero over `rest_period` samples, so a distinct later event can alarm again
// sooner the stronger it is. Everything not reported is 0. With `escalation` e > 0 the bar for a
// repeatable (block-level) surprise is (1 + e) times higher: an event seen again by the next
// overlapping block, slightly stronger, is not a second alarm (on NAB every such repeat outside
// a window is a false positive).
//
//   AlarmShaper shaper(500, 0.25f);
//   float reported = shaper.update(surprise);
#pragma once
#include <cstdint>

namespace edgelm::anomaly {

class AlarmShaper {
 public:
  explicit AlarmShaper(int rest_period = 500, float escalation = 0.0f)
      : rest_(rest_period < 1 ? 1 : rest_period), escalation_(escalation < 0.0f ? 0.0f : escalation) {}
  // `repeatable`: the surprise comes from evidence that later (overlapping) blocks see again,
  // so it needs the escalation margin; a sample-level surprise (a new extreme, a spike) is new
  // evidence and only needs the decaying bar.
  float update(float surprise, bool repeatable = true) {
    ++t_;
    const uint32_t since = t_ - last_t_;
    const float remaining = since >= static_cast<uint32_t>(rest_)
                                ? 0.0f
                                : 1.0f - static_cast<float>(since) / static_cast<float>(rest_);
    const float margin = repeatable ? 1.0f + escalation_ : 1.0f;
    if (!(surprise > 0.0f) || !(surprise > level_ * margin * remaining)) return 0.0f;
    level_ = surprise;
    last_t_ = t_;
    return surprise;
  }

 private:
  int rest_;
  float escalation_;
  uint32_t t_ = 0;
  uint32_t last_t_ = 0;
  float level_ = 0.0f;
};

}  // namespace edgelm::anomaly
