#include "edgelm/anomaly/symbol_model.hpp"

#include "edgelm/anomaly/fast_math.hpp"

namespace edgelm::anomaly {
namespace {

// CDF of a Laplace distribution centred on m with scale b.
float laplace_cdf(float x, float m, float b) {
  const float d = (x - m) / b;
  return d < 0.0f ? 0.5f * fm::exp(d) : 1.0f - 0.5f * fm::exp(-d);
}

int coarse(int sym, int levels) { return sym * kContextLevels / levels; }

}  // namespace

SymbolModel::SymbolModel(const SymbolModelConfig& cfg, int phases)
    : cfg_(cfg), predictor_(cfg.predictor_step), phases_(phases < 1 ? 1 : (phases > kMaxPhases ? kMaxPhases : phases)) {
  for (float& h : hist_) h = 0.5f;
  if (cfg_.levels < 2) cfg_.levels = 2;
  if (cfg_.levels > kMaxLevels) cfg_.levels = kMaxLevels;
  if (cfg_.count_cap > 255) cfg_.count_cap = 255;
  if (cfg_.count_cap < 2) cfg_.count_cap = 2;
  if (!(cfg_.prior > 0.0f)) cfg_.prior = 0.2f;
}

float SymbolModel::predictor_prob(int sym, float predicted_u) const {
  // Probability mass of the symbol's bin; the outermost bins extend to +-infinity.
  const float L = static_cast<float>(cfg_.levels);
  const float b = fm::max(pred_spread_, 0.25f / L);  // never sharper than a quarter bin
  const float hi = sym == cfg_.levels - 1 ? 1.0f : laplace_cdf(static_cast<float>(sym + 1) / L, predicted_u, b);
  const float lo = sym == 0 ? 0.0f : laplace_cdf(static_cast<float>(sym) / L, predicted_u, b);
  return fm::max(hi - lo, 1e-6f);
}

float SymbolModel::update(float u, int day_bin) {
  const int L = cfg_.levels;
  int sym = static_cast<int>(u * static_cast<float>(L));
  sym = sym < 0 ? 0 : (sym >= L ? L - 1 : sym);
  const bool have_day = day_bin >= 0 && day_bin < kDayBins;
  auto symbol_of = [L](float v) {
    const int s = static_cast<int>(v * static_cast<float>(L));
    return s < 0 ? 0 : (s >= L ? L - 1 : s);
  };
  // Context from the same phase: the value one and two steps back in it.
  prev1_ = symbol_of(past(1));
  const int prev2 = symbol_of(past(2));
  const int ctx2 = coarse(prev2, L) * kContextLevels + coarse(prev1_, L);
  // The predictor works on u centred at 0 so its bias term starts neutral.
  float lags[kLags];
  for (int i = 0; i < kLags; ++i) lags[i] = past(i + 1) - 0.5f;
  const float predicted_u = fm::clamp(predictor_.next_from(lags) + 0.5f, 0.0f, 1.0f);
  const uint32_t phase_count = count_ / static_cast<uint32_t>(phases_);  // earlier values in this phase

  const int m = cfg_.min_context_count;
  bool on[kExperts] = {order0_.total(0) >= m, order1_.total(prev1_) >= m, order2_.total(ctx2) >= m,
                       have_day && day_.total(have_day ? day_bin : 0) >= m, phase_count > 1};
  for (int e = 0; e < kExperts; ++e) on[e] = on[e] && ((cfg_.expert_mask >> e) & 1);
  float p[kExperts];
  p[kOrder0] = order0_.prob(0, sym, L, cfg_.prior);
  p[kOrder1] = order1_.prob(prev1_, sym, L, cfg_.prior);
  p[kOrder2] = order2_.prob(ctx2, sym, L, cfg_.prior);
  p[kTimeOfDay] = have_day ? day_.prob(day_bin, sym, L, cfg_.prior) : 1.0f;
  p[kPredictor] = phase_count > 1 ? predictor_prob(sym, predicted_u) : 1.0f;

  float bits = 0.0f;
  if (cfg_.bayes_mixture) {
    // Weights 2^-(decayed log-loss), normalised: the experts that predicted well lately count.
    float best_loss = 1e30f;
    for (int e = 0; e < kExperts; ++e)
      if (on[e]) best_loss = fm::min(best_loss, loss_[e]);
    float wsum = 0.0f, mix = 0.0f;
    for (int e = 0; e < kExperts; ++e) {
      if (!on[e]) continue;
      const float w = fm::exp2(best_loss - loss_[e]);
      wsum += w;
      mix += w * p[e];
    }
    bits = wsum > 0.0f ? -fm::log2(mix / wsum) : 0.0f;
  } else {
    int n = 0;
    for (int e = 0; e < kExperts; ++e)
      if (on[e]) bits -= fm::log2(p[e]), ++n;
    bits = n ? bits / static_cast<float>(n) : 0.0f;
  }
  if (phase_count == 0) bits = 0.0f;
  for (int e = 0; e < kExperts; ++e) {
    last_p_[e] = on[e] ? p[e] : 1.0f;
    loss_[e] = cfg_.mix_decay * loss_[e] - fm::log2(p[e]);
  }

  // Overlapping windows repeat most of their samples: by default only one phase teaches the
  // shared tables, so the model's memory (count halving) spans the same time at any hop count.
  if (cfg_.learn_all_phases || count_ % static_cast<uint32_t>(phases_) == 0) {
    order0_.learn(0, sym, cfg_.count_cap);
    order1_.learn(prev1_, sym, cfg_.count_cap);
    order2_.learn(ctx2, sym, cfg_.count_cap);
    if (have_day) day_.learn(day_bin, sym, cfg_.count_cap);
    if (phase_count > 0)
      pred_spread_ += cfg_.predictor_spread_rate * (fm::min(fm::abs(u - predicted_u), 0.5f) - pred_spread_);
    predictor_.learn_from(lags, u - 0.5f);
  }
  hist_[pos_] = u;
  pos_ = pos_ + 1 == kHistory ? 0 : pos_ + 1;
  prev1_ = sym;
  ++count_;
  return bits;
}

}  // namespace edgelm::anomaly
