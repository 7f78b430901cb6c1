// Sampler tests. Statistical checks use fixed seeds, so they are deterministic; their thresholds
// are chi-square critical values at p = 0.001, so a correct sampler passes them for almost every
// seed and a wrong distribution fails them.
#include "edgelm/sampler.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "edgelm/error.hpp"

namespace edgelm {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Every filter off: the draw is plain softmax(logits / temp).
SamplerParams plain(float temp, uint64_t seed = 1) {
  SamplerParams p;
  p.temp = temp;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = seed;
  return p;
}

SamplerParams greedy() { return plain(0.0f); }

// plain(1, seed) with one filter set: that filter alone decides which tokens survive.
template <typename T>
SamplerParams only(T SamplerParams::*filter, T value, uint64_t seed) {
  SamplerParams p = plain(1.0f, seed);
  p.*filter = value;
  return p;
}

std::vector<float> log_of(const std::vector<double>& probs) {
  std::vector<float> logits;
  for (double p : probs) logits.push_back(static_cast<float>(std::log(p)));
  return logits;
}

std::vector<float> random_logits(size_t n, float stddev, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, stddev);
  std::vector<float> logits(n);
  for (float& l : logits) l = normal(rng);
  return logits;
}

std::vector<int> draw_counts(Sampler& s, const std::vector<float>& logits, int draws) {
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < draws; ++i) {
    const int32_t tok = s.sample(logits);
    EXPECT_GE(tok, 0);
    EXPECT_LT(static_cast<size_t>(tok), logits.size());
    ++counts[tok];
  }
  return counts;
}

std::set<int32_t> seen_tokens(Sampler& s, const std::vector<float>& logits, int draws) {
  std::set<int32_t> seen;
  for (int i = 0; i < draws; ++i) seen.insert(s.sample(logits));
  return seen;
}

// The same from a fresh sampler with parameters p.
std::vector<int> draw_counts(const SamplerParams& p, const std::vector<float>& logits, int draws) {
  Sampler s(p);
  return draw_counts(s, logits, draws);
}

std::set<int32_t> seen_tokens(const SamplerParams& p, const std::vector<float>& logits, int draws) {
  Sampler s(p);
  return seen_tokens(s, logits, draws);
}

double entropy_of(const std::vector<int>& counts) {
  const double total = std::accumulate(counts.begin(), counts.end(), 0.0);
  double h = 0.0;
  for (int c : counts) {
    if (c > 0) h -= (c / total) * std::log(c / total);
  }
  return h;
}

std::vector<double> softmax(const std::vector<float>& logits, double temp) {
  const double max = *std::max_element(logits.begin(), logits.end());
  std::vector<double> probs;
  double total = 0.0;
  for (float l : logits) total += std::exp((l - max) / temp);
  for (float l : logits) probs.push_back(std::exp((l - max) / temp) / total);
  return probs;
}

// The llama.cpp default chain written the obvious way — penalties from a map, one full sort,
// double precision — as an independent reference for the optimised sampler.
std::vector<double> reference_probs(std::vector<float> logits, const SamplerParams& p,
                                    const std::vector<int32_t>& window) {
  std::map<int32_t, int> counts;
  for (int32_t t : window) ++counts[t];
  for (auto [t, c] : counts) {
    float& l = logits[t];
    l = l <= 0 ? l * p.repeat_penalty : l / p.repeat_penalty;
    l -= c * p.frequency_penalty + p.presence_penalty;
  }
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < order.size()) order.resize(p.top_k);

  const double max = logits[order[0]];
  double total = 0.0;
  for (int32_t t : order) total += std::exp(logits[t] - max);
  if (p.top_p < 1.0f) {
    double mass = 0.0;
    for (size_t i = 0; i < order.size(); ++i) {
      mass += std::exp(logits[order[i]] - max) / total;
      if (mass >= p.top_p) {
        order.resize(i + 1);
        break;
      }
    }
  }
  if (p.min_p > 0.0f) {
    std::erase_if(order, [&](int32_t t) { return std::exp(logits[t] - max) < p.min_p; });
  }

  std::vector<double> probs(logits.size(), 0.0);
  double kept = 0.0;
  for (int32_t t : order) kept += std::exp((logits[t] - max) / p.temp);
  for (int32_t t : order) probs[t] = std::exp((logits[t] - max) / p.temp) / kept;
  return probs;
}

