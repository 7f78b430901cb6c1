// Downsamples a stream by averaging windows of `scale` samples. Averaging before modelling is
// what makes the detector robust to sample-level noise: on NAB, modelling 16-sample block means
// scores far higher than modelling every sample.
//
// With `hops` > 1 the windows overlap: a window mean is produced every scale / hops samples
// (the window slides by one sub-block), so where a block happens to start relative to an event
// matters less and an event is seen scale / hops samples after it starts at the latest. Memory:
// one partial sum per sub-block (at most kMaxHops).
//
//   BlockAverager blocks(16);
//   float mean;
//   if (blocks.add(z, mean)) model.update(mean);   // true once every 16 samples
#pragma once

namespace edgelm::anomaly {

inline constexpr int kMaxHops = 4;

class BlockAverager {
 public:
  // `phase` samples are counted as already in the first sub-block (used for robustness checks).
  // `hops` must divide `scale` (otherwise the sub-block is rounded down, the window shrinks).
  explicit BlockAverager(int scale = 16, int phase = 0, int hops = 1) {
    hops_ = hops < 1 ? 1 : (hops > kMaxHops ? kMaxHops : hops);
    scale_ = scale < hops_ ? hops_ : scale;
    sub_ = scale_ / hops_;
    fill_ = phase < 0 ? 0 : phase % sub_;
  }

  bool add(float x, float& mean) {
    sum_ += x;
    if (++fill_ < sub_) return false;
    part_[next_] = sum_ / static_cast<float>(fill_);
    next_ = next_ + 1 == hops_ ? 0 : next_ + 1;
    sum_ = 0.0f;
    fill_ = 0;
    if (parts_ < hops_) ++parts_;
    if (parts_ < hops_) return false;
    float s = 0.0f;
    for (int i = 0; i < hops_; ++i) s += part_[i];
    mean = s / static_cast<float>(hops_);
    return true;
  }
  int scale() const { return scale_; }
  int hops() const { return hops_; }
  int hop() const { return sub_; }  // samples between outputs

 private:
  int scale_ = 16, hops_ = 1, sub_ = 16;
  int fill_ = 0;
  float sum_ = 0.0f;
  float part_[kMaxHops] = {};  // means of the last `hops` sub-blocks (ring)
  int next_ = 0, parts_ = 0;
};

}  // namespace edgelm::anomaly
