// LoRA through the forward pass's adapter seam (train::LanguageModel with LoraOptions, Session
// with SessionOptions::lora): gradients against finite differences of the loss, a quantized
// base against a float base holding its dequantized weights, the adapter file round trip,
// applied == merged, and the errors for bad adapters and options.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "edgelm/error.hpp"
#include "edgelm/lora.hpp"
#include "edgelm/model.hpp"
#include "edgelm/quant.hpp"
#include "edgelm/session.hpp"
#include "edgelm/train.hpp"
#include "train/train_support.hpp"

namespace edgelm {
namespace {

const train::LoraOptions kAll{.rank = 4, .alpha = 8, .targets = {"q", "k", "v", "o", "gate", "up", "down"}};

// B starts at zero (the adapter is then the identity and A's gradient is zero): give it values.
void randomise_b(train::LanguageModel& lm, uint64_t seed) {
  test::SplitMix rng(seed);
  for (train::Param* p : lm.params())
    if (p->name.ends_with(".lora_b"))
      for (float& v : p->value) v = (static_cast<float>(rng.next() % 2001) / 1000.0f - 1.0f) * 0.1f;
}

double rel_diff(const std::vector<float>& got, const std::vector<float>& want) {
  double d = 0, n = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    d += (static_cast<double>(got[i]) - want[i]) * (static_cast<double>(got[i]) - want[i]);
    n += static_cast<double>(want[i]) * want[i];
  }
  return std::sqrt(d / n);
}

class Lora : public ::testing::TestWithParam<std::string> {};

// Only the adapters train: one A and one B per target and block, named as llama.cpp names them.
// Each kind of adapter matrix (A or B of one target, over all blocks) is checked along its own
// gradient direction.
TEST_P(Lora, GradientsOfTheAdaptersMatchFiniteDifferences) {
  const auto model = test::load_family_model(GetParam());
  ASSERT_TRUE(model);
  train::LanguageModel lm(model, {.n_threads = 2, .lora = kAll});
  ASSERT_EQ(lm.params().size(), static_cast<size_t>(model->config().n_layer) * 7 * 2);
  EXPECT_EQ(lm.params()[0]->name, "blk.0.attn_q.weight.lora_a");
  EXPECT_EQ(lm.params()[1]->name, "blk.0.attn_q.weight.lora_b");
  randomise_b(lm, 3);
  const train::TokenBatch b = test::make_batch(model->config().n_vocab, {7, 10}, 11);
  lm.loss(b, true);
  std::vector<std::string> kinds;  // "attn_q.weight.lora_a", ...
  for (train::Param* p : lm.params()) {
    const std::string kind = p->name.substr(p->name.find('.', 4) + 1);
    if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) kinds.push_back(kind);
  }
  ASSERT_EQ(kinds.size(), 14u);
  double worst = 0;
  std::string worst_kind;
  for (const std::string& kind : kinds) {
    std::vector<train::Param*> ps;
    double norm = 0;
    for (train::Param* p : lm.params())
      if (p->name.ends_with("." + kind)) {
        ps.push_back(p);
        for (float x : p->grad) norm += static_cast<double>(x) * x;
      }
    norm = std::sqrt(norm);
    ASSERT_TRUE(std::isfinite(norm)) << kind;
    ASSERT_GT(norm, 0.0) << kind;
    std::vector<std::vector<float>> w0;
    for (train::Param* p : ps) w0.push_back(p->value);
    const double eps = 1e-2;
    auto at = [&](double s) {
      for (size_t j = 0; j < ps.size(); ++j)
        for (size_t i = 0; i < w0[j].size(); ++i) ps[j]->value[i] = static_cast<float>(w0[j][i] + s * ps[j]->grad[i] / norm);
      return lm.loss(b, false);
    };
    const double fd = (at(eps) - at(-eps)) / (2 * eps);
    for (size_t j = 0; j < ps.size(); ++j) ps[j]->value = w0[j];
    const double rel = std::abs(fd - norm) / norm;
    if (rel > worst) worst = rel, worst_kind = kind;
    EXPECT_LT(rel, 1e-2) << kind << ": |grad| " << norm << ", finite difference " << fd;
  }
  std::printf("[ lora     ] %-10s adapter gradients vs finite differences: max relative error %.3g (%s)\n",
              GetParam().c_str(), worst, worst_kind.c_str());
}

// Dropout masks depend on the pass, not on the threads or on recomputation.
TEST_P(Lora, DropoutMasksAreTheSameWhenBlocksAreRecomputed) {
  const auto model = test::load_family_model(GetParam());
  ASSERT_TRUE(model);
  train::LoraOptions o = kAll;
  o.dropout = 0.25f;
  train::LanguageModel taped(model, {.n_threads = 2, .lora = o});
  train::LanguageModel recomputed(model, {.n_threads = 1, .recompute = true, .lora = o});
  randomise_b(taped, 3);
  randomise_b(recomputed, 3);
  const train::TokenBatch b = test::make_batch(model->config().n_vocab, {9, 12}, 5);
  const double l0 = taped.loss(b, false);
  const double l1 = taped.loss(b, true);
  EXPECT_NE(l0, l1);  // dropout in the training pass only
  EXPECT_NEAR(recomputed.loss(b, true), l1, 1e-6 * std::abs(l1));
  for (size_t i = 0; i < taped.params().size(); ++i)
    EXPECT_LT(rel_diff(recomputed.params()[i]->grad, taped.params()[i]->grad), 1e-5) << taped.params()[i]->name;
}

