#include "edgelm/anomaly/robust_scaler.hpp"

#include "edgelm/anomaly/fast_math.hpp"

namespace edgelm::anomaly {

float RobustScaler::update(float x) {
  // The floor keeps z finite on flat signals while still treating any change of a constant
  // as large: 1e-6 of the level's magnitude, or an absolute 1e-9.
  const float floor = 1e-6f * fm::abs(level_) + 1e-9f;
  const float spread = fm::max(spread_, floor);
  // The first few samples only teach: their spread estimate is too rough to score against.
  const float z = count_ < kMinCount ? 0.0f : (x - level_) / (1.2533f * spread);  // MAD -> sigma
  ++count_;
  const float rate = fm::max(1.0f / static_cast<float>(count_), 1.0f / horizon_);
  if (count_ == 1) {
    level_ = x;
    return 0.0f;
  }
  const float dev = x - level_;
  // Outliers are clipped when learning the level (not when scoring); the spread learns
  // unclipped, because clipping it against itself never recovers from an early flat stretch.
  const float cap = 4.0f * spread;
  const float clipped = count_ < kMinCount * 3 ? dev : fm::clamp(dev, -cap, cap);
  level_ += rate * clipped;
  spread_ += rate * (fm::abs(dev) - spread_);
  return z;
}

}  // namespace edgelm::anomaly
