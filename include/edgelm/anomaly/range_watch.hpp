// Flags values outside everything seen so far: when a value leaves [min, max] of the past by
// more than `tolerance` of that range, it scores `bits` of surprise (a "spatial" anomaly, as in
// Numenta's NAB detector). Cheap, and catches a new extreme at the first sample.
//
//   RangeWatch range;
//   float bits = range.update(value);
#pragma once
#include <cstdint>

#include "edgelm/anomaly/fast_math.hpp"

namespace edgelm::anomaly {

struct RangeWatchConfig {
  float tolerance = 0.05f;  // fraction of the seen range a value may exceed it by
  float bits = 8.0f;        // surprise of a value outside the range by `tolerance`...
  float gain = 0.0f;        // ...plus this many bits per doubling of the excess
  int warmup = 150;         // samples that only learn the range
  float horizon = 50000.0f; // samples for the range to relax by 1/e toward recent values; 0 = never
};

class RangeWatch {
 public:
  explicit RangeWatch(const RangeWatchConfig& cfg = {}) : cfg_(cfg) {}
  float update(float x) {
    float out = 0.0f;
    if (count_ == 0) lo_ = hi_ = x;
    const float slack = (hi_ - lo_) * cfg_.tolerance;
    if (count_ >= static_cast<uint32_t>(cfg_.warmup) && hi_ > lo_ && (x > hi_ + slack || x < lo_ - slack)) {
      const float excess = (x > hi_ ? x - hi_ : lo_ - x) / slack;  // > 1
      out = cfg_.bits + cfg_.gain * fm::log2(excess);
    }
    if (cfg_.horizon > 0.0f) {
      // Old extremes fade: the bounds relax toward the current value.
      const float r = 1.0f / cfg_.horizon;
      lo_ += r * (x - lo_) * (x > lo_);
      hi_ -= r * (hi_ - x) * (x < hi_);
    }
    lo_ = x < lo_ ? x : lo_;
    hi_ = x > hi_ ? x : hi_;
    ++count_;
    return out;
  }

 private:
  RangeWatchConfig cfg_;
  float lo_ = 0.0f, hi_ = 0.0f;
  uint32_t count_ = 0;
};

}  // namespace edgelm::anomaly
