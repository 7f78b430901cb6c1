// The forward pass against llama.cpp on the real SmolLM2 weights: the same logits and the same
// greedy tokens, token for token (fixtures from tests/oracle/gen_model_fixtures.py).
#include <algorithm>
#include <cmath>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "edgelm/model.hpp"
#include "edgelm/session.hpp"
#include "support/oracle_suite.hpp"

namespace edgelm {
namespace {

using nlohmann::json;
using test::argmax;

class SmolLM2Oracle : public test::OracleSuite<SmolLM2Oracle> {
 public:
  static constexpr const char* kFixture = "model/smollm2.json";
};

// The forward pass follows llama.cpp's CPU arithmetic operation for operation (8-bit activation
// rounding, the lane order of every dot product, its polynomial exp, fused multiply-adds where
// its compiled code has them), so logits agree to the last bit on CPUs with fused multiply-add;
// the tolerance only absorbs the fixture's decimal round trip.
constexpr double kLogitTolerance = 1e-4;

TEST_P(SmolLM2Oracle, TokensLogitsAndGreedyMatchLlamaCpp) {
  ASSERT_TRUE(model_) << "model not loaded";
  const json& c = fixture_["cases"][GetParam()];
  const std::string prompt = c["prompt"];
  const auto want_tokens = c["tokens"].get<std::vector<int32_t>>();
  const auto ids = model_->tokenizer().encode(prompt, model_->tokenizer().add_bos(), true);
  ASSERT_EQ(ids, want_tokens) << "tokenization differs for: " << prompt;

  // One and two threads alternate: splitting rows between threads must not change any sum.
  Session s(model_, {.n_ctx = 512, .n_threads = 1 + GetParam() % 2});
  const size_t V = model_->config().n_vocab;
  std::span<const float> all = s.eval_all(ids);
  double max_diff = 0;
  for (const json& t : c["top5"]) {
    const size_t pos = t["pos"];
    std::span<const float> row = all.subspan(pos * V, V);
    const auto want_ids = t["ids"].get<std::vector<int32_t>>();
    const auto want_logits = t["logits"].get<std::vector<double>>();
    EXPECT_EQ(argmax(row), want_ids[0]) << "top token at position " << pos;
    for (size_t k = 0; k < want_ids.size(); ++k) {
      const double d = std::fabs(row[want_ids[k]] - want_logits[k]);
      max_diff = std::max(max_diff, d);
      EXPECT_LT(d, kLogitTolerance) << "logit of token " << want_ids[k] << " at position " << pos << ": ours "
                         << row[want_ids[k]] << ", llama.cpp " << want_logits[k];
    }
  }
  RecordProperty("max_logit_diff", std::to_string(max_diff));
  std::printf("[ oracle   ] case %d: largest top-5 logit difference vs llama.cpp %.4f\n", GetParam(), max_diff);

  // Greedy continuation, token for token (past end-of-generation tokens too, as the oracle did).
  std::vector<int32_t> got;
  std::span<const float> last = all.subspan((ids.size() - 1) * V, V);
  std::vector<float> row(last.begin(), last.end());
  const auto want = c["greedy"].get<std::vector<int32_t>>();
  for (size_t i = 0; i < want.size(); ++i) {
    const int32_t next = argmax(row);
    got.push_back(next);
    const int32_t one[1] = {next};
    auto l = s.eval(one);
    row.assign(l.begin(), l.end());
  }
  size_t same = 0;
  while (same < want.size() && got[same] == want[same]) ++same;
  std::printf("[ oracle   ] case %d: greedy matches %zu/%zu tokens\n", GetParam(), same, want.size());
  EXPECT_EQ(got, want) << "greedy continuation differs from llama.cpp at step " << same << " for: " << prompt;
}

INSTANTIATE_TEST_SUITE_P(Prompts, SmolLM2Oracle, ::testing::Range(0, 13));

}  // namespace
}  // namespace edgelm
