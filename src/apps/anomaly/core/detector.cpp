#include "edgelm/anomaly/detector.hpp"

#include "edgelm/anomaly/fast_math.hpp"

namespace edgelm::anomaly {
namespace {

DetectorConfig clamped(DetectorConfig c) {
  if (c.scales < 1) c.scales = 1;
  if (c.scales > kMaxScales) c.scales = kMaxScales;
  for (int& s : c.scale) s = s < 1 ? 1 : (s > kMaxScaleSamples ? kMaxScaleSamples : s);
  if (c.warmup < 0) c.warmup = 0;
  if (c.rest_period < 0) c.rest_period = 0;
  if (!(c.escalation >= 0.0f)) c.escalation = 0.0f;
  if (c.block_phase < 0) c.block_phase = 0;
  if (c.block_hops < 1) c.block_hops = 1;
  if (c.block_hops > kMaxHops) c.block_hops = kMaxHops;
  if (!(c.squash_width > 0.0f)) c.squash_width = 3.0f;
  if (!(c.score_bits > 0.0f)) c.score_bits = 16.0f;
  return c;
}

// 0.5 + 0.5 tanh(z / width), with tanh(y) = 1 - 2 / (e^(2y) + 1): maps any z into (0, 1).
float squash(float z, float width) {
  const float y = fm::clamp(z / width, -20.0f, 20.0f);
  return 1.0f - 1.0f / (fm::exp(2.0f * y) + 1.0f);
}

// Hour of day (UTC) as a context for daily rhythms; negative times count back from 1970.
int hour_of_day(int64_t timestamp_ms) {
  const int64_t hours = (timestamp_ms >= 0 ? timestamp_ms : timestamp_ms - 3599999) / 3600000;
  return static_cast<int>(((hours % kDayBins) + kDayBins) % kDayBins);
}

}  // namespace

const char* validate(const DetectorConfig& c) {
  if (!(c.scaler_horizon >= 2.0f)) return "scaler_horizon must be >= 2";
  if (!(c.squash_width > 0.0f)) return "squash_width must be > 0";
  if (c.scales < 1 || c.scales > kMaxScales) return "scales must be 1..2";
  for (int s : c.scale)
    if (s < 1 || s > kMaxScaleSamples) return "scale entries must be 1..4096";
  const SymbolModelConfig& m = c.symbol;
  if (m.levels < 2 || m.levels > kMaxLevels) return "symbol_levels must be 2..16";
  if (!(m.prior > 0.0f)) return "symbol_prior must be > 0";
  if (m.count_cap < 2 || m.count_cap > 255) return "symbol_count_cap must be 2..255";
  if (!(m.predictor_step > 0.0f && m.predictor_step <= 1.0f)) return "symbol_predictor_step must be in (0, 1]";
  if (!(m.predictor_spread_rate > 0.0f && m.predictor_spread_rate <= 1.0f))
    return "symbol_predictor_spread_rate must be in (0, 1]";
  if ((m.expert_mask & 0x1f) == 0) return "symbol_expert_mask must enable at least one expert";
  if (!(m.mix_decay > 0.0f && m.mix_decay <= 1.0f)) return "symbol_mix_decay must be in (0, 1]";
  if (c.rest_period < 0) return "rest_period must be >= 0";
  if (!(c.escalation >= 0.0f && c.escalation <= 10.0f)) return "escalation must be in [0, 10]";
  if (!(c.score_bits > 0.0f)) return "score_bits must be > 0";
  if (c.warmup < 0) return "warmup must be >= 0";
  if (c.block_phase < 0) return "block_phase must be >= 0";
  if (c.block_hops < 1 || c.block_hops > kMaxHops) return "block_hops must be 1..4";
  for (int j = 0; j < c.scales; ++j)
    if (c.scale[j] % c.block_hops != 0) return "every used scale must be a multiple of block_hops";
  if (!(c.alarm_threshold >= 0.0f && c.alarm_threshold <= 1.0f)) return "alarm_threshold must be in [0, 1]";
  return nullptr;
}

// Members are built in place (no temporaries): on a microcontroller a temporary SymbolModel
// would cost a kilobyte of stack.
static_assert(kMaxScales == 2, "update the initialiser lists below");
Detector::Detector(const DetectorConfig& cfg)
    : cfg_(clamped(cfg)),
      scaler_(cfg_.scaler_horizon),
      blocks_{BlockAverager(cfg_.scale[0], cfg_.block_phase, cfg_.block_hops),
              BlockAverager(cfg_.scale[1], cfg_.block_phase, cfg_.block_hops)},
      streams_{SymbolModel(cfg_.symbol, cfg_.block_hops), SymbolModel(cfg_.symbol, cfg_.block_hops)},
      spikes_(cfg_.spike),
      range_(cfg_.range),
      shaper_(cfg_.rest_period, cfg_.escalation) {
  for (int j = 1; j < cfg_.scales; ++j)
    if (cfg_.scale[j] > cfg_.scale[coarsest_]) coarsest_ = j;
}

float Detector::block_surprise(float z, int day_bin) {
  // With several scales an anomaly must be surprising at every scale: when a window of the
  // coarsest stream ends, its surprise is combined with the largest surprise of each finer
  // stream over the windows that lie inside it (min = agreement; max when agreement is off).
  bool coarse_ended = false;
  for (int j = 0; j < cfg_.scales; ++j) {
    stream_bits_[j] = 0.0f;
    float mean;
    if (!blocks_[j].add(z, mean)) continue;
    stream_bits_[j] = streams_[j].update(squash(mean, cfg_.squash_width), day_bin);
    recent_bits_[j][recent_pos_[j]] = stream_bits_[j];
    recent_pos_[j] = (recent_pos_[j] + 1) % kRecent;
    coarse_ended = coarse_ended || j == coarsest_;
  }
  if (!coarse_ended) return 0.0f;
  float bits = stream_bits_[coarsest_];
  const int coarse_scale = blocks_[coarsest_].scale();
  for (int j = 0; j < cfg_.scales; ++j) {
    if (j == coarsest_) continue;
    const int inside = (coarse_scale - blocks_[j].scale()) / blocks_[j].hop() + 1;
    float recent = 0.0f;
    for (int k = 1; k <= inside && k <= kRecent; ++k)
      recent = fm::max(recent, recent_bits_[j][(recent_pos_[j] + kRecent - k) % kRecent]);
    bits = cfg_.scale_agreement ? fm::min(bits, recent) : fm::max(bits, recent);
  }
  return bits;
}

float Detector::update(int64_t timestamp_ms, float value) {
  // A missing reading (NaN, infinity) teaches nothing and scores nothing.
  if (!(value - value == 0.0f)) return 0.0f;
  ++count_;
  const float z = scaler_.update(value);
  float surprise = block_surprise(z, hour_of_day(timestamp_ms));
  range_bits_ = cfg_.use_range ? range_.update(value) : 0.0f;
  spike_bits_ = cfg_.use_spikes ? spikes_.update(z) : 0.0f;
  const float sample_bits = fm::max(range_bits_, spike_bits_);
  const bool from_blocks = surprise > sample_bits;
  surprise = fm::max(surprise, sample_bits);
  last_surprise_ = surprise;
  if (count_ <= static_cast<uint32_t>(cfg_.warmup)) return 0.0f;
  return fm::clamp(shaper_.update(surprise, from_blocks) / cfg_.score_bits, 0.0f, 1.0f);
}

}  // namespace edgelm::anomaly
