// Robust running normalisation of a raw sensor value: z = (x - level) / (1.25 spread), where level
// is a running mean and spread a running mean absolute deviation. Weights are 1/n at first (as
// fast as a plain average), then exponential with time constant `horizon` samples, so the
// normalisation follows slow drift. Deviations beyond 4 spreads are clipped when learning the
// level, so one outlier barely moves it.
//
//   RobustScaler s(30000);
//   float z = s.update(x);   // z of x against the past (0 for the first 10 samples), then learns x
#pragma once
#include <cstdint>

namespace edgelm::anomaly {

class RobustScaler {
 public:
  explicit RobustScaler(float horizon = 1000.0f) : horizon_(horizon) {}

  // z of x against what was seen before x (then learns x).
  float update(float x);
  float level() const { return level_; }
  float spread() const { return spread_; }
  uint32_t count() const { return count_; }

 private:
  static constexpr uint32_t kMinCount = 10;
  float horizon_;
  float level_ = 0.0f;
  float spread_ = 0.0f;  // mean absolute deviation
  uint32_t count_ = 0;
};

}  // namespace edgelm::anomaly
