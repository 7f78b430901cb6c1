// generate(): the context shift when the context fills.
#include <algorithm>
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "edgelm/model.hpp"
#include "edgelm/sampler.hpp"
#include "edgelm/session.hpp"
#include "support/test_models.hpp"

namespace edgelm {
namespace {

TEST(Generate, ContextShiftKeepsThePrefixAndEqualsAFreshEvaluation) {
  const std::string path = test::require_model("SmolLM2-135M-Instruct.Q4_1.gguf");
  ASSERT_FALSE(path.empty());
  const auto model = Model::load(path);
  const std::vector<int32_t> prompt = model->tokenizer().encode("1, 2, 3, 4, 5, 6,", false, false);
  Session s(model, {.n_ctx = 32, .n_threads = 2});
  Sampler greedy(SamplerParams{.temp = 0});
  std::vector<int> drops;
  const ContextShift shift{.n_keep = 4, .on_shift = [&](int n) { drops.push_back(n); }};
  std::vector<int32_t> out;
  const int n = generate(s, greedy, prompt, 70, [&](int32_t t) { out.push_back(t); return true; }, 0, &shift);
  EXPECT_EQ(n, 70);
  ASSERT_GE(drops.size(), 2u) << "70 tokens after a prompt in 32 positions need several shifts";
  for (int d : drops) EXPECT_EQ(d, (32 - 4) / 2);
  const std::vector<int32_t> held = s.tokens();
  ASSERT_LE(held.size(), 32u);
  EXPECT_TRUE(std::equal(prompt.begin(), prompt.begin() + 4, held.begin())) << "the kept prefix was dropped";
  EXPECT_EQ(held.back(), out.back()) << "the last token was not fed back";
  EXPECT_TRUE(std::equal(held.begin() + 4, held.end(), out.end() - static_cast<std::ptrdiff_t>(held.size() - 4)))
      << "what follows the prefix is not the most recent text";

  // The shifted cache holds what a fresh evaluation of the same tokens gives: the next logits
  // agree (within the rounding that differs between batched and one-token evaluation).
  const int32_t probe[1] = {out.back()};
  s.truncate(0, static_cast<int>(held.size()) - 1);
  const std::span<const float> got = s.eval(probe);
  const std::vector<float> shifted(got.begin(), got.end());
  Session fresh(model, {.n_ctx = 32, .n_threads = 2});
  const std::span<const float> want = fresh.eval(held);
  float scale = 0, worst = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    scale = std::max(scale, std::abs(want[i]));
    worst = std::max(worst, std::abs(want[i] - shifted[i]));
  }
  EXPECT_LT(worst, 0.02f * scale);
  EXPECT_EQ(std::max_element(shifted.begin(), shifted.end()) - shifted.begin(),
            std::max_element(want.begin(), want.end()) - want.begin());
}

TEST(Generate, StopsAtAFullContextWithoutAShiftOrWhenNothingMayBeDropped) {
  const std::string path = test::require_model("SmolLM2-135M-Instruct.Q4_1.gguf");
  ASSERT_FALSE(path.empty());
  const auto model = Model::load(path);
  const std::vector<int32_t> prompt = model->tokenizer().encode("1, 2, 3, 4, 5, 6,", false, false);
  for (const bool keep_all : {false, true}) {
    Session s(model, {.n_ctx = 24, .n_threads = 2});
    Sampler greedy(SamplerParams{.temp = 0});
    const ContextShift shift{.n_keep = 24};
    const int n = generate(s, greedy, prompt, 70, [](int32_t) { return true; }, 0, keep_all ? &shift : nullptr);
    EXPECT_EQ(n, 24 - static_cast<int>(prompt.size()) + 1) << (keep_all ? "n_keep fills the context" : "no shift");
    EXPECT_EQ(s.n_past(), 24);
  }
}

}  // namespace
}  // namespace edgelm
