// Each detector stage on its own.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "edgelm/anomaly/alarm_shaper.hpp"
#include "edgelm/anomaly/block_averager.hpp"
#include "edgelm/anomaly/count_table.hpp"
#include "edgelm/anomaly/fast_math.hpp"
#include "edgelm/anomaly/linear_predictor.hpp"
#include "edgelm/anomaly/range_watch.hpp"
#include "edgelm/anomaly/robust_scaler.hpp"
#include "edgelm/anomaly/spike_detector.hpp"
#include "edgelm/anomaly/symbol_model.hpp"

namespace edgelm::anomaly {
namespace {

TEST(FastMath, MatchesTheStandardLibrary) {
  for (double x = 1e-6; x < 1e6; x *= 1.37) EXPECT_NEAR(fm::log2(static_cast<float>(x)), std::log2(x), 2e-5) << x;
  for (double x = -30; x < 30; x += 0.37)
    EXPECT_NEAR(fm::exp2(static_cast<float>(x)) / std::exp2(x), 1.0, 2e-5) << x;
  EXPECT_NEAR(fm::exp(1.0f), 2.718281828f, 1e-4f);
  EXPECT_EQ(fm::sqrt(-1.0f), 0.0f);
}

TEST(RobustScaler, NormalisesAndIgnoresOneOutlier) {
  RobustScaler s(1000.0f);
  for (int i = 0; i < 2000; ++i) s.update(i % 2 ? 12.0f : 8.0f);  // level 10, spread 2
  EXPECT_NEAR(s.level(), 10.0f, 0.2f);
  EXPECT_NEAR(s.spread(), 2.0f, 0.2f);
  const float z = s.update(1000.0f);
  EXPECT_GT(z, 300.0f);
  EXPECT_NEAR(s.level(), 10.0f, 0.3f);  // the outlier's pull is clipped
}

TEST(RobustScaler, FirstSamplesScoreZero) {
  RobustScaler s;
  EXPECT_EQ(s.update(5.0f), 0.0f);
  EXPECT_EQ(s.update(500.0f), 0.0f);
}

TEST(BlockAverager, EmitsOneMeanPerBlock) {
  BlockAverager b(4);
  float mean = 0;
  int emitted = 0;
  for (int i = 1; i <= 12; ++i)
    if (b.add(static_cast<float>(i), mean)) {
      ++emitted;
      EXPECT_FLOAT_EQ(mean, static_cast<float>(i) - 1.5f);
    }
  EXPECT_EQ(emitted, 3);
  BlockAverager shifted(4, 3);  // phase: the first block closes after one sample
  EXPECT_TRUE(shifted.add(7.0f, mean));
}

TEST(AlarmShaper, OneReportPerEventWithADecayingBar) {
  AlarmShaper a(10);
  EXPECT_EQ(a.update(0.0f), 0.0f);  // nothing is never reported
  EXPECT_EQ(a.update(5.0f), 5.0f);
  EXPECT_EQ(a.update(4.0f), 0.0f);  // below the bar (5 * 9/10): same event
  EXPECT_EQ(a.update(6.0f), 6.0f);  // escalation is reported and raises the bar
  // The bar falls linearly from 6 to 0 over 10 samples: 3 passes once it is below 3.
  for (int k = 1; k <= 5; ++k) EXPECT_EQ(a.update(3.0f), 0.0f) << k;
  EXPECT_EQ(a.update(3.0f), 3.0f);
  for (int k = 0; k < 10; ++k) a.update(0.0f);
  EXPECT_EQ(a.update(0.5f), 0.5f);  // after a full rest period anything positive reports
}

TEST(BlockAverager, OverlappingWindowsSlideBySubBlocks) {
  BlockAverager b(8, 0, 2);  // window of 8, a mean every 4 samples
  EXPECT_EQ(b.hop(), 4);
  std::vector<std::pair<int, float>> out;
  float mean = 0.0f;
  for (int i = 0; i < 20; ++i)
    if (b.add(static_cast<float>(i), mean)) out.emplace_back(i, mean);
  // The first window is full after 8 samples; then every 4 samples, the mean of the last 8.
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0].first, 7);
  EXPECT_FLOAT_EQ(out[0].second, 3.5f);
  EXPECT_EQ(out[1].first, 11);
  EXPECT_FLOAT_EQ(out[1].second, 7.5f);
  EXPECT_EQ(out[3].first, 19);
  EXPECT_FLOAT_EQ(out[3].second, 15.5f);
}