// Pearson chi-square of observed counts against expected probabilities. Cells expected fewer than
// 5 times are pooled (the test's usual validity rule); a draw of an impossible token fails.
void expect_matches_distribution(const std::vector<int>& counts, const std::vector<double>& probs,
                                 const std::string& what) {
  const double draws = std::accumulate(counts.begin(), counts.end(), 0.0);
  double chi2 = 0.0, pooled_obs = 0.0, pooled_exp = 0.0;
  int cells = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (probs[i] == 0.0) {
      EXPECT_EQ(counts[i], 0) << what << ": drew token " << i << " which has probability 0";
      continue;
    }
    const double expected = probs[i] * draws;
    if (expected < 5.0) {
      pooled_obs += counts[i];
      pooled_exp += expected;
      continue;
    }
    chi2 += (counts[i] - expected) * (counts[i] - expected) / expected;
    ++cells;
  }
  if (pooled_exp > 0.0) {
    chi2 += (pooled_obs - pooled_exp) * (pooled_obs - pooled_exp) / pooled_exp;
    ++cells;
  }
  const int dof = std::max(1, cells - 1);
  // Wilson–Hilferty approximation of the 0.999 quantile of chi-square(dof).
  const double z = 3.0902, a = 2.0 / (9.0 * dof);
  const double critical = dof * std::pow(1.0 - a + z * std::sqrt(a), 3.0);
  EXPECT_LT(chi2, critical) << what << ": chi-square " << chi2 << " with " << dof << " dof";
}

// --- greedy ----------------------------------------------------------------------------------

TEST(Sampler, GreedyPicksArgmax) {
  Sampler s(greedy());
  EXPECT_EQ(s.sample(std::vector<float>{0.1f, 3.0f, -2.0f, 2.9f}), 1);
  const auto logits = random_logits(50000, 3.0f, 7);
  const auto best = std::max_element(logits.begin(), logits.end()) - logits.begin();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(s.sample(logits), best);
}

TEST(Sampler, GreedyTiesGoToLowestId) {
  Sampler s(greedy());
  EXPECT_EQ(s.sample(std::vector<float>{1.0f, 5.0f, 2.0f, 5.0f, 5.0f}), 1);
}

TEST(Sampler, NegativeTemperatureIsGreedy) {
  SamplerParams p = plain(-1.0f);
  Sampler s(p);
  EXPECT_EQ(s.sample(std::vector<float>{0.0f, 0.5f, 0.4f}), 1);
}

// --- seeding ---------------------------------------------------------------------------------

TEST(Sampler, SameSeedGivesSameSequence) {
  const auto logits = random_logits(1000, 1.0f, 3);
  Sampler a(plain(1.0f, 42)), b(plain(1.0f, 42));
  for (int i = 0; i < 200; ++i) ASSERT_EQ(a.sample(logits), b.sample(logits)) << "draw " << i;
}

TEST(Sampler, DifferentSeedsDiffer) {
  const auto logits = random_logits(1000, 1.0f, 3);
  Sampler a(plain(1.0f, 42)), b(plain(1.0f, 43));
  int differing = 0;
  for (int i = 0; i < 100; ++i) differing += a.sample(logits) != b.sample(logits);
  EXPECT_GT(differing, 50);
}

TEST(Sampler, ResetReseedsAndClearsHistory) {
  const auto logits = random_logits(1000, 1.0f, 3);
  SamplerParams p = plain(1.0f, 9);
  p.repeat_penalty = 100.0f;
  Sampler s(p);
  std::vector<int32_t> first;
  for (int i = 0; i < 20; ++i) first.push_back(s.sample(logits));
  for (int32_t t : first) s.accept(t);
  s.reset();
  for (int i = 0; i < 20; ++i) EXPECT_EQ(s.sample(logits), first[i]) << "draw " << i;
}

// --- distribution ----------------------------------------------------------------------------

TEST(Sampler, TemperatureOneMatchesSoftmax) {
  const std::vector<float> logits{2.0f, 1.0f, 0.5f, 0.0f, -0.5f, -1.0f, -2.0f, -4.0f};
  Sampler s(plain(1.0f, 123));
  expect_matches_distribution(draw_counts(s, logits, 100000), softmax(logits, 1.0), "temp 1");
}

