// Fine-tuning the top transformer blocks: the float32 block's backward pass against finite
// differences, the block forward against the engine on the real backbone, and --unfreeze
// training end to end (learns, same seed same head, saved blocks used by the classifier).
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "edgelm/error.hpp"
#include "edgelm/intent.hpp"
#include "edgelm/session.hpp"
#include "apps/intent/finetune.hpp"
#include "support/test_models.hpp"
#include "train/block.hpp"

namespace edgelm {
namespace {

using train::BlockShape;
using train::TransformerBlock;

BlockShape tiny_shape() {
  BlockShape s;
  s.n_embd = 16;
  s.n_head = 4;
  s.n_head_kv = 2;
  s.head_dim = 4;
  s.n_ff = 24;
  s.n_rot = 4;
  s.rope_base = 100.0f;
  return s;
}

// L = sum(R * rmsnorm(block(x), w_final)) for fixed random R.
double loss_of(const TransformerBlock& b, const std::vector<float>& x, const std::vector<int>& lens,
               const std::vector<float>& wf, const std::vector<float>& R) {
  const int64_t E = b.shape().n_embd, T = static_cast<int64_t>(x.size()) / E;
  std::vector<float> y(x.size()), out(x.size());
  train::block_forward(train::block_weights(b), b.shape(), x.data(), lens, y.data(), nullptr, nullptr);
  train::rmsnorm_rows(y.data(), wf.data(), T, E, b.shape().norm_eps, out.data());
  double l = 0;
  for (size_t i = 0; i < out.size(); ++i) l += static_cast<double>(R[i]) * out[i];
  return l;
}

TEST(Block, BackwardMatchesFiniteDifferences) {
  for (const bool neox : {false, true}) {
    BlockShape s = tiny_shape();
    s.rope_neox = neox;
    TransformerBlock b(s, 0);
    train::Rng rng(7);
    for (train::Param* p : b.params()) {
      const bool norm = p->value.size() == static_cast<size_t>(s.n_embd);
      for (float& v : p->value) v = norm ? 1.0f + 0.3f * rng.normal() : 0.35f * rng.normal();
    }
    const std::vector<int> lens = {3, 5};
    const int64_t E = s.n_embd, T = 8;
    std::vector<float> x(T * E), R(T * E), wf(E);
    for (float& v : x) v = 2.0f * rng.normal();
    for (float& v : R) v = rng.normal();
    for (float& v : wf) v = 1.0f + 0.3f * rng.normal();

    // Analytic: through the final norm, then the block.
    train::BlockTrace tr;
    std::vector<float> y(T * E), out(T * E), dy(T * E), dx(T * E);
    train::block_forward(train::block_weights(b), s, x.data(), lens, y.data(), &tr, nullptr);
    train::rmsnorm_rows(y.data(), wf.data(), T, E, s.norm_eps, out.data());
    train::rmsnorm_rows_backward(y.data(), wf.data(), R.data(), T, E, s.norm_eps, dy.data(), nullptr);
    for (train::Param* p : b.params()) std::fill(p->grad.begin(), p->grad.end(), 0.0f);
    train::block_backward(b, tr, dy.data(), dx.data(), nullptr);

    auto check = [&](float& v, float analytic, const std::string& what) {
      const float h = 1e-2f, keep = v;
      v = keep + h;
      const double lp = loss_of(b, x, lens, wf, R);
      v = keep - h;
      const double lm = loss_of(b, x, lens, wf, R);
      v = keep;
      const double num = (lp - lm) / (2 * h);
      EXPECT_NEAR(analytic, num, 2e-2 * std::max(std::abs(num), 1.0) + 2e-3) << what << (neox ? " (neox)" : "");
    };
    for (train::Param* p : b.params())
      for (int k = 0; k < 12; ++k) {
        const size_t i = rng.below(static_cast<uint32_t>(p->value.size()));
        check(p->value[i], p->grad[i], p->name + "[" + std::to_string(i) + "]");
      }
    for (int k = 0; k < 24; ++k) {
      const size_t i = rng.below(static_cast<uint32_t>(x.size()));
      check(x[i], dx[i], "x[" + std::to_string(i) + "]");
    }
  }
}

std::shared_ptr<const Model> load_smollm2() {
  const std::string path = test::require_model("SmolLM2-135M-Instruct.Q4_1.gguf");
  return path.empty() ? nullptr : Model::load(path);
}

// The engine's final hidden states against: the engine's residual stream after the first n-2
// blocks (intent::frozen_session, as Classifier runs it), then the last two as float32 blocks
// (dequantized, unchanged) and the output norm.
TEST(Block, Float32TopBlocksReproduceTheEngine) {
  auto model = load_smollm2();
  ASSERT_TRUE(model);
  const ModelConfig& c = model->config();
  const auto& tok = model->tokenizer();
  const std::vector<std::vector<int32_t>> seqs = {tok.encode("navigate to the nearest gas station", true, false),
                                                  tok.encode("turn the volume up a little please", true, false)};
  Session ses(model, {.n_ctx = 64, .n_threads = 2, .n_seq = 2});
  const auto ref = ses.embed_batch(seqs);
  intent::Head head;
  head.first_block = c.n_layer - 2;
  for (int l = head.first_block; l < c.n_layer; ++l) head.blocks.push_back(train::load_block(*model, l, l));
  kernels::ThreadPool pool(2);
  // The residual stream entering the top two blocks, from the engine (what Classifier uses).
  const auto frozen = intent::frozen_session(model, head.first_block, 64, 2, 2);
  std::vector<float> below(ref.size());
  intent::frozen_states(frozen.get(), *model, seqs, below.data());
  std::vector<int> lens;
  for (const auto& q : seqs) lens.push_back(static_cast<int>(q.size()));
  std::vector<float> mine = below;
  for (const auto& b : head.blocks)
    train::block_forward(train::block_weights(b), b.shape(), mine.data(), lens, mine.data(), nullptr, &pool);
  const int64_t E = c.n_embd, T = static_cast<int64_t>(ref.size()) / E;
  train::rmsnorm_rows(mine.data(), reinterpret_cast<const float*>(model->weights().output_norm.data), T, E, c.norm_eps,
                      mine.data());
  // The same two blocks on their quantized weights, through this file's attention: only the
  // weights' quantization differs.
  std::vector<float> quant = below;
  for (int l = head.first_block; l < c.n_layer; ++l)
    train::block_forward(train::block_weights(*model, l), train::block_shape(c), quant.data(), lens, quant.data(),
                         nullptr, &pool);
  train::rmsnorm_rows(quant.data(), reinterpret_cast<const float*>(model->weights().output_norm.data), T, E,
                      c.norm_eps, quant.data());
  auto compare = [&](const float* want, double max_rel, double min_cos, const char* what) {
    for (int64_t t = 0; t < T; ++t) {
      double dd = 0, rr = 0, dot = 0, mm = 0;
      for (int64_t i = 0; i < E; ++i) {
        const double a = want[t * E + i], m = mine[t * E + i];
        dd += (a - m) * (a - m);
        rr += a * a;
        mm += m * m;
        dot += a * m;
      }
      EXPECT_LT(std::sqrt(dd / rr), max_rel) << what << ", token row " << t;
      EXPECT_GT(dot / std::sqrt(rr * mm), min_cos) << what << ", token row " << t;
    }
  };
  compare(quant.data(), 0.03, 0.9995, "quantized blocks");  // measured: <= 2 %, >= 0.9998
  // The engine's two blocks differ by the weights' and activations' quantization and its
  // half-precision attention (measured: <= 2 %, >= 0.9998).
  compare(ref.data(), 0.03, 0.9995, "engine");
}

std::string data(const char* f) { return std::string(EDGELM_SOURCE_DIR) + "/tests/intent/data/" + f; }
std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("edgelm_block_" + std::to_string(::getpid()) + "_" + name)).string();
}
std::string bytes_of(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The first 3 blocks of SmolLM2 (early exit), the top one of them fine-tuned on the 8-intent slice.
TEST(Unfreeze, LearnsReproduciblyAndClassifies) {
  const std::string src = test::require_model("SmolLM2-135M-Instruct.Q4_1.gguf");
  ASSERT_FALSE(src.empty());
  auto model = Model::load(src);
  intent::TrainOptions o;
  o.features.n_layers = 3;
  o.unfreeze = 1;
  o.epochs = 3;
  o.unfreeze_epochs = 2;
  o.patience = 0;
  o.lr = 3e-3f;
  o.block_lr = 1e-4f;
  o.features.n_threads = 2;
  const std::string h1 = temp_path("h1.gguf"), h2 = temp_path("h2.gguf");
  const auto r1 = intent::train_classifier(model, data("train.jsonl"), data("val.jsonl"), h1, o);
  const auto r2 = intent::train_classifier(model, data("train.jsonl"), data("val.jsonl"), h2, o);
  ASSERT_EQ(r1.epochs.size(), 5u);  // 3 for the head alone, 2 fine-tuning
  EXPECT_LT(r1.epochs[4].train_loss, r1.epochs[3].train_loss);
  EXPECT_LT(r1.epochs[3].train_loss, r1.epochs[2].train_loss);
  EXPECT_GT(r1.epochs.back().val_acc, 0.7);
  EXPECT_EQ(bytes_of(h1), bytes_of(h2));  // same seed, same head and blocks
  for (size_t i = 0; i < r1.epochs.size(); ++i) EXPECT_EQ(r1.epochs[i].train_loss, r2.epochs[i].train_loss);

  // The saved blocks differ from the backbone's and the classifier uses them.
  const intent::Head head = intent::load_head(h1);
  ASSERT_EQ(head.blocks.size(), 1u);
  EXPECT_EQ(head.first_block, 2);
  EXPECT_EQ(head.backbone_layers, 3);
  const TransformerBlock orig = train::load_block(*model, 2, 2);
  EXPECT_NE(head.blocks[0].ffn_up.value, orig.ffn_up.value);
  intent::Classifier cls(model, h1, 1);
  const auto p = cls.classify("navigate me to the closest gas station", 2);
  EXPECT_EQ(p.top.size(), 2u);
  EXPECT_TRUE(p.intent == "directions" || p.intent == "gas") << p.intent;
  // Same predictions one at a time and in a batch.
  const std::vector<std::string> texts = {"play some jazz", "call mom", "what's the weather"};
  const auto batch = cls.classify_batch(texts);
  for (size_t i = 0; i < texts.size(); ++i) EXPECT_EQ(batch[i].confidence, cls.classify(texts[i]).confidence);
  for (const auto& f : {h1, h2}) std::filesystem::remove(f);
}

TEST(Unfreeze, RejectsBadOptionsBeforeTraining) {
  const std::string src = test::require_model("SmolLM2-135M-Instruct.Q4_1.gguf");
  ASSERT_FALSE(src.empty());
  auto model = Model::load(src);
  auto error_of = [&](intent::TrainOptions o) {
    try {
      intent::train_classifier(model, data("train.jsonl"), data("val.jsonl"), temp_path("never.gguf"), o);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  intent::TrainOptions o;
  o.unfreeze = 7;  // of the 6 blocks used by default
  EXPECT_NE(error_of(o).find("--unfreeze 7 is outside 0..6"), std::string::npos);
  o.features.n_layers = 0;  // all 30
  o.unfreeze = 31;
  EXPECT_NE(error_of(o).find("--unfreeze 31 is outside 0..30"), std::string::npos);
  o.features.n_layers = -1;
  o.unfreeze = 1;
  EXPECT_NE(error_of(o).find("--layers must be"), std::string::npos);
  o.features.n_layers = 6;
  o.pooling = train::Pooling::Attention;
  EXPECT_NE(error_of(o).find("--pooling mean"), std::string::npos);
  o.pooling = train::Pooling::Mean;
  o.block_lr = 0;
  EXPECT_NE(error_of(o).find("--block-lr"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(temp_path("never.gguf")));
}

}  // namespace
}  // namespace edgelm
