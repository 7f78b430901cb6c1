#include "edgelm/anomaly/linear_predictor.hpp"

#include "edgelm/anomaly/fast_math.hpp"

namespace edgelm::anomaly {

float LinearPredictor::predict() const {
  float y = w_[kLags];
  for (int i = 0; i < kLags; ++i) y += w_[i] * lags_[i];
  return y;
}

float LinearPredictor::next_from(const float* lags) const {
  float y = w_[kLags];
  for (int i = 0; i < kLags; ++i) y += w_[i] * lags[i];
  return lags[0] + y;
}

void LinearPredictor::learn_from(const float* lags, float z) {
  z = fm::clamp(z, -20.0f, 20.0f);  // one wild value must not wreck the weights
  // A naive "same as last" prior: the model learns the correction on top of it.
  const float err = z - next_from(lags);
  float norm = 1.0f;
  for (int i = 0; i < kLags; ++i) norm += lags[i] * lags[i];
  const float g = step_ * fm::clamp(err, -3.0f, 3.0f) / norm;
  for (int i = 0; i < kLags; ++i) w_[i] += g * lags[i];
  w_[kLags] += g;
}

float LinearPredictor::update(float z) {
  const float err = fm::clamp(z, -20.0f, 20.0f) - next();
  learn_from(lags_, z);
  for (int i = kLags - 1; i > 0; --i) lags_[i] = lags_[i - 1];
  lags_[0] = fm::clamp(z, -20.0f, 20.0f);
  return fm::abs(err);
}

}  // namespace edgelm::anomaly