TEST(Sampler, TemperatureScalesLogits) {
  const std::vector<float> logits{2.0f, 1.0f, 0.5f, 0.0f, -0.5f, -1.0f, -2.0f, -4.0f};
  for (double temp : {0.5, 2.0}) {
    Sampler s(plain(static_cast<float>(temp), 77));
    expect_matches_distribution(draw_counts(s, logits, 100000), softmax(logits, temp),
                                "temp " + std::to_string(temp));
  }
}

TEST(Sampler, TemperatureLowersAndRaisesEntropy) {
  const auto logits = random_logits(64, 1.5f, 11);
  Sampler cold(plain(0.5f, 5)), neutral(plain(1.0f, 5)), hot(plain(2.0f, 5));
  const double h_cold = entropy_of(draw_counts(cold, logits, 20000));
  const double h_neutral = entropy_of(draw_counts(neutral, logits, 20000));
  const double h_hot = entropy_of(draw_counts(hot, logits, 20000));
  EXPECT_LT(h_cold, h_neutral - 0.2);
  EXPECT_GT(h_hot, h_neutral + 0.2);
}

TEST(Sampler, NoDrawFromNegativeInfinity) {
  Sampler s(plain(1.0f, 5));
  const auto seen = seen_tokens(s, {-kInf, 0.0f, -kInf, 0.0f, -kInf}, 2000);
  EXPECT_EQ(seen, (std::set<int32_t>{1, 3}));
}

// --- top-k -----------------------------------------------------------------------------------

TEST(Sampler, TopKOneEqualsGreedy) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const auto logits = random_logits(5000, 2.0f, seed);
    SamplerParams p = plain(1.5f, seed);
    p.top_k = 1;
    Sampler top1(p), argmax(greedy());
    EXPECT_EQ(top1.sample(logits), argmax.sample(logits)) << "logit seed " << seed;
  }
}

TEST(Sampler, TopKRestrictsToTheKBest) {
  const auto logits = random_logits(1000, 0.3f, 21);  // flat: all k survivors are drawn often
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  EXPECT_EQ(seen_tokens(only(&SamplerParams::top_k, 5, 8), logits, 1000),
            std::set<int32_t>(order.begin(), order.begin() + 5));
}

TEST(Sampler, TopKAtOrAboveVocabDisables) {
  const std::vector<float> logits{1.0f, 0.0f, -1.0f};
  for (int k : {3, 100, 0, -1})
    EXPECT_EQ(seen_tokens(only(&SamplerParams::top_k, k, 4), logits, 2000), (std::set<int32_t>{0, 1, 2})) << "k " << k;
}

// --- top-p and min-p -------------------------------------------------------------------------

TEST(Sampler, TopPKeepsExactlyTheNucleus) {
  const auto logits = log_of({0.05, 0.5, 0.15, 0.3});  // ranked: 1 (0.5), 3 (0.3), 2, 0
  struct Case { float top_p; std::set<int32_t> nucleus; };
  for (const Case& c : {Case{0.4f, {1}}, Case{0.75f, {1, 3}}, Case{0.9f, {1, 3, 2}},
                        Case{0.99f, {0, 1, 2, 3}}})
    EXPECT_EQ(seen_tokens(only(&SamplerParams::top_p, c.top_p, 31), logits, 3000), c.nucleus) << "top_p " << c.top_p;
  // Survivors are renormalised: with the nucleus {1, 3}, P(1) = 0.5 / 0.8.
  expect_matches_distribution(draw_counts(only(&SamplerParams::top_p, 0.75f, 32), logits, 50000),
                              {0.0, 0.625, 0.0, 0.375}, "nucleus {1, 3}");
}

TEST(Sampler, TopPNucleusLargerThanTheSortedHead) {
  // Near-equal tokens make the nucleus larger than the 64 tokens sorted up front, so its boundary
  // is found by the selection-on-mass path.
  const auto logits = random_logits(150, 0.3f, 41);
  SamplerParams p = plain(1.0f, 42);
  p.top_p = 0.7f;
  const auto expected = reference_probs(logits, p, {});
  ASSERT_GT(std::count_if(expected.begin(), expected.end(), [](double q) { return q > 0; }), 64);
  Sampler s(p);
  expect_matches_distribution(draw_counts(s, logits, 8000), expected,
                              "top_p 0.7 over 150 tokens");
}