TEST(BlockAverager, OneHopIsPlainBlocks) {
  BlockAverager a(6), b(6, 0, 1);
  float ma = 0.0f, mb = 0.0f;
  for (int i = 0; i < 60; ++i) {
    const float x = static_cast<float>((i * 7) % 11);
    const bool ea = a.add(x, ma), eb = b.add(x, mb);
    ASSERT_EQ(ea, eb) << i;
    if (ea) ASSERT_EQ(ma, mb) << i;
  }
}

TEST(AlarmShaper, EscalationMarginAppliesToRepeatableSurprisesOnly) {
  AlarmShaper s(100, 0.25f);
  EXPECT_EQ(s.update(8.0f), 8.0f);
  // Right after: a slightly stronger block surprise (the same event seen by the next
  // overlapping block) is not a new alarm, a clearly stronger one is.
  EXPECT_EQ(s.update(9.0f), 0.0f);
  EXPECT_EQ(s.update(10.5f), 10.5f);
  // A sample-level surprise (new extreme, spike) only has to beat the decaying bar.
  EXPECT_EQ(s.update(11.0f, false), 11.0f);
  AlarmShaper plain(100);  // escalation 0: the original rule
  EXPECT_EQ(plain.update(8.0f), 8.0f);
  EXPECT_EQ(plain.update(8.5f), 8.5f);
}

TEST(CountTable, SmoothedProbabilitiesAndForgetting) {
  CountTable<2> t;
  EXPECT_FLOAT_EQ(t.prob(0, 3, 4, 1.0f), 0.25f);
  for (int i = 0; i < 6; ++i) t.learn(0, 1, 255);
  EXPECT_FLOAT_EQ(t.prob(0, 1, 4, 1.0f), 7.0f / 10.0f);
  EXPECT_FLOAT_EQ(t.prob(1, 1, 4, 1.0f), 0.25f);  // contexts are independent
  // With cap 10: four more observations reach the cap; the fifth halves {6, 4} to {3, 2} first.
  for (int i = 0; i < 5; ++i) t.learn(0, 2, 10);
  EXPECT_EQ(t.total(0), 6);
  EXPECT_FLOAT_EQ(t.prob(0, 2, 4, 1.0f), 4.0f / 10.0f);
  EXPECT_FLOAT_EQ(t.prob(0, 1, 4, 1.0f), 4.0f / 10.0f);
}

TEST(LinearPredictor, LearnsAnAutoregressiveProcess) {
  // x_t = 0.9 x_{t-1} + small noise: after training the one-step error is small.
  LinearPredictor p(0.1f);
  float x = 1.0f, err_late = 0.0f;
  uint32_t r = 1;
  for (int i = 0; i < 5000; ++i) {
    r = r * 1664525u + 1013904223u;
    const float noise = (static_cast<float>(r >> 8) / 16777216.0f - 0.5f) * 0.01f;
    x = 0.9f * x + noise + (i % 200 == 0 ? 1.0f : 0.0f);
    const float e = p.update(x);
    if (i >= 4000) err_late += e;
  }
  EXPECT_LT(err_late / 1000.0f, 0.02f);
}

