// Downsamples a stream by averaging consecutive blocks of `scale` samples. Averaging before
// modelling is what makes the detector robust to sample-level noise: on NAB, modelling 16-sample
// block means scores far higher than modelling every sample.
//
//   BlockAverager blocks(16);
//   float mean;
//   if (blocks.add(z, mean)) model.update(mean);   // true once every 16 samples
#pragma once

namespace edgelm::anomaly {

class BlockAverager {
 public:
  // `phase` samples are counted as already in the first block (used for robustness checks).
  explicit BlockAverager(int scale = 16, int phase = 0)
      : scale_(scale < 1 ? 1 : scale), fill_(phase < 0 ? 0 : phase % (scale < 1 ? 1 : scale)) {}

  bool add(float x, float& mean) {
    sum_ += x;
    if (++fill_ < scale_) return false;
    mean = sum_ / static_cast<float>(fill_);
    sum_ = 0.0f;
    fill_ = 0;
    return true;
  }
  int scale() const { return scale_; }

 private:
  int scale_;
  int fill_;
  float sum_ = 0.0f;
};

}  // namespace edgelm::anomaly