TEST(Sampler, TopPBoundaryIsExactForEveryNucleusSize) {
  // Slowly falling logits: the nucleus is ids [0, size) and grows one token at a time with top_p.
  // 130 tokens: sizes past 64 take the selection-on-mass path. Every third size keeps the test
  // fast and still includes 65 (just past the sorted head of 64) and 98 (the boundary sitting on
  // the first selection split, rank 97).
  std::vector<float> logits(130);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = -0.01f * static_cast<float>(i);
  const auto probs = softmax(logits, 1.0);
  std::vector<double> mass(probs.size());
  std::partial_sum(probs.begin(), probs.end(), mass.begin());
  for (size_t size = 2; size < logits.size(); size += 3) {
    // Temperature comes after top-p, so 50 leaves the nucleus alone but makes its tokens nearly
    // equally likely: the last one is drawn ~16 times and cannot be missed; none beyond may be.
    SamplerParams p = plain(50.0f, size);
    p.top_p = static_cast<float>(((size >= 2 ? mass[size - 2] : 0.0) + mass[size - 1]) / 2);
    Sampler s(p);
    const auto seen = seen_tokens(s, logits, 16 * static_cast<int>(size));
    ASSERT_EQ(*seen.rbegin(), static_cast<int32_t>(size - 1)) << "top_p " << p.top_p;
  }
}

TEST(Sampler, MinPDropsTokensBelowAFractionOfTheTop) {
  const auto logits = log_of({0.06, 0.4, 0.2, 0.3, 0.04});  // top is token 1 at 0.4
  struct Case { float min_p; std::set<int32_t> kept; };
  // 0.2 * 0.4 = 0.08 keeps {1, 3, 2}; 0.12 * 0.4 = 0.048 also keeps 0; 1 keeps only the top.
  for (const Case& c : {Case{0.2f, {1, 2, 3}}, Case{0.12f, {0, 1, 2, 3}}, Case{1.0f, {1}},
                        Case{0.05f, {0, 1, 2, 3, 4}}})
    EXPECT_EQ(seen_tokens(only(&SamplerParams::min_p, c.min_p, 51), logits, 3000), c.kept) << "min_p " << c.min_p;
  expect_matches_distribution(draw_counts(only(&SamplerParams::min_p, 0.2f, 52), logits, 50000),
                              {0.0, 0.4 / 0.9, 0.2 / 0.9, 0.3 / 0.9, 0.0}, "min_p 0.2");
}

TEST(Sampler, TopPAndMinPTogetherKeepTheSmallerSet) {
  const auto logits = log_of({0.06, 0.4, 0.2, 0.3, 0.04});
  SamplerParams p = plain(1.0f, 61);
  p.top_p = 0.65f;  // nucleus {1, 3}
  p.min_p = 0.12f;  // keeps {0, 1, 2, 3}
  Sampler by_top_p(p);
  EXPECT_EQ(seen_tokens(by_top_p, logits, 3000), (std::set<int32_t>{1, 3}));
  p.top_p = 0.99f;  // nucleus {0, 1, 2, 3, 4}
  p.min_p = 0.6f;   // keeps {1, 3}
  Sampler by_min_p(p);
  EXPECT_EQ(seen_tokens(by_min_p, logits, 3000), (std::set<int32_t>{1, 3}));
}

TEST(Sampler, TemperatureAppliesAfterTopPAsInLlamaCpp) {
  // At temperature 1 the 0.6 nucleus is {0, 1}. Were temperature 0.5 applied first, token 0 alone
  // would hold 0.66 and be the whole nucleus; llama.cpp cuts first, then sharpens the survivors.
  const auto logits = log_of({0.5, 0.3, 0.2});
  SamplerParams p = plain(0.5f, 71);
  p.top_p = 0.6f;
  Sampler s(p);
  // Survivors {0, 1} at temperature 0.5: weights 0.25 and 0.09.
  expect_matches_distribution(draw_counts(s, logits, 50000), {0.25 / 0.34, 0.09 / 0.34, 0.0},
                              "top_p then temperature");
}

