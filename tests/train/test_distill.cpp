// Knowledge distillation: the distillation loss through the training pass (its gradient against
// finite differences, alpha 1 as the cross-entropy), the pruned student (the teacher without
// those blocks, exactly), the teacher's distributions and their cache file, bad input, and a
// trained student in llama.cpp.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "edgelm/distill.hpp"
#include "edgelm/error.hpp"
#include "edgelm/finetune.hpp"
#include "edgelm/gguf.hpp"
#include "edgelm/session.hpp"
#include "edgelm/train.hpp"
#include "kernels/thread_pool.hpp"
#include "model/forward.hpp"
#include "model/kv_cache.hpp"
#include "train/train_support.hpp"

namespace edgelm {
namespace {

using nlohmann::json;

// Teacher rows of random logits for every trained position of b.
train::TeacherTargets random_teacher(const train::TokenBatch& b, int64_t V, int64_t k, float T, uint64_t seed) {
  test::SplitMix rng(seed);
  train::TeacherTargets t{.k = k, .temperature = T};
  std::vector<float> logits(static_cast<size_t>(V));
  for (int64_t r = 0; r < b.n_targets(); ++r) {
    for (float& x : logits) x = 3.0f * (static_cast<float>(rng.next() % 2001) / 1000.0f - 1.0f);
    t.add_row(logits.data(), V);
  }
  return t;
}

std::vector<LmExample> examples(const train::TokenBatch& b) {
  std::vector<LmExample> out;
  for (size_t s = 0; s < b.tokens.size(); ++s) out.push_back({b.tokens[s], b.targets[s]});
  return out;
}

// The derivative of the distillation loss along its gradient, by central differences, equals
// the gradient's norm (forward and reverse KL over a top-k teacher, with the cross-entropy).
TEST(Distillation, GradientMatchesFiniteDifferences) {
  const auto model = test::load_family_model("llama");
  ASSERT_TRUE(model);
  const train::TokenBatch b = test::make_batch(model->config().n_vocab, {9, 12}, 5);
  const train::TeacherTargets teacher = random_teacher(b, model->config().n_vocab, 16, 2.0f, 3);
  for (bool reverse : {false, true}) {
    SCOPED_TRACE(reverse ? "reverse" : "forward");
    train::LanguageModel lm(model, 2);
    const train::DistillLoss kd{.teacher = &teacher, .alpha = 0.3f, .reverse = reverse};
    lm.loss(b, true, &kd);
    for (const char* name : {"token_embd.weight", "blk.1.attn_q.weight", "blk.2.ffn_down.weight"}) {
      train::Param* p = lm.find(name);
      ASSERT_NE(p, nullptr) << name;
      const std::vector<float> g = p->grad, w0 = p->value;
      double norm = 0;
      for (float x : g) norm += static_cast<double>(x) * x;
      norm = std::sqrt(norm);
      ASSERT_GT(norm, 0.0) << name;
      const double eps = 1e-2;
      auto at = [&](double s) {
        for (size_t i = 0; i < w0.size(); ++i) p->value[i] = static_cast<float>(w0[i] + s * g[i] / norm);
        return lm.loss(b, false, &kd);
      };
      const double fd = (at(eps) - at(-eps)) / (2 * eps);
      p->value = w0;
      EXPECT_LT(std::abs(fd - norm) / norm, 1e-2) << name << ": |grad| " << norm << ", finite difference " << fd;
    }
  }
}

// With alpha 1 the distillation loss is the cross-entropy, gradients included; a teacher whose
// distributions are the student's own (the whole vocabulary) adds a KL term of zero.
TEST(Distillation, AlphaOneIsTheCrossEntropyAndTheStudentsOwnDistributionCostsNothing) {
  const auto model = test::load_family_model("llama");
  ASSERT_TRUE(model);
  const int64_t V = model->config().n_vocab;
  const train::TokenBatch b = test::make_batch(static_cast<int>(V), {8, 11}, 9);
  train::LanguageModel a(model, 2), c(model, 2);
  const double ce = a.loss(b, true);
  const train::TeacherTargets teacher = random_teacher(b, V, 8, 3.0f, 4);
  const train::DistillLoss kd{.teacher = &teacher, .alpha = 1.0f};
  EXPECT_EQ(c.loss(b, true, &kd), ce);
  const auto pa = a.params(), pc = c.params();
  for (size_t i = 0; i < pa.size(); ++i)
    for (size_t j = 0; j < pa[i]->grad.size(); ++j)
      ASSERT_NEAR(pc[i]->grad[j], pa[i]->grad[j], 1e-6f * (1.0f + std::abs(pa[i]->grad[j]))) << pa[i]->name;

  const std::vector<float> logits = a.logits(b);  // every position's; the trained ones become the teacher
  train::TeacherTargets self{.k = V, .temperature = 1.0f};
  int64_t t = 0;
  for (size_t s = 0; s < b.tokens.size(); ++s)
    for (size_t i = 0; i < b.tokens[s].size(); ++i, ++t)
      if (b.targets[s][i] >= 0) self.add_row(logits.data() + t * V, V);
  EXPECT_TRUE(self.ids.empty());
  const train::DistillLoss kl_only{.teacher = &self, .alpha = 0.0f};
  EXPECT_NEAR(a.loss(b, false, &kl_only), 0.0, 1e-5);
}

TEST(Distillation, ATeacherThatDoesNotFitTheBatchIsAnError) {
  const auto model = test::load_family_model("llama");
  ASSERT_TRUE(model);
  train::LanguageModel lm(model, 1);
  const train::TokenBatch b = test::make_batch(model->config().n_vocab, {8}, 2);
  const train::TokenBatch longer = test::make_batch(model->config().n_vocab, {12}, 2);
  const train::TeacherTargets teacher = random_teacher(longer, model->config().n_vocab, 4, 1.0f, 1);
  const train::DistillLoss kd{.teacher = &teacher};
  EXPECT_THROW(lm.loss(b, true, &kd), Error);
}

// The residual stream of the teacher's blocks [0, keep_to) and then of blocks [from, n_layer),
// skipping those between: the teacher without the blocks, by its own forward pass.
std::vector<float> logits_skipping(const Model& m, const std::vector<int32_t>& toks, int keep_to, int from) {
  const ModelConfig& c = m.config();
  const int N = static_cast<int>(toks.size());
  kernels::ThreadPool pool(1);
  std::vector<BatchEntry> batch;
  for (int i = 0; i < N; ++i) batch.push_back({toks[static_cast<size_t>(i)], i, 0, true});
  KvCache kv(c, N, 1);
  ForwardScratch first(c, N, N, 1);
  first.seam.end_block = keep_to;
  first.seam.residual_hidden = true;
  std::vector<float> residual(static_cast<size_t>(N) * c.n_embd);
  forward(m, batch, kv, first, pool, nullptr, residual.data());
  ForwardScratch second(c, N, N, 1);
  second.seam.first_block = from;
  second.seam.residual_in = residual.data();
  std::vector<float> logits(static_cast<size_t>(N) * c.n_vocab);
  forward(m, batch, kv, second, pool, logits.data());
  return logits;
}

TEST(Pruning, TheStudentIsTheTeacherWithoutTheDroppedBlocks) {
  const auto teacher = test::load_family_model("llama");
  ASSERT_TRUE(teacher);
  const std::string path = test::temp_path("pruned.gguf");
  const std::vector<int> drop{1};
  write_pruned(*teacher, drop, "abc", path);
  const auto student = Model::load(path);
  std::filesystem::remove(path);
  EXPECT_EQ(student->config().n_layer, 2);
  check_same_vocabulary(*teacher, *student);
  // block 2's tensors became block 1's, byte for byte
  const TensorView a = teacher->file().tensor("blk.2.ffn_up.weight"), b = student->file().tensor("blk.1.ffn_up.weight");
  ASSERT_EQ(a.nbytes, b.nbytes);
  EXPECT_EQ(std::memcmp(a.data, b.data, a.nbytes), 0);
  EXPECT_EQ(student->file().get_i32_array("edgelm.distill.pruned_blocks"), std::vector<int32_t>{1});
  EXPECT_EQ(student->file().get_string("edgelm.distill.teacher_sha256"), "abc");

  const std::vector<int32_t> toks{5, 900, 17, 4000, 23, 77, 1200, 3};
  Session s(student, {.n_ctx = 16, .n_threads = 1});
  const std::span<const float> got = s.eval_all(toks);
  const std::vector<float> want = logits_skipping(*teacher, toks, 1, 2);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(got[i], want[i]) << "logit " << i;
}

TEST(Pruning, ImportanceKeepsTheFirstBlockAndBadRequestsAreErrors) {
  const auto teacher = test::load_family_model("llama");
  ASSERT_TRUE(teacher);
  const train::TokenBatch b = test::make_batch(teacher->config().n_vocab, {10, 6}, 4);
  const std::vector<double> imp = block_importance(teacher, examples(b), 1);
  ASSERT_EQ(imp.size(), 3u);
  EXPECT_EQ(imp[0], std::numeric_limits<double>::infinity());
  for (size_t i = 1; i < imp.size(); ++i) EXPECT_TRUE(imp[i] >= 0 && imp[i] <= 2) << imp[i];
  const std::vector<int> one = least_important(imp, 1);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0], imp[1] <= imp[2] ? 1 : 2);
  EXPECT_THROW(least_important(imp, 3), Error);  // no block left
  const std::string path = test::temp_path("bad-prune.gguf");
  EXPECT_THROW(write_pruned(*teacher, std::vector<int>{0, 1, 2}, "x", path), Error);
  EXPECT_THROW(write_pruned(*teacher, std::vector<int>{7}, "x", path), Error);
  EXPECT_FALSE(std::filesystem::exists(path));
  const auto gemma = test::load_family_model("gemma3");
  if (gemma) {
    EXPECT_THROW(check_same_vocabulary(*teacher, *gemma), Error);
  }
}