INSTANTIATE_TEST_SUITE_P(Synthetic, Lora, ::testing::Values("llama", "qwen2", "gemma3"),
                         [](const auto& info) { return info.param; });

// The base stays quantized: its products run on the quantized kernels (activations rounded to
// 8 bits, as at inference) and the backward pass multiplies by the dequantized weights. A
// float32 base holding exactly those dequantized weights gives the same gradients up to that
// activation rounding.
TEST(LoraQuantized, BaseGivesTheGradientsOfItsDequantizedWeights) {
  const test::FamilySpec& spec = test::family_spec("llama");
  const std::string vocab = test::require_model(spec.vocab_file);
  ASSERT_FALSE(vocab.empty());
  const std::string f32 = test::temp_path("llama.gguf"), qpath = test::temp_path("llama-q.gguf"), deq = test::temp_path("llama-deq.gguf");
  test::write_family_model(spec, vocab, f32);
  for (const quant::FileType type : {quant::FileType::Q8_0, quant::FileType::Q4_1}) {
    quant::quantize_file(f32, qpath, {.file_type = type, .n_threads = 1});
    const auto quantized = Model::load(qpath);
    merge_lora(*quantized, {}, deq, /*f32=*/true);
    const auto dequantized = Model::load(deq);
    ASSERT_EQ(quantized->weights().layers[0].wq.type, quant::base_type(type));
    ASSERT_EQ(dequantized->weights().layers[0].wq.type, DType::F32);

    const train::TokenBatch b = test::make_batch(quantized->config().n_vocab, {9, 14}, 21);
    train::LanguageModel lq(quantized, {.n_threads = 2, .lora = kAll});
    train::LanguageModel lf(dequantized, {.n_threads = 2, .lora = kAll});
    randomise_b(lq, 8);
    randomise_b(lf, 8);
    const double loss_q = lq.loss(b, true), loss_f = lf.loss(b, true);
    double worst = 0;
    for (size_t i = 0; i < lq.params().size(); ++i) {
      EXPECT_EQ(lq.params()[i]->value, lf.params()[i]->value);  // the same initial adapters
      worst = std::max(worst, rel_diff(lq.params()[i]->grad, lf.params()[i]->grad));
    }
    std::printf("[ lora     ] %s base vs its dequantized F32 copy: loss %.9g vs %.9g, gradients within %.3g\n",
                std::string(quant::file_type_name(type)).c_str(), loss_q, loss_f, worst);
    EXPECT_NEAR(loss_q, loss_f, 1e-6 * loss_f);
    EXPECT_LT(worst, 1e-5);
  }
  for (const auto& p : {f32, qpath, deq}) std::filesystem::remove(p);
}

