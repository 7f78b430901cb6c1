// The whole-model training engine (train::LanguageModel) on the tiny synthetic models of every
// family (tests/support/family_models.hpp): its taped forward pass against the inference
// forward, and its gradients against central finite differences of its own loss.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "edgelm/model.hpp"
#include "edgelm/session.hpp"
#include "edgelm/train.hpp"
#include "train/train_support.hpp"

namespace edgelm {
namespace {

const std::vector<std::string> kFamilies = {"llama", "qwen2", "qwen2_yarn", "phi3", "gemma", "gemma2", "gemma3", "stablelm"};

class Train : public ::testing::TestWithParam<std::string> {};
class FiniteDifferences : public ::testing::TestWithParam<std::string> {};

TEST_P(Train, TapedForwardGivesTheInferenceLogits) {
  const auto model = test::load_family_model(GetParam());
  ASSERT_TRUE(model);
  const int V = model->config().n_vocab;
  train::LanguageModel lm(model, 2);
  const train::TokenBatch b = test::make_batch(V, {13, 21}, 7);
  const std::vector<float> got = lm.logits(b);
  double worst = 0;
  size_t row = 0;
  for (const auto& toks : b.tokens) {
    Session s(model, {.n_ctx = 32, .n_threads = 1, .n_batch = 32});
    std::span<const float> want = s.eval_all(toks);
    for (size_t p = 0; p < toks.size(); ++p, ++row) {
      double absmax = 0, diff = 0;
      for (int i = 0; i < V; ++i) {
        absmax = std::max(absmax, std::abs(static_cast<double>(want[p * V + i])));
        diff = std::max(diff, std::abs(static_cast<double>(got[row * V + i]) - want[p * V + i]));
      }
      worst = std::max(worst, diff / absmax);
    }
  }
  std::printf("[ train    ] %-10s taped forward vs inference: max relative error %.3g\n", GetParam().c_str(), worst);
  // Inference keeps K and V in half precision (as llama.cpp does) and rounds as llama.cpp's
  // kernels do; the taped pass attends in float32 with exact exp and GELU. Measured: 1.4e-3 at
  // worst (qwen2, whose logits are the sharpest); the training forward itself agrees with
  // PyTorch's float32 loss to 2.2e-6 (test_pytorch_oracle.cpp).
  EXPECT_LT(worst, 3e-3);
}

// Recomputing each block from its checkpointed input runs the same forward code on the same
// values, so the loss and every gradient are bit for bit those of the fully taped pass.
TEST_P(Train, RecomputedBlocksGiveTheSameGradients) {
  const auto model = test::load_family_model(GetParam());
  ASSERT_TRUE(model);
  const train::TokenBatch b = test::make_batch(model->config().n_vocab, {13, 21}, 5);
  train::LanguageModel taped(model, {.n_threads = 2});
  train::LanguageModel recomputed(model, {.n_threads = 2, .recompute = true});
  EXPECT_EQ(taped.loss(b, true), recomputed.loss(b, true));
  const auto want = taped.params(), got = recomputed.params();
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); ++i) {
    double norm = 0;
    for (float g : want[i]->grad) norm += static_cast<double>(g) * g;
    EXPECT_GT(norm, 0.0) << want[i]->name;
    EXPECT_EQ(got[i]->grad, want[i]->grad) << want[i]->name;
  }
}

// For each tensor, the derivative of the loss along its own gradient direction, by central
// differences, equals the gradient's norm.
TEST_P(FiniteDifferences, GradientOfEveryTensorMatchesTheLoss) {
  const auto model = test::load_family_model(GetParam());
  ASSERT_TRUE(model);
  train::LanguageModel lm(model, 2);
  const train::TokenBatch b = test::make_batch(model->config().n_vocab, {7, 10}, 11);
  lm.loss(b, true);
  double worst = 0;
  std::string worst_name;
  for (train::Param* p : lm.params()) {
    const std::vector<float> g = p->grad;
    double norm = 0;
    for (float x : g) norm += static_cast<double>(x) * x;
    norm = std::sqrt(norm);
    ASSERT_TRUE(std::isfinite(norm)) << p->name;
    if (norm == 0) continue;
    const std::vector<float> w0 = p->value;
    // A step of 1e-2 along a unit direction: every family within 0.2 % (gemma2's soft-capped
    // attention is the least linear; at 1e-1 it is 12 % off).
    const double eps = 1e-2;
    auto at = [&](double s) {
      for (size_t i = 0; i < w0.size(); ++i) p->value[i] = static_cast<float>(w0[i] + s * g[i] / norm);
      return lm.loss(b, false);
    };
    const double fd = (at(eps) - at(-eps)) / (2 * eps);
    p->value = w0;
    const double rel = std::abs(fd - norm) / norm;
    if (rel > worst) worst = rel, worst_name = p->name;
    EXPECT_LT(rel, 1e-2) << p->name << ": |grad| " << norm << ", finite difference " << fd;
  }
  std::printf("[ train    ] %-10s gradients vs finite differences: max relative error %.3g (%s)\n", GetParam().c_str(),
              worst, worst_name.c_str());
}

INSTANTIATE_TEST_SUITE_P(Synthetic, Train, ::testing::ValuesIn(kFamilies),
                         [](const auto& info) { return info.param; });
// llama, qwen2 and gemma3 have PyTorch's gradients to compare with (test_pytorch_oracle.cpp);
// finite differences cover the other families.
INSTANTIATE_TEST_SUITE_P(Synthetic, FiniteDifferences,
                         ::testing::Values("qwen2_yarn", "phi3", "gemma", "gemma2", "stablelm"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace edgelm