TEST(Sampler, MatchesReferenceChainOnRandomLogits) {
  struct Case { int top_k; float top_p, min_p, temp; };
  const Case cases[] = {
      {40, 0.95f, 0.05f, 0.8f},  // the defaults
      {0, 0.9f, 0.0f, 0.7f},     {0, 1.0f, 0.02f, 1.3f}, {200, 0.8f, 0.1f, 1.0f},
      {10, 1.0f, 0.0f, 2.0f},    {0, 0.5f, 0.3f, 0.6f},
  };
  uint64_t seed = 100;
  for (const Case& c : cases) {
    const auto logits = random_logits(200, 2.0f, seed);
    SamplerParams p = plain(c.temp, seed++);
    p.top_k = c.top_k;
    p.top_p = c.top_p;
    p.min_p = c.min_p;
    p.repeat_penalty = 1.3f;
    p.presence_penalty = 0.2f;
    p.frequency_penalty = 0.1f;
    // Penalise the current favourites so the penalties change the ranking the filters see.
    std::vector<int32_t> order(logits.size());
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + 4, order.end(),
                      [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
    const std::vector<int32_t> window{order[0], order[1], order[0], order[3], 1};
    Sampler s(p);
    for (int32_t t : window) s.accept(t);
    expect_matches_distribution(draw_counts(s, logits, 10000), reference_probs(logits, p, window),
                                "top_k " + std::to_string(c.top_k) + " top_p " +
                                    std::to_string(c.top_p) + " min_p " + std::to_string(c.min_p));
  }
}

TEST(Sampler, LargeVocabularyWithDefaults) {
  const auto logits = random_logits(262144, 2.0f, 81);
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + 40, order.end(),
                    [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  const std::set<int32_t> top40(order.begin(), order.begin() + 40);
  Sampler s;  // defaults: top_k 40, top_p 0.95, min_p 0.05, temp 0.8
  for (int32_t t : seen_tokens(s, logits, 10)) EXPECT_TRUE(top40.count(t)) << "token " << t;
}

// --- penalties -------------------------------------------------------------------------------

TEST(Sampler, RepetitionPenaltyDividesPositiveLogits) {
  SamplerParams p = greedy();
  p.repeat_penalty = 1.1f;
  Sampler s(p);
  const std::vector<float> logits{2.0f, 1.9f, -1.0f};
  EXPECT_EQ(s.sample(logits), 0);
  s.accept(0);  // 2.0 / 1.1 = 1.82 < 1.9
  EXPECT_EQ(s.sample(logits), 1);
}

TEST(Sampler, RepetitionPenaltyMultipliesNegativeLogits) {
  SamplerParams p = greedy();
  p.repeat_penalty = 1.1f;
  Sampler s(p);
  const std::vector<float> logits{-1.0f, -1.05f, -5.0f};
  EXPECT_EQ(s.sample(logits), 0);
  s.accept(0);  // -1.0 * 1.1 = -1.1 < -1.05; dividing would have made it -0.91, still first
  EXPECT_EQ(s.sample(logits), 1);
}

TEST(Sampler, RepetitionPenaltyBelowOneFavoursRepeats) {
  SamplerParams p = greedy();
  p.repeat_penalty = 0.5f;
  Sampler s(p);
  const std::vector<float> logits{2.0f, 1.5f};
  s.accept(1);  // 1.5 / 0.5 = 3
  EXPECT_EQ(s.sample(logits), 1);
}

TEST(Sampler, FrequencyPenaltyScalesWithCount) {
  const std::vector<float> logits{1.0f, 0.5f, 0.0f};
  SamplerParams p = greedy();
  p.frequency_penalty = 0.3f;
  Sampler s(p);
  s.accept(0);  // 1.0 - 0.3 = 0.7 > 0.5
  EXPECT_EQ(s.sample(logits), 0);
  s.accept(0);  // 1.0 - 0.6 = 0.4 < 0.5
  EXPECT_EQ(s.sample(logits), 1);
}

TEST(Sampler, PresencePenaltyIgnoresCount) {
  const std::vector<float> logits{1.0f, 0.5f, 0.0f};
  SamplerParams p = greedy();
  p.presence_penalty = 0.4f;
  Sampler s(p);
  for (int i = 0; i < 5; ++i) s.accept(0);  // 1.0 - 0.4 = 0.6 > 0.5 however often it appeared
  EXPECT_EQ(s.sample(logits), 0);
  p.presence_penalty = 0.6f;
  Sampler stronger(p);
  stronger.accept(0);  // 1.0 - 0.6 = 0.4 < 0.5
  EXPECT_EQ(stronger.sample(logits), 1);
}

TEST(Sampler, NegativePresencePenaltyBoosts) {
  SamplerParams p = greedy();
  p.presence_penalty = -1.0f;
  Sampler s(p);
  s.accept(2);
  EXPECT_EQ(s.sample(std::vector<float>{1.0f, 0.5f, 0.2f}), 2);
}

TEST(Sampler, PenaltiesCombineInLlamaCppOrder) {
  // Repetition first, then frequency and presence: (2 / 2) - 2 * 0.1 - 0.3 = 0.5.
  SamplerParams p = greedy();
  p.repeat_penalty = 2.0f;
  p.frequency_penalty = 0.1f;
  p.presence_penalty = 0.3f;
  Sampler s(p);
  s.accept(0);
  s.accept(0);
  EXPECT_EQ(s.sample(std::vector<float>{2.0f, 0.49f}), 0);
  EXPECT_EQ(s.sample(std::vector<float>{2.0f, 0.51f}), 1);
}

TEST(Sampler, PenaltyWindowIsRespected) {
  const std::vector<float> logits{2.0f, 1.9f, 0.0f, 0.0f};
  SamplerParams p = greedy();
  p.repeat_penalty = 1.5f;
  p.repeat_last_n = 3;
  Sampler s(p);
  s.accept(0);
  s.accept(2);
  s.accept(3);  // window {0, 2, 3}: token 0 still penalised
  EXPECT_EQ(s.sample(logits), 1);
  s.accept(3);  // window {2, 3, 3}: token 0 fell out
  EXPECT_EQ(s.sample(logits), 0);
}

TEST(Sampler, ZeroWindowDisablesPenalties) {
  SamplerParams p = greedy();
  p.repeat_penalty = 10.0f;
  p.presence_penalty = 5.0f;
  p.repeat_last_n = 0;
  Sampler s(p);
  s.accept(0);
  EXPECT_EQ(s.sample(std::vector<float>{2.0f, 1.9f}), 0);
}

TEST(Sampler, HistoryBeyondVocabularyIsIgnored) {
  SamplerParams p = greedy();
  p.repeat_penalty = 2.0f;
  Sampler s(p);
  s.accept(1000);
  s.accept(0);
  EXPECT_EQ(s.sample(std::vector<float>{2.0f, 1.5f}), 1);
  EXPECT_THROW(s.accept(-1), Error);
}

// --- invalid input ---------------------------------------------------------------------------

TEST(Sampler, InvalidParamsThrowNamingTheParameter) {
  struct Case { const char* name; void (*set)(SamplerParams&); };
  const Case cases[] = {
      {"temp", [](SamplerParams& p) { p.temp = kNaN; }},
      {"temp", [](SamplerParams& p) { p.temp = kInf; }},
      {"top_p", [](SamplerParams& p) { p.top_p = 0.0f; }},
      {"top_p", [](SamplerParams& p) { p.top_p = -0.5f; }},
      {"top_p", [](SamplerParams& p) { p.top_p = 1.5f; }},
      {"top_p", [](SamplerParams& p) { p.top_p = kNaN; }},
      {"min_p", [](SamplerParams& p) { p.min_p = 1.01f; }},
      {"min_p", [](SamplerParams& p) { p.min_p = -0.1f; }},
      {"min_p", [](SamplerParams& p) { p.min_p = kNaN; }},
      {"repeat_penalty", [](SamplerParams& p) { p.repeat_penalty = 0.0f; }},
      {"repeat_penalty", [](SamplerParams& p) { p.repeat_penalty = kNaN; }},
      {"repeat_last_n", [](SamplerParams& p) { p.repeat_last_n = -1; }},
      {"presence_penalty", [](SamplerParams& p) { p.presence_penalty = kNaN; }},
      {"frequency_penalty", [](SamplerParams& p) { p.frequency_penalty = -kInf; }},
  };
  for (const Case& c : cases) {
    SamplerParams p;
    c.set(p);
    try {
      Sampler s(p);
      ADD_FAILURE() << "no error for a bad " << c.name;
    } catch (const Error& e) {
      const std::string msg = e.message();
      EXPECT_NE(msg.find(c.name), std::string::npos) << msg;
      EXPECT_NE(msg.find("valid"), std::string::npos) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
  }
}

TEST(Sampler, BoundaryParamsAreValid) {
  SamplerParams p;
  p.top_p = 1.0f;
  p.min_p = 1.0f;
  p.repeat_last_n = 0;
  p.temp = 0.0f;
  EXPECT_NO_THROW(Sampler{p});
  p.min_p = 0.0f;
  p.top_k = -5;
  p.temp = -2.0f;
  EXPECT_NO_THROW(Sampler{p});
}

// --- bad logits ------------------------------------------------------------------------------

TEST(Sampler, NaNLogitsAreNeverPicked) {
  const std::vector<float> logits{kNaN, 0.0f, kNaN, 0.5f, kNaN};
  Sampler g(greedy());
  EXPECT_EQ(g.sample(logits), 3);
  Sampler s(plain(1.0f, 91));
  EXPECT_EQ(seen_tokens(s, logits, 2000), (std::set<int32_t>{1, 3}));
  SamplerParams filtered;  // defaults: every filter on
  Sampler f(filtered);
  for (int32_t t : seen_tokens(f, logits, 2000)) EXPECT_TRUE(t == 1 || t == 3) << t;
}

TEST(Sampler, PositiveInfinityWins) {
  const std::vector<float> logits{1.0f, kInf, 3.0f, kInf};
  Sampler g(greedy());
  EXPECT_EQ(g.sample(logits), 1);
  Sampler s;
  EXPECT_EQ(seen_tokens(s, logits, 2000), (std::set<int32_t>{1, 3}));
}

TEST(Sampler, NoUsableLogitThrows) {
  Sampler s;
  Sampler g(greedy());
  for (Sampler* sampler : {&s, &g}) {
    EXPECT_THROW(sampler->sample(std::vector<float>{kNaN, kNaN}), Error);
    EXPECT_THROW(sampler->sample(std::vector<float>{-kInf, kNaN, -kInf}), Error);
    EXPECT_THROW(sampler->sample(std::vector<float>{}), Error);
  }
}

// --- the distribution behind a draw (speculative decoding's rejection rule) -----------------

TEST(Sampler, DistributionIsWhatSampleDrawsFrom) {
  const auto logits = random_logits(500, 1.0f, 33);
  SamplerParams p{.temp = 0.7f, .top_k = 12, .top_p = 0.9f, .min_p = 0.02f, .repeat_penalty = 1.3f, .seed = 5};
  Sampler s(p);
  for (int32_t t : {3, 17, 17, 250}) s.accept(t);
  const std::vector<TokenProb> dist = [&] {
    auto d = s.distribution(logits);
    return std::vector<TokenProb>(d.begin(), d.end());
  }();
  ASSERT_FALSE(dist.empty());
  ASSERT_LE(dist.size(), 12u);
  double total = 0;
  for (size_t i = 0; i < dist.size(); ++i) {
    total += dist[i].p;
    if (i) EXPECT_GE(dist[i - 1].p, dist[i].p) << "most likely first";
  }
  EXPECT_NEAR(total, 1.0, 1e-5);
  // The same sampler's draws land on these tokens with these frequencies.
  std::map<int32_t, int> counts;
  constexpr int kDraws = 20000;
  for (int i = 0; i < kDraws; ++i) ++counts[s.sample(logits)];
  for (const auto& [id, c] : counts) {
    const auto it = std::find_if(dist.begin(), dist.end(), [&](const TokenProb& t) { return t.id == id; });
    ASSERT_NE(it, dist.end()) << "drew token " << id << " outside the distribution";
    EXPECT_NEAR(static_cast<double>(c) / kDraws, it->p, 4 * std::sqrt(it->p * (1 - it->p) / kDraws) + 1e-3) << id;
  }
  Sampler greedy({.temp = 0});
  const auto g = greedy.distribution(logits);
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].id, greedy.sample(logits));
  EXPECT_EQ(g[0].p, 1.0f);
}

TEST(Sampler, DrawFromFollowsTheWeights) {
  Sampler s({.seed = 9});
  const std::vector<TokenProb> w = {{4, 3.0f}, {7, 0.0f}, {9, 1.0f}, {2, -1.0f}};
  std::map<int32_t, int> counts;
  for (int i = 0; i < 8000; ++i) ++counts[s.draw_from(w)];
  EXPECT_EQ(counts.size(), 2u) << "zero and negative weights are never drawn";
  EXPECT_NEAR(counts[4] / 8000.0, 0.75, 0.03);
  const std::vector<TokenProb> none = {{1, 0.0f}};
  EXPECT_THROW(s.draw_from(none), Error);
  for (int i = 0; i < 100; ++i) {
    const double u = s.uniform();
    EXPECT_GE(u, 0.0);
    EXPECT_LT(u, 1.0);
  }
}

}  // namespace
}  // namespace edgelm