// What training computes is what inference serves: the adapter saved in llama.cpp's layout,
// loaded and applied by a Session beside the base's products, gives the training pass's logits;
// folded into the weights (merge_lora) it gives the same logits again.
TEST(LoraFile, SavedAppliedAndMergedGiveTheTrainingLogits) {
  const auto model = test::load_family_model("llama");
  ASSERT_TRUE(model);
  const int V = model->config().n_vocab;
  train::LanguageModel lm(model, {.n_threads = 2, .lora = kAll});
  randomise_b(lm, 4);
  const train::TokenBatch b = test::make_batch(V, {15}, 9);
  const std::vector<float> trained = lm.logits(b);
  const std::string path = test::temp_path("adapter.gguf"), merged_path = test::temp_path("merged.gguf");
  lm.lora_adapter().save(path);
  const auto adapter = LoraAdapter::load(path, *model);
  EXPECT_EQ(adapter->matrices.size(), static_cast<size_t>(model->config().n_layer) * 7);
  EXPECT_EQ(adapter->alpha, 8.0f);
  merge_lora(*model, {{adapter, 1.0f}}, merged_path, /*f32=*/true);
  const auto merged = Model::load(merged_path);

  Session applied(model, {.n_ctx = 32, .n_threads = 2, .lora = {{adapter, 1.0f}}});
  Session folded(merged, {.n_ctx = 32, .n_threads = 2});
  Session plain(model, {.n_ctx = 32, .n_threads = 2});
  const auto ap = applied.eval_all(b.tokens[0]);
  const std::vector<float> a(ap.begin(), ap.end());
  const auto fo = folded.eval_all(b.tokens[0]);
  const auto pl = plain.eval_all(b.tokens[0]);
  const std::vector<float> f(fo.begin(), fo.end()), base(pl.begin(), pl.end());
  const double vs_train = rel_diff(a, trained), vs_merged = rel_diff(f, a), vs_base = rel_diff(base, a);
  std::printf("[ lora     ] applied at run time vs training pass %.3g, merged vs applied %.3g (base vs applied %.3g)\n",
              vs_train, vs_merged, vs_base);
  EXPECT_LT(vs_train, 3e-3);  // the training pass attends in float32, inference over a half-precision cache
  EXPECT_LT(vs_merged, 1e-5);
  EXPECT_GT(vs_base, 1e-2);   // the adapter changes the model

  // Per-sequence scales (the server's per-request adapters): sequence 0 with the adapter and
  // sequence 1 without it, decoded in one pass, give the two sessions' logits (up to the
  // summation order of a 2-row pass against a 15-row one; the adapter moves them by 0.4).
  Session both(model, {.n_ctx = 32, .n_threads = 2, .n_seq = 2, .lora = {{adapter, 1.0f}}});
  const std::span<const int32_t> prefix(b.tokens[0].data(), b.tokens[0].size() - 1);
  const int32_t last = b.tokens[0].back();
  both.eval(prefix, 0);
  both.eval(prefix, 1);
  const float off = 0.0f;
  both.set_lora_scales(1, {&off, 1});
  EXPECT_EQ(both.n_past(1), 0) << "new scales drop the cache computed with the old ones";
  EXPECT_EQ(both.n_past(0), static_cast<int>(prefix.size()));
  both.eval(prefix, 1);
  const int32_t toks[] = {last, last};
  const int seqs[] = {0, 1};
  const auto d = both.decode(toks, seqs);
  const size_t n = static_cast<size_t>(V), at = (b.tokens[0].size() - 1) * n;
  const std::vector<float> d0(d.begin(), d.begin() + static_cast<ptrdiff_t>(n)), d1(d.begin() + static_cast<ptrdiff_t>(n), d.end());
  const std::vector<float> a_last(a.begin() + static_cast<ptrdiff_t>(at), a.begin() + static_cast<ptrdiff_t>(at + n));
  const std::vector<float> b_last(base.begin() + static_cast<ptrdiff_t>(at), base.begin() + static_cast<ptrdiff_t>(at + n));
  EXPECT_LT(rel_diff(d0, a_last), 2e-4) << "the sequence with the adapter";
  EXPECT_LT(rel_diff(d1, b_last), 2e-4) << "the sequence without it";
  EXPECT_EQ(both.lora_scales(1)[0], 0.0f);
  EXPECT_THROW(both.set_lora_scales(0, {}), Error);
  std::filesystem::remove(path);
  std::filesystem::remove(merged_path);
}

TEST(LoraFile, BadAdaptersAndOptionsAreClearErrors) {
  const auto llama = test::load_family_model("llama");
  const auto qwen2 = test::load_family_model("qwen2");
  ASSERT_TRUE(llama && qwen2);
  const auto error_of = [](auto&& f) -> std::string {
    try {
      f();
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  EXPECT_NE(error_of([&] { train::LanguageModel(llama, {.lora = {.rank = 100}}); }).find("LoRA rank 100 is larger"),
            std::string::npos);
  EXPECT_NE(error_of([&] { train::LanguageModel(llama, {.lora = {.rank = 2, .targets = {"q", "qkv"}}}); })
                .find("unknown LoRA target module 'qkv'"),
            std::string::npos);
  EXPECT_NE(error_of([&] { train::LanguageModel(llama, {.lora = {.rank = 2, .dropout = 1.0f}}); }).find("dropout"),
            std::string::npos);

  // phi3 keeps Q/K/V in one tensor and gate/up in another: not separate products to adapt
  const auto phi3 = test::load_family_model("phi3");
  ASSERT_TRUE(phi3);
  for (const char* t : {"q", "gate"})
    EXPECT_NE(error_of([&] { train::LanguageModel(phi3, {.lora = {.rank = 2, .targets = {t}}}); }).find("a fused tensor"),
              std::string::npos)
        << t;
  EXPECT_NO_THROW(train::LanguageModel(phi3, {.lora = {.rank = 2, .targets = {"o", "down"}}}));
  train::LanguageModel lm(llama, {.lora = {.rank = 2}});
  const std::string path = test::temp_path("llama-adapter.gguf");
  lm.lora_adapter().save(path);
  EXPECT_NE(error_of([&] { LoraAdapter::load(path, *qwen2); }).find("was made for a llama model, not this qwen2 one"),
            std::string::npos);
  LoraAdapter other = lm.lora_adapter();
  other.matrices[0].n_out /= 2;
  other.matrices[0].b.resize(static_cast<size_t>(other.matrices[0].n_out * other.matrices[0].rank));
  other.save(path);
  EXPECT_NE(error_of([&] { LoraAdapter::load(path, *llama); }).find("it was made for another model"), std::string::npos);
  const std::string model_path = test::temp_path("not-an-adapter.gguf");
  test::write_family_model(test::family_spec("llama"), test::require_model(test::family_spec("llama").vocab_file),
                           model_path);
  EXPECT_NE(error_of([&] { LoraAdapter::load(model_path, *llama); }).find("is not a LoRA adapter"), std::string::npos);
  for (const auto& p : {path, model_path}) std::filesystem::remove(p);
}

}  // namespace
}  // namespace edgelm
