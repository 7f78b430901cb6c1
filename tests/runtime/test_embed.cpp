// Session::embed / embed_batch: the final hidden states that classifiers pool.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <unistd.h>

#include <gtest/gtest.h>

#include "edgelm/error.hpp"
#include "edgelm/model.hpp"
#include "edgelm/session.hpp"
#include "support/test_models.hpp"
#include "support/truncated_model.hpp"

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

// Early exit after block K gives exactly what a model file holding only the first K blocks
// gives: hidden states and logits alike, in a batch and token by token.
TEST(EarlyExit, SameAsAModelCutAfterTheBlock) {
  const std::string src = test::require_model("SmolLM2-135M-Instruct.Q4_1.gguf");
  ASSERT_FALSE(src.empty());
  const std::string cut = (std::filesystem::temp_directory_path() /
                           ("edgelm_early_exit_" + std::to_string(::getpid()) + ".gguf")).string();
  constexpr int K = 5;
  test::write_truncated_model(src, K, cut);
  auto full = Model::load(src);
  auto shallow = Model::load(cut);
  std::filesystem::remove(cut);  // stays mapped
  ASSERT_EQ(shallow->config().n_layer, K);
  const auto ids = full->tokenizer().encode("turn the heat up to 72 and play some jazz", true, false);
  Session a(full, {.n_ctx = 64, .n_threads = 2, .n_batch = 64, .n_layers = K});
  Session b(shallow, {.n_ctx = 64, .n_threads = 2, .n_batch = 64});
  Session all(full, {.n_ctx = 64, .n_threads = 2, .n_batch = 64});
  const auto sa = a.embed(ids);
  const std::vector<float> ha(sa.begin(), sa.end());
  const auto hb = b.embed(ids);
  ASSERT_EQ(ha.size(), hb.size());
  for (size_t i = 0; i < ha.size(); ++i) ASSERT_EQ(ha[i], hb[i]) << i;
  const auto h_all = all.embed(ids);
  double diff = 0;
  for (size_t i = 0; i < ha.size(); ++i) diff = std::max(diff, std::abs(static_cast<double>(ha[i]) - h_all[i]));
  EXPECT_GT(diff, 0.1);  // the 30-block states are another thing
  EXPECT_LT(a.kv_bytes(), all.kv_bytes() / 5);  // 5 of 30 blocks cached
  // Token by token after a prompt: logits through the output head.
  Session c(full, {.n_ctx = 64, .n_threads = 1, .n_layers = K});
  Session d(shallow, {.n_ctx = 64, .n_threads = 1});
  for (size_t t = 0; t < ids.size(); ++t) {
    const auto lc = c.eval(std::span(&ids[t], 1));
    const auto ld = d.eval(std::span(&ids[t], 1));
    for (size_t i = 0; i < lc.size(); ++i) ASSERT_EQ(lc[i], ld[i]) << "token " << t << " logit " << i;
  }
}

TEST(EarlyExit, BlockCountOutsideTheModelIsAClearError) {
  auto model = load_smollm2();
  ASSERT_TRUE(model);
  for (int bad : {-1, 31}) {
    try {
      Session s(model, {.n_ctx = 32, .n_layers = bad});
      ADD_FAILURE() << bad << " accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("30 blocks"), std::string::npos) << e.what();
    }
  }
  Session all(model, {.n_ctx = 32, .n_threads = 1, .n_layers = 30});  // all of them: allowed
  Session dflt(model, {.n_ctx = 32, .n_threads = 1});
  EXPECT_EQ(all.kv_bytes(), dflt.kv_bytes());
}

}  // namespace
}  // namespace edgelm
