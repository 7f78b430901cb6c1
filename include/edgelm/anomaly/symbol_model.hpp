// Online sequence model of a normalised signal u in [0, 1], coded as one of `levels` symbols.
// With `phases` > 1 the input is that many interleaved sequences (overlapping block means, one
// per sub-block phase; with several channels, one per channel and phase): the context of a
// value is the value `phases` updates back, and all phases share the learned tables and
// weights (the statistics of a normalised signal do not depend on the phase or the sensor).
// Several experts predict the newest symbol, each from a different view of the past:
//   order0      how often each symbol occurs (value rarity)
//   order1      the previous symbol (transitions)
//   order2      the two previous symbols, coarsened to 4 levels (short patterns)
//   time_of_day the hour of day (daily rhythm)
//   predictor   a small linear model of u (dynamics), as a Laplace density over the bins
// The surprise of the newest symbol is the average of the experts' code lengths, -log2 p
// (geometric pooling: a value is anomalous when the experts find it improbable on balance),
// or, for comparison, the code length under their Bayesian mixture (surprising only when every
// expert is surprised). Counts fade (see CountTable), so the model follows drift.
//
//   SymbolModel m;
//   float bits = m.update(u, hour_of_day);   // surprise of u given the past, then learns u
#pragma once
#include <cstdint>

#include "edgelm/anomaly/block_averager.hpp"
#include "edgelm/anomaly/count_table.hpp"
#include "edgelm/anomaly/linear_predictor.hpp"

namespace edgelm::anomaly {

inline constexpr int kContextLevels = 4;  // coarse levels of the order-2 context
inline constexpr int kMaxPhases = 8;      // interleaved sequences (block hops x channels)
inline constexpr int kDayBins = 24;

struct SymbolModelConfig {
  int levels = 16;             // alphabet size, 2..kMaxLevels
  float prior = 0.2f;          // pseudo-count per symbol (additive smoothing)
  int count_cap = 250;         // 2..255: a context's counts halve when its total reaches this
  float predictor_step = 0.05f;
  float predictor_spread_rate = 0.02f;  // how fast the predictor's error scale adapts
  uint8_t expert_mask = 0x1f;  // bit e enables expert e (see SymbolModel::Expert)
  bool bayes_mixture = false;  // false: geometric pooling; true: Bayesian mixture
  int min_context_count = 2;   // a count expert abstains while its context has fewer observations
  bool learn_all_phases = true;   // with overlapping windows: every phase teaches (else one)
  float mix_decay = 0.98f;     // per-update decay of the experts' log-loss (mixture weights)
};

class SymbolModel {
 public:
  enum Expert { kOrder0, kOrder1, kOrder2, kTimeOfDay, kPredictor, kExperts };

  explicit SymbolModel(const SymbolModelConfig& cfg = {}, int phases = 1);

  // Surprise in bits of u (in [0,1]) given the past, then learns it. `day_bin` is the hour of
  // day in [0, kDayBins), or -1 when unknown.
  float update(float u, int day_bin);

  int last_symbol() const { return prev1_; }
  // Probability the expert gave the last symbol (1 when the expert was off).
  float expert_prob(int e) const { return last_p_[e]; }

 private:
  float predictor_prob(int sym, float predicted_u) const;
  // u of the value `k` steps back in the newest value's own phase (k >= 1).
  float past(int k) const { return hist_[(pos_ + kHistory - k * phases_) % kHistory]; }
  static constexpr int kHistory = kLags * kMaxPhases;  // kLags steps back in every phase

  SymbolModelConfig cfg_;
  CountTable<1> order0_;
  CountTable<kMaxLevels> order1_;
  CountTable<kContextLevels * kContextLevels> order2_;
  CountTable<kDayBins> day_;
  LinearPredictor predictor_;   // weights only; the lags come from hist_
  float hist_[kHistory];        // the last values (all phases interleaved), ring
  int pos_ = 0;                 // where the next value goes
  int phases_ = 1;
  float pred_spread_ = 0.1f;   // mean |u - predicted u|
  float loss_[kExperts] = {};  // decayed log-loss (bits) of each expert, for the mixture
  float last_p_[kExperts] = {};
  int prev1_ = 0;
  uint32_t count_ = 0;
};

}  // namespace edgelm::anomaly
