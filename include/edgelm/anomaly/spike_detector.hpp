// Sample-level detector for abrupt point anomalies (spikes, steps) that block averaging would
// dilute or delay. A tiny linear model predicts each normalised value from the previous ones;
// the residual is compared with the largest residual seen so far (a slowly decaying record).
// Only a residual that breaks the record scores: surprise = gain * log2(residual / record),
// so a noisy or heavy-tailed signal raises its own bar and ordinary noise never scores.
//
//   SpikeDetector spikes;
//   float bits = spikes.update(z);   // 0 unless z breaks the residual record
#pragma once
#include <cstdint>

#include "edgelm/anomaly/linear_predictor.hpp"

namespace edgelm::anomaly {

struct SpikeDetectorConfig {
  float record_horizon = 5000.0f;  // samples for the residual record to decay by 1/e
  float gain = 8.0f;               // bits per doubling of the record
  int warmup = 100;                // samples that only set the record
};

class SpikeDetector {
 public:
  explicit SpikeDetector(const SpikeDetectorConfig& cfg = {}) : cfg_(cfg) {}
  float update(float z);
  float record() const { return record_; }

 private:
  SpikeDetectorConfig cfg_;
  LinearPredictor predictor_{0.05f};
  float predicted_ = 0.0f;
  float record_ = 0.0f;
  uint32_t count_ = 0;
};

}  // namespace edgelm::anomaly
