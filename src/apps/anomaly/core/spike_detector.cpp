#include "edgelm/anomaly/spike_detector.hpp"

#include "edgelm/anomaly/fast_math.hpp"

namespace edgelm::anomaly {

float SpikeDetector::update(float z) {
  const float residual = fm::abs(z - predicted_);
  ++count_;
  float bits = 0.0f;
  if (count_ > static_cast<uint32_t>(cfg_.warmup) && record_ > 0.0f && residual > record_)
    bits = cfg_.gain * fm::log2(residual / record_);
  // The record decays slowly so that a signal that grows calmer becomes sensitive again.
  record_ = fm::max(record_ * (1.0f - 1.0f / cfg_.record_horizon), residual);
  predictor_.update(z);
  predicted_ = predictor_.next();
  return bits;
}

}  // namespace edgelm::anomaly
