#include "edgelm/anomaly/detector.hpp"

#include "edgelm/anomaly/fast_math.hpp"

namespace edgelm::anomaly {
namespace {

DetectorConfig clamped(DetectorConfig c) {
  if (c.channels < 1) c.channels = 1;
  if (c.channels > kMaxChannels) c.channels = kMaxChannels;
  if (c.scales < 1) c.scales = 1;
  if (c.scales > kMaxScales) c.scales = kMaxScales;
  for (int& s : c.scale) s = s < 1 ? 1 : (s > kMaxScaleSamples ? kMaxScaleSamples : s);
  if (c.warmup < 0) c.warmup = 0;
  if (c.rest_period < 0) c.rest_period = 0;
  if (!(c.escalation >= 0.0f)) c.escalation = 0.0f;
  if (c.block_phase < 0) c.block_phase = 0;
  if (c.block_hops < 1) c.block_hops = 1;
  if (c.block_hops > kMaxHops) c.block_hops = kMaxHops;
  while (c.channels * c.block_hops > kMaxPhases) --c.block_hops;
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
  if (c.channels < 1 || c.channels > kMaxChannels) return "channels must be 1..3";
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
  if (c.channels * c.block_hops > kMaxPhases) return "channels * block_hops must be at most 8";
  for (int j = 0; j < c.scales; ++j)
    if (c.scale[j] % c.block_hops != 0) return "every used scale must be a multiple of block_hops";
  if (!(c.alarm_threshold >= 0.0f && c.alarm_threshold <= 1.0f)) return "alarm_threshold must be in [0, 1]";
  return nullptr;
}

// Members are built in place (no temporaries): on a microcontroller a temporary SymbolModel
// would cost a kilobyte of stack.
static_assert(kMaxScales == 2 && kMaxChannels == 3, "update the initialiser lists below");
Detector::Detector(const DetectorConfig& cfg)
    : cfg_(clamped(cfg)),
      scaler_{RobustScaler(cfg_.scaler_horizon), RobustScaler(cfg_.scaler_horizon), RobustScaler(cfg_.scaler_horizon)},
      streams_{SymbolModel(cfg_.symbol, cfg_.block_hops * cfg_.channels),
               SymbolModel(cfg_.symbol, cfg_.block_hops * cfg_.channels)},
      spikes_{SpikeDetector(cfg_.spike), SpikeDetector(cfg_.spike), SpikeDetector(cfg_.spike)},
      range_{RangeWatch(cfg_.range), RangeWatch(cfg_.range), RangeWatch(cfg_.range)},
      shaper_(cfg_.rest_period, cfg_.escalation) {
  for (auto& per_channel : blocks_)
    for (int j = 0; j < kMaxScales; ++j) per_channel[j] = BlockAverager(cfg_.scale[j], cfg_.block_phase, cfg_.block_hops);
  for (int j = 1; j < cfg_.scales; ++j)
    if (cfg_.scale[j] > cfg_.scale[coarsest_]) coarsest_ = j;
}

float Detector::block_surprise(const float* z, int day_bin) {
  // Every channel's windows end on the same samples. When a window ends, each channel's mean
  // goes through the shared model of its scale, in channel order (one interleaved sequence per
  // channel and phase). With several scales an anomaly must be surprising at every scale: when
  // a window of the coarsest stream ends, a channel's surprise there is combined with the
  // largest surprise of each finer stream of the same channel over the windows that lie inside
  // it (min = agreement; max when agreement is off). The block surprise is the largest over
  // channels.
  const int channels = cfg_.channels;
  bool coarse_ended = false;
  float bits_at[kMaxChannels][kMaxScales];
  for (int j = 0; j < cfg_.scales; ++j) {
    stream_bits_[j] = 0.0f;
    bool ended = false;
    for (int c = 0; c < channels; ++c) {
      float mean;
      if (!blocks_[c][j].add(z[c], mean)) continue;
      ended = true;
      bits_at[c][j] = streams_[j].update(squash(mean, cfg_.squash_width), day_bin);
      recent_bits_[c][j][recent_pos_[j]] = bits_at[c][j];
      stream_bits_[j] = fm::max(stream_bits_[j], bits_at[c][j]);
    }
    if (!ended) continue;
    recent_pos_[j] = (recent_pos_[j] + 1) % kRecent;
    coarse_ended = coarse_ended || j == coarsest_;
  }
  if (!coarse_ended) return 0.0f;
  const int coarse_scale = blocks_[0][coarsest_].scale();
  float out = 0.0f;
  for (int c = 0; c < channels; ++c) {
    float bits = bits_at[c][coarsest_];
    for (int j = 0; j < cfg_.scales; ++j) {
      if (j == coarsest_) continue;
      const int inside = (coarse_scale - blocks_[c][j].scale()) / blocks_[c][j].hop() + 1;
      float recent = 0.0f;
      for (int k = 1; k <= inside && k <= kRecent; ++k)
        recent = fm::max(recent, recent_bits_[c][j][(recent_pos_[j] + kRecent - k) % kRecent]);
      bits = cfg_.scale_agreement ? fm::min(bits, recent) : fm::max(bits, recent);
    }
    out = fm::max(out, bits);
  }
  return out;
}

float Detector::update(int64_t timestamp_ms, float value) {
  return cfg_.channels == 1 ? update(timestamp_ms, &value) : 0.0f;
}

float Detector::update(int64_t timestamp_ms, const float* values) {
  const int channels = cfg_.channels;
  // A missing reading (NaN, infinity) teaches nothing and scores nothing.
  for (int c = 0; c < channels; ++c)
    if (!(values[c] - values[c] == 0.0f)) return 0.0f;
  ++count_;
  float z[kMaxChannels];
  for (int c = 0; c < channels; ++c) z[c] = scaler_[c].update(values[c]);
  float surprise = block_surprise(z, hour_of_day(timestamp_ms));
  range_bits_ = spike_bits_ = 0.0f;
  for (int c = 0; c < channels; ++c) {
    if (cfg_.use_range) range_bits_ = fm::max(range_bits_, range_[c].update(values[c]));
    if (cfg_.use_spikes) spike_bits_ = fm::max(spike_bits_, spikes_[c].update(z[c]));
  }
  const float sample_bits = fm::max(range_bits_, spike_bits_);
  const bool from_blocks = surprise > sample_bits;
  surprise = fm::max(surprise, sample_bits);
  last_surprise_ = surprise;
  if (count_ <= static_cast<uint32_t>(cfg_.warmup)) return 0.0f;
  return fm::clamp(shaper_.update(surprise, from_blocks) / cfg_.score_bits, 0.0f, 1.0f);
}

}  // namespace edgelm::anomaly
