// NAB scorer against hand-computed cases. A 100-row file with one-minute rows has a 15-row
// probationary period; its window covers rows 50..59 (width 10).
//   sigma(y) = 2 / (1 + e^(5y)) - 1,  sigma(-1) = 0.98661429815
//   TP at the left edge:  y = -(59-50+1)/10 = -1    -> 1.0 * A_tp
//   TP at the right edge: y = -1/10                 -> sigma(-0.1)/sigma(-1) = 0.24824155 * A_tp
//   FP 3 rows after it:   y = 3 / (10-1)            -> sigma(1/3) = -0.68226179 -> * A_fp
//   FP > 3 widths after:  -A_fp;  missed window: -A_fn
#include <gtest/gtest.h>

#include <cmath>

#include "edgelm/anomaly/nab_scorer.hpp"

namespace edgelm::anomaly {
namespace {

constexpr int64_t kMinute = 60000;

ScoredSeries make_file(int rows, std::vector<std::pair<int, int>> windows, std::vector<int> detections,
                       std::string name = "cat/file.csv") {
  ScoredSeries s;
  s.name = name;
  s.category = name.substr(0, name.find('/'));
  for (int i = 0; i < rows; ++i) s.timestamp_ms.push_back(1'000'000'000'000LL + i * kMinute);
  s.score.assign(rows, 0.0f);
  for (int d : detections) s.score[d] = 1.0f;
  for (auto [a, b] : windows) s.windows.push_back({s.timestamp_ms[a], s.timestamp_ms[b]});
  return s;
}

double raw_at_one(const ScoredSeries& s, const NabProfile& p) {
  std::vector<ScoredSeries> v{s};
  return score_corpus_at(v, p, 1.0).raw;
}

TEST(NabScorer, ScaledSigmoidAndProbation) {
  EXPECT_NEAR(nab_scaled_sigmoid(-1.0), 0.98661429815, 1e-10);
  EXPECT_NEAR(nab_scaled_sigmoid(0.0), 0.0, 1e-12);
  EXPECT_EQ(nab_scaled_sigmoid(3.0), -1.0);
  EXPECT_EQ(nab_scaled_sigmoid(7.5), -1.0);
  EXPECT_EQ(nab_probationary_rows(100), 15u);
  EXPECT_EQ(nab_probationary_rows(4032), 604u);  // floor(604.8)
  EXPECT_EQ(nab_probationary_rows(22695), 750u);
}

TEST(NabScorer, TruePositiveAtLeftEdgeEarnsFullReward) {
  auto f = make_file(100, {{50, 59}}, {50});
  EXPECT_NEAR(raw_at_one(f, kNabStandard), 1.0, 1e-9);
  EXPECT_NEAR(raw_at_one(f, kNabLowFn), 1.0, 1e-9);
}

TEST(NabScorer, TruePositiveAtRightEdgeEarnsLittle) {
  auto f = make_file(100, {{50, 59}}, {59});
  EXPECT_NEAR(raw_at_one(f, kNabStandard), 0.24824155, 1e-7);
}

TEST(NabScorer, OnlyTheFirstDetectionInAWindowCounts) {
  auto early_and_late = make_file(100, {{50, 59}}, {52, 55, 59});
  auto early_only = make_file(100, {{50, 59}}, {52});
  EXPECT_NEAR(raw_at_one(early_and_late, kNabStandard), raw_at_one(early_only, kNabStandard), 1e-12);
  // y = -(59-52+1)/10 = -0.8
  EXPECT_NEAR(raw_at_one(early_only, kNabStandard), nab_scaled_sigmoid(-0.8) / nab_scaled_sigmoid(-1.0), 1e-12);
}

TEST(NabScorer, FalsePositiveShortlyAfterAWindowCostsLess) {
  // Row 62 is 3 rows past the window end: sigma(3/9) * A_fp, plus the window's TP at row 50.
  auto f = make_file(100, {{50, 59}}, {50, 62});
  EXPECT_NEAR(raw_at_one(f, kNabStandard), 1.0 - 0.11 * 0.68226179, 1e-7);
  EXPECT_NEAR(raw_at_one(f, kNabLowFp), 1.0 - 0.22 * 0.68226179, 1e-7);
}

TEST(NabScorer, FalsePositiveLongAfterAWindowCostsFullAfp) {
  // Row 95 is 36 rows (4 widths) past the end: -A_fp. The window itself is missed: -A_fn.
  auto f = make_file(100, {{50, 59}}, {95});
  EXPECT_NEAR(raw_at_one(f, kNabStandard), -0.11 - 1.0, 1e-12);
  EXPECT_NEAR(raw_at_one(f, kNabLowFp), -0.22 - 1.0, 1e-12);
  EXPECT_NEAR(raw_at_one(f, kNabLowFn), -0.11 - 2.0, 1e-12);
}

TEST(NabScorer, MissedWindowCostsAfnPerProfile) {
  auto f = make_file(100, {{50, 59}}, {});
  EXPECT_NEAR(raw_at_one(f, kNabStandard), -1.0, 1e-12);
  EXPECT_NEAR(raw_at_one(f, kNabLowFp), -1.0, 1e-12);
  EXPECT_NEAR(raw_at_one(f, kNabLowFn), -2.0, 1e-12);
}

TEST(NabScorer, FalsePositiveBeforeAnyWindowCostsFullAfp) {
  auto f = make_file(100, {{50, 59}}, {30, 50});
  EXPECT_NEAR(raw_at_one(f, kNabStandard), 1.0 - 0.11, 1e-12);
}

TEST(NabScorer, DetectionsInProbationAreIgnored) {
  auto f = make_file(100, {{50, 59}}, {3, 14, 50});
  EXPECT_NEAR(raw_at_one(f, kNabStandard), 1.0, 1e-12);
  auto g = make_file(100, {{50, 59}}, {15, 50});  // row 15 is the first scored row
  EXPECT_NEAR(raw_at_one(g, kNabStandard), 1.0 - 0.11, 1e-12);
}

TEST(NabScorer, NormalisesAgainstNullAndPerfectDetectors) {
  std::vector<ScoredSeries> v{make_file(100, {{50, 59}}, {59}), make_file(100, {{20, 29}, {60, 69}}, {20})};
  CorpusScore s = score_corpus_at(v, kNabStandard, 1.0);
  // null: every window missed = -3; perfect: +3. raw = 0.24824155 + (1 - 1).
  EXPECT_NEAR(s.null_raw, -3.0, 1e-12);
  EXPECT_NEAR(s.perfect_raw, 3.0, 1e-12);
  EXPECT_NEAR(s.raw, 0.24824155, 1e-7);
  EXPECT_NEAR(s.normalized, 100.0 * (0.24824155 + 3.0) / 6.0, 1e-5);
  ASSERT_EQ(s.files.size(), 2u);
  EXPECT_EQ(s.files[1].tp, 1);
  EXPECT_EQ(s.files[1].fn, 1);
}

TEST(NabScorer, WindowInsideProbationCountsOnlyForPerfect) {
  // NAB counts every labelled window for the perfect score but only scored ones as misses.
  auto f = make_file(100, {{2, 8}, {50, 59}}, {50});
  std::vector<ScoredSeries> v{f};
  CorpusScore s = score_corpus_at(v, kNabStandard, 1.0);
  EXPECT_NEAR(s.raw, 1.0, 1e-12);
  EXPECT_NEAR(s.null_raw, -1.0, 1e-12);
  EXPECT_NEAR(s.perfect_raw, 2.0, 1e-12);
}

TEST(NabScorer, OptimisesOneThresholdAcrossTheCorpus) {
  // File A: the window's left edge scores 0.9, noise outside scores 0.5 (45 rows of it).
  // File B: the left edge scores 0.6. Threshold 0.6 catches both windows with no FP (raw 2);
  // 0.5 adds 45 FPs; 0.9 misses B (raw 0); 1.1 misses both (raw -2).
  auto a = make_file(100, {{50, 59}}, {});
  auto b = make_file(100, {{50, 59}}, {}, "cat/b.csv");
  for (int i = 20; i < 45; ++i) a.score[i] = 0.5f;
  for (int i = 75; i < 95; ++i) a.score[i] = 0.5f;
  a.score[50] = 0.9f;
  b.score[50] = 0.6f;
  std::vector<ScoredSeries> v{a, b};
  CorpusScore s = score_corpus(v, kNabStandard);
  EXPECT_FLOAT_EQ(static_cast<float>(s.threshold), 0.6f);
  EXPECT_NEAR(s.raw, 2.0, 1e-12);
  EXPECT_NEAR(s.normalized, 100.0, 1e-9);
  // With no windows at all the best is to never fire.
  std::vector<ScoredSeries> quiet{make_file(100, {}, {40, 60})};
  CorpusScore q = score_corpus(quiet, kNabStandard);
  EXPECT_GT(q.threshold, 1.0);
  EXPECT_NEAR(q.raw, 0.0, 1e-12);
}

TEST(NabScorer, CategoriesAreScoredSeparately) {
  std::vector<ScoredSeries> v{make_file(100, {{50, 59}}, {50}, "one/a.csv"),
                              make_file(100, {{50, 59}}, {}, "two/b.csv")};
  CorpusScore s = score_corpus_at(v, kNabStandard, 1.0);
  ASSERT_EQ(s.categories.size(), 2u);
  EXPECT_EQ(s.categories[0].name, "one");
  EXPECT_NEAR(s.categories[0].normalized, 100.0, 1e-9);
  EXPECT_NEAR(s.categories[1].normalized, 0.0, 1e-9);
}

TEST(NabScorer, RepeatedTimestampsUseTheFirstOccurrenceLikeNab) {
  // A clock that repeats a minute: the window edge resolves to the first matching row.
  auto f = make_file(100, {{50, 59}}, {50});
  f.timestamp_ms[51] = f.timestamp_ms[50];
  auto rows = nab_row_weights(f);
  EXPECT_EQ(rows[49].window, -1);
  EXPECT_EQ(rows[50].window, 0);
  EXPECT_NEAR(rows[50].unweighted, nab_scaled_sigmoid(-1.0), 1e-12);
}

// Leave-one-category-out. Two categories, one 100-row file each, window at rows 50..59:
// a detection at row 50 is a full TP (1.0); an FP at row 95 (> 3 widths after) costs A_fp.
ScoredSeries scored(const std::string& name, std::vector<std::pair<int, float>> scores) {
  ScoredSeries s = make_file(100, {{50, 59}}, {}, name);
  for (auto [row, v] : scores) s.score[row] = v;
  return s;
}

TEST(NabScorer, LeaveOneCategoryOutEqualsTheFullScoreWhenOneThresholdFitsAll) {
  // a alone is perfect for any threshold in (0, 0.8], b alone in (0, 0.7]: the middles (0.4,
  // 0.35) catch both held-out detections.
  const std::vector<std::vector<ScoredSeries>> one = {{scored("a/x.csv", {{50, 0.8f}}), scored("b/y.csv", {{50, 0.7f}})}};
  const HeldOutScore h = leave_one_category_out(one, kNabStandard);
  EXPECT_NEAR(h.normalized, 100.0, 1e-9);
  EXPECT_EQ(h.categories, (std::vector<std::string>{"a", "b"}));
  EXPECT_NEAR(h.thresholds[0], 0.35, 1e-6);
  EXPECT_NEAR(h.thresholds[1], 0.4, 1e-6);
}

TEST(NabScorer, LeaveOneCategoryOutAppliesAThresholdChosenWithoutTheCategory) {
  // Category a alone wants a threshold above its FP at 0.5, which misses b's TP at 0.4; b alone
  // wants a threshold at or below 0.4, which lets a's FP through. Held out: a scores
  // 1 - 0.11, b scores -1 (missed). null = -2, perfect = 2: 100 (0.89 - 1 + 2) / 4 = 47.25.
  const std::vector<std::vector<ScoredSeries>> one = {
      {scored("a/x.csv", {{50, 0.9f}, {95, 0.5f}}), scored("b/y.csv", {{50, 0.4f}})}};
  const HeldOutScore h = leave_one_category_out(one, kNabStandard);
  EXPECT_NEAR(h.normalized, 47.25, 1e-9);
  ASSERT_EQ(h.thresholds.size(), 2u);
  EXPECT_LE(h.thresholds[0], 0.4);  // for a: chosen on b
  EXPECT_GT(h.thresholds[1], 0.4);  // for b: chosen on a
  // The full-corpus score, with one threshold chosen on both, is higher (0.4: 1 + 1 - 0.11).
  EXPECT_NEAR(score_corpus(one[0], kNabStandard).normalized, 100.0 * (1.89 + 2) / 4, 1e-9);
  // A configuration that separates both categories is chosen over one that does not.
  const std::vector<std::vector<ScoredSeries>> two = {
      {scored("a/x.csv", {{50, 0.9f}, {95, 0.95f}}), scored("b/y.csv", {{50, 0.4f}, {95, 0.5f}})},
      {scored("a/x.csv", {{50, 0.9f}}), scored("b/y.csv", {{50, 0.9f}})}};
  const HeldOutScore best = leave_one_category_out(two, kNabStandard);
  EXPECT_NEAR(best.normalized, 100.0, 1e-9);
  EXPECT_EQ(best.chosen, (std::vector<size_t>{1, 1}));
}

}  // namespace
}  // namespace edgelm::anomaly
