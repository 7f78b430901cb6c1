// A tiny online linear model: predicts the next normalised value as the last value plus a
// learned linear correction from the previous kLags values and a bias, trained by normalised
// least-mean-squares (one SGD step per sample, step size independent of the signal's scale).
//
//   LinearPredictor p;
//   float err = p.update(z);   // error of the prediction made before z arrived, then learns z
#pragma once

namespace edgelm::anomaly {

inline constexpr int kLags = 8;

class LinearPredictor {
 public:
  explicit LinearPredictor(float step = 0.05f) : step_(step) {}
  float update(float z);
  float predict() const;
  // Prediction of the next value (after the last update).
  float next() const { return lags_[0] + predict(); }
  // The same model on lags kept by the caller (lags[0] newest, kLags of them): prediction of
  // the next value, and one learning step toward the value z that followed those lags.
  float next_from(const float* lags) const;
  void learn_from(const float* lags, float z);

 private:
  float step_;
  float w_[kLags + 1] = {};    // last one is the bias
  float lags_[kLags] = {};     // lags_[0] is the newest
};

}  // namespace edgelm::anomaly