// Whole distributions come from the teacher batch by batch, equal to the ones computed up front.
TEST(TeacherCache, OnlineWholeDistributionsEqualThePrecomputedOnes) {
  const auto teacher = test::load_family_model("llama");
  ASSERT_TRUE(teacher);
  const train::TokenBatch b = test::make_batch(teacher->config().n_vocab, {9, 6, 11}, 12);
  const std::vector<LmExample> data = examples(b);
  const TeacherOptions o{.temperature = 2.0f, .top_k = 0, .n_ctx = 16, .n_threads = 1};
  const auto all = teacher_targets(teacher, "sha", data, o);
  TeacherSignal online(teacher, "sha", data, o);
  EXPECT_TRUE(online.online());
  train::TeacherTargets got;
  const std::vector<int> ids{2, 0};
  online(ids, got);
  EXPECT_EQ(got.k, teacher->config().n_vocab);
  EXPECT_TRUE(got.ids.empty());
  std::vector<float> want = all[2].logp;
  want.insert(want.end(), all[0].logp.begin(), all[0].logp.end());
  EXPECT_EQ(got.logp, want);
  EXPECT_EQ(got.rows(), all[2].rows() + all[0].rows());
}

// The cache holds what the teacher computed; a second run reads it back unchanged, and a cache
// made by another teacher, for other data or at another temperature is refused.
TEST(TeacherCache, RoundTripAndMismatches) {
  const auto teacher = test::load_family_model("llama");
  ASSERT_TRUE(teacher);
  const train::TokenBatch b = test::make_batch(teacher->config().n_vocab, {10, 7}, 8);
  const std::vector<LmExample> data = examples(b);
  const std::string path = test::temp_path("teacher-cache.gguf");
  std::filesystem::remove(path);
  const TeacherOptions o{.temperature = 2.0f, .top_k = 5, .n_ctx = 16, .n_threads = 1, .cache = path};
  const auto computed = teacher_targets(teacher, "sha-a", data, o);
  ASSERT_TRUE(std::filesystem::exists(path));
  ASSERT_EQ(computed.size(), data.size());
  EXPECT_EQ(computed[0].rows(), b.n_targets() - computed[1].rows());
  const auto read = teacher_targets(teacher, "sha-a", data, o);
  for (size_t e = 0; e < data.size(); ++e) {
    EXPECT_EQ(read[e].ids, computed[e].ids);
    EXPECT_EQ(read[e].logp, computed[e].logp);
    EXPECT_EQ(read[e].log_rest, computed[e].log_rest);
  }
  EXPECT_THROW(teacher_targets(teacher, "sha-b", data, o), Error);
  TeacherOptions hot = o;
  hot.temperature = 3.0f;
  EXPECT_THROW(teacher_targets(teacher, "sha-a", data, hot), Error);
  std::vector<LmExample> other = data;
  other[0].tokens[1] ^= 1;
  EXPECT_THROW(teacher_targets(teacher, "sha-a", other, o), Error);
  std::filesystem::remove(path);
}

