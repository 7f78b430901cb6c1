// Streaming anomaly detector for one sensor series, or for up to kMaxChannels sensors of one
// device (one score for all). Feed one (timestamp, value) at a time; get an anomaly score in
// [0, 1] computed from the past only. Learns online, adapts to drift, and holds all its state
// inside the object (sizeof(Detector) bytes, no allocation, no exceptions), so it runs the same
// on a server and on a Cortex-M4F.
//
//   edgelm::anomaly::Detector det;                  // default configuration
//   for (auto [t_ms, v] : samples) {
//     float score = det.update(t_ms, v);
//     if (score >= det.config().alarm_threshold) raise_alarm(t_ms, v, score);
//   }
//
//   DetectorConfig cfg; cfg.channels = 3;           // e.g. temperature, pressure, vibration
//   Detector dev(cfg);
//   float score = dev.update(t_ms, values);         // values[0..2]
//
// Several channels: each channel has its own scaler, block averagers, range watch and spike
// detector; the block means of all channels (normalised, so comparable) teach one shared pair
// of symbol models, each channel as its own interleaved sequence; the largest surprise of any
// channel is reported, through one alarm shaper (one event, one report, whichever sensor
// shows it).
//
// Stages (each usable and measurable on its own; see src/apps/anomaly/README.md). Every path
// speaks the same currency, surprise in bits, and the largest surprise of a sample is reported:
//   RobustScaler   value -> z, robust running normalisation
//   BlockAverager  z -> mean over windows of `scale` samples, one stream per scale (32 and 16);
//                  windows overlap by half (block_hops 2): a mean every scale/2 samples
//   SymbolModel    squashed block mean -> surprise under five online experts; with two scales
//                  a block is surprising only when both scales agree (the smaller surprise)
//   RangeWatch     raw value beyond every value seen so far (a new extreme) -> fixed surprise
//   SpikeDetector  sample-level prediction residual breaking its record -> surprise
//   AlarmShaper    surprise -> reported surprise, one report per event (decaying bar; a block
//                  surprise must beat it by `escalation`, as overlapping blocks repeat evidence)
// score = reported surprise / score_bits, clipped to [0, 1].
#pragma once
#include <cstdint>

#include "edgelm/anomaly/alarm_shaper.hpp"
#include "edgelm/anomaly/block_averager.hpp"
#include "edgelm/anomaly/range_watch.hpp"
#include "edgelm/anomaly/robust_scaler.hpp"
#include "edgelm/anomaly/spike_detector.hpp"
#include "edgelm/anomaly/symbol_model.hpp"

namespace edgelm::anomaly {

inline constexpr int kMaxScales = 2;
inline constexpr int kMaxScaleSamples = 4096;
// Value columns one detector takes (its state is sized for this many, within 4 KB).
inline constexpr int kMaxChannels = 3;

struct DetectorConfig {
  int channels = 1;                 // sensors scored together, 1..kMaxChannels; with block_hops,
                                    // channels * block_hops <= kMaxPhases
  float scaler_horizon = 30000.0f;  // samples over which level and spread adapt
  float squash_width = 3.0f;        // z of this size maps to 0.5 + 0.5 tanh(1)
  int scales = 2;                   // how many entries of `scale` are used (1..kMaxScales)
  int scale[kMaxScales] = {32, 16}; // samples per block of each stream
  bool scale_agreement = true;      // several scales: all must be surprised (min), else max
  int block_hops = 2;               // 1..kMaxHops: a block mean every scale/block_hops samples
  SymbolModelConfig symbol{};
  bool use_range = true;            // new-extreme path (see RangeWatch)
  RangeWatchConfig range{};
  bool use_spikes = true;           // sample-level spike/step path (see SpikeDetector)
  SpikeDetectorConfig spike{};
  int rest_period = 500;            // samples over which the bar set by an alarm falls back to 0
  float escalation = 0.25f;         // a report must beat the decaying bar by this fraction
  float score_bits = 16.0f;         // surprise (bits) that maps to score 1
  int warmup = 150;                 // samples before any non-zero score
  int block_phase = 0;              // samples already counted in the first block
  float alarm_threshold = 0.5f;     // label threshold used by front ends (NAB sweeps its own)
};

// Checks a configuration; returns nullptr when valid, otherwise a static message naming the
// first bad field.
const char* validate(const DetectorConfig& cfg);

class Detector {
 public:
  // `cfg` should pass validate(); out-of-range fields are clamped so the core never fails.
  explicit Detector(const DetectorConfig& cfg = {});

  // One sample of a one-channel detector (a multi-channel detector ignores it and returns 0).
  float update(int64_t timestamp_ms, float value);
  // One sample of every channel: values[0 .. config().channels - 1]. A sample with any
  // non-finite value (a missing reading) teaches nothing and scores 0.
  float update(int64_t timestamp_ms, const float* values);

  const DetectorConfig& config() const { return cfg_; }
  uint32_t samples_seen() const { return count_; }
  // Surprise (bits) of the last sample before shaping, and its parts (0 when a part is silent;
  // with several channels, the largest over channels).
  float last_surprise() const { return last_surprise_; }
  float last_stream_surprise(int s) const { return stream_bits_[s]; }
  const SymbolModel& stream(int s) const { return streams_[s]; }
  float last_spike_surprise() const { return spike_bits_; }
  float last_range_surprise() const { return range_bits_; }

 private:
  float block_surprise(const float* z, int day_bin);

  DetectorConfig cfg_;
  RobustScaler scaler_[kMaxChannels];
  BlockAverager blocks_[kMaxChannels][kMaxScales];
  SymbolModel streams_[kMaxScales];  // shared by the channels
  float stream_bits_[kMaxScales] = {};
  // The last surprises of each channel's stream (ring; every channel's windows end together),
  // for the agreement between scales.
  static constexpr int kRecent = 8;
  float recent_bits_[kMaxChannels][kMaxScales][kRecent] = {};
  int recent_pos_[kMaxScales] = {};
  int coarsest_ = 0;
  SpikeDetector spikes_[kMaxChannels];
  RangeWatch range_[kMaxChannels];
  float range_bits_ = 0.0f;
  float spike_bits_ = 0.0f;
  AlarmShaper shaper_;
  float last_surprise_ = 0.0f;
  uint32_t count_ = 0;
};

}  // namespace edgelm::anomaly