TEST(SymbolModel, RepetitionIsCheapAndNoveltyIsDear) {
  SymbolModel m;
  float bits_repeat = 0.0f;
  for (int i = 0; i < 600; ++i) {
    const float u = (i % 6) < 3 ? 0.2f : 0.8f;  // a square wave
    const float b = m.update(u, (i / 3) % 24);
    if (i >= 500) bits_repeat += b / 100.0f;
  }
  const float bits_novel = m.update(0.5f, 0);  // a level never seen
  EXPECT_LT(bits_repeat, 2.0f);
  EXPECT_GT(bits_novel, 6.0f);
}

TEST(SymbolModel, ExpertMaskSelectsExperts) {
  SymbolModelConfig only_order0;
  only_order0.expert_mask = 1u << SymbolModel::kOrder0;
  SymbolModel m(only_order0);
  for (int i = 0; i < 100; ++i) m.update(0.5f, i % 24);
  m.update(0.5f, 3);
  EXPECT_LT(m.expert_prob(SymbolModel::kOrder0), 1.0f);
  EXPECT_EQ(m.expert_prob(SymbolModel::kTimeOfDay), 1.0f);  // off
  EXPECT_EQ(m.expert_prob(SymbolModel::kPredictor), 1.0f);
}

TEST(SymbolModel, InterleavedPhasesShareWhatTheyLearn) {
  // Two interleaved copies of a period-4 pattern (hops 2): each phase sees its own sequence
  // 0,1,2,3,... as context, so once learned the pattern is cheap in both phases, and a value
  // that breaks one phase's pattern is dear.
  SymbolModel m({}, 2);
  const float pattern[4] = {0.1f, 0.35f, 0.6f, 0.85f};
  float late = 0.0f;
  for (int i = 0; i < 800; ++i) {
    const float bits = m.update(pattern[(i / 2) % 4], -1);
    if (i >= 700) late = std::max(late, bits);
  }
  EXPECT_LT(late, 1.5f);
  // Phase of update 800 expects pattern[0] after pattern[3]; pattern[2] breaks it.
  EXPECT_GT(m.update(pattern[2], -1), 3.0f * late + 2.0f);
}

TEST(SpikeDetector, OnlyRecordBreakingResidualsScore) {
  SpikeDetector d;
  uint32_t r = 7;
  float worst_noise = 0.0f;
  for (int i = 0; i < 3000; ++i) {
    r = r * 1664525u + 1013904223u;
    const float z = static_cast<float>(r >> 8) / 16777216.0f - 0.5f;
    const float b = d.update(z);
    if (i > 500) worst_noise = std::max(worst_noise, b);
  }
  EXPECT_LT(worst_noise, 2.0f);
  EXPECT_GT(d.update(20.0f), 20.0f);  // a residual ~20x the record
}

}  // namespace
}  // namespace edgelm::anomaly

namespace edgelm::anomaly {
namespace {

TEST(RangeWatch, FlagsOnlyValuesBeyondEverythingSeen) {
  RangeWatchConfig cfg;
  cfg.warmup = 10;
  RangeWatch r(cfg);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(r.update(static_cast<float>(i % 10)), 0.0f);  // range 0..9
  EXPECT_EQ(r.update(9.4f), 0.0f);   // within the 5% tolerance (0.45)
  EXPECT_EQ(r.update(-0.4f), 0.0f);
  EXPECT_EQ(r.update(10.0f), cfg.bits);
  EXPECT_EQ(r.update(-2.0f), cfg.bits);
  EXPECT_EQ(r.update(10.0f), 0.0f);  // now part of the range
}

TEST(RangeWatch, OldExtremesFadeWithTheHorizon) {
  RangeWatchConfig cfg;
  cfg.warmup = 1;
  cfg.horizon = 100.0f;
  RangeWatch r(cfg);
  r.update(0.0f);
  r.update(100.0f);  // one wild value
  for (int i = 0; i < 2000; ++i) r.update(static_cast<float>(i % 2));
  EXPECT_EQ(r.update(50.0f), cfg.bits);  // the old maximum has relaxed toward the data
}

}  // namespace
}  // namespace edgelm::anomaly