// A student made as `edgelm distill` makes it (tests/oracle/gen_distill_fixtures.py ran the
// command with the fixture's options; here the same steps run through the library) loads in
// llama.cpp, which gives edgelm's logits within 1e-3 of the row's largest.
TEST(DistilledStudent, LlamaCppGivesItsLogits) {
  const json fx = json::parse(test::read_file(test::fixture_path("train/distill_llamacpp.json")));
  uint64_t h = 0;
  const auto teacher = test::load_family_model("llama", &h);
  if (!teacher) GTEST_SKIP() << "SmolLM2 (the vocabulary) is not in the model cache";
  char hash[32];
  std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(h));
  ASSERT_EQ(std::string(hash), fx["weights_hash"].get<std::string>()) << "the synthetic model differs from the oracle's";
  const std::string text = test::temp_path("distill-text.txt"), init = test::temp_path("distill-init.gguf"),
                    out = test::temp_path("distill-student.gguf");
  {
    std::ofstream f(text, std::ios::binary);
    f << test::read_file(test::fixture_path("text/essays.txt")).substr(0, fx["text_bytes"].get<size_t>());
  }
  // the fixture's options: --prune-layers 1 --ctx 32 --batch 4 --epochs 2 --lr 3e-3 --kd-top-k 16
  // --out-type f32 --threads 1 (alpha 0.5, T 3, seed 42 and the rest at their defaults)
  const std::vector<LmExample> data = load_lm_data(*teacher, text, {.n_ctx = 32});
  write_pruned(*teacher, least_important(block_importance(teacher, data, 1), 1), "sha", init);
  const auto student = Model::load(init);
  TeacherSignal signal(teacher, "sha", data, {.temperature = 3, .top_k = 16, .n_ctx = 32, .n_threads = 1});
  finetune(student, data, {}, out,
           {.epochs = 2, .lr = 3e-3f, .batch = 4, .n_threads = 1, .f16 = false,
            .teacher = [&](std::span<const int> ids, train::TeacherTargets& t) { signal(ids, t); },
            .distill = {.alpha = 0.5f}});
  const auto trained = Model::load(out);
  for (const auto& p : {init, out, text}) std::filesystem::remove(p);
  ASSERT_EQ(trained->config().n_layer, 2);
  double worst = 0;
  for (const json& pr : fx["prompts"]) {
    const auto toks = pr["tokens"].get<std::vector<int32_t>>();
    Session s(trained, {.n_ctx = 64, .n_threads = 1});
    const std::span<const float> logits = s.eval_all(toks);
    const int64_t V = trained->config().n_vocab;
    for (size_t i = 0; i < toks.size(); ++i) {
      const json& row = pr["rows"][i];
      const auto ids = row["ids"].get<std::vector<int64_t>>();
      const auto want = row["logits"].get<std::vector<double>>();
      const double scale = row["max_abs"].get<double>();
      for (size_t j = 0; j < ids.size(); ++j) {
        const double err = std::abs(logits[i * static_cast<size_t>(V) + static_cast<size_t>(ids[j])] - want[j]) / scale;
        worst = std::max(worst, err);
        EXPECT_LT(err, 1e-3) << "position " << i << ", word " << ids[j];
      }
    }
  }
  std::printf("[ distill  ] the student's logits vs llama.cpp's: worst error %.2g of the row's largest\n", worst);
}

}  // namespace
}  // namespace edgelm
