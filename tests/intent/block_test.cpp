// Fine-tuning the top transformer blocks with a classifier head: the fine-tuned blocks (the
// engine's forward pass on float32 copies, train::LanguageModel) against the engine on the real
// backbone, and --unfreeze training end to end (learns, same seed same head, saved blocks used
// by the classifier).
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "edgelm/error.hpp"
#include "edgelm/intent.hpp"
#include "edgelm/session.hpp"
#include "apps/intent/finetune.hpp"
#include "kernels/kernels.hpp"
#include "support/test_models.hpp"

namespace edgelm {
namespace {

std::shared_ptr<const Model> load_smollm2() {
  const std::string path = test::require_model("SmolLM2-135M-Instruct.Q4_1.gguf");
  return path.empty() ? nullptr : Model::load(path);
}

// The engine's final hidden states against: the engine's residual stream after the first n-2
// blocks (intent::frozen_session, as Classifier runs it), then the last two blocks and the
// output norm on float32 copies (dequantized, unchanged) as the classifier and its training run
// them.
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
  const auto lm = intent::tuned_blocks(model, head, 2);
  const auto frozen = intent::frozen_session(model, head.first_block, 64, 2, 2);
  std::vector<int> lens;
  for (const auto& q : seqs) lens.push_back(static_cast<int>(q.size()));
  std::vector<float> below(ref.size()), served(ref.size()), trained(ref.size());
  intent::frozen_states(frozen.get(), *model, seqs, below.data());
  intent::tuned_states(frozen.get(), *model, *lm, seqs, served.data());  // as the classifier runs them
  lm->hidden_states(lens, below.data(), trained.data(), true);           // as training runs them
  const int64_t E = c.n_embd, T = static_cast<int64_t>(ref.size()) / E;
  auto compare = [&](const float* mine, double max_rel, double min_cos, const char* what) {
    for (int64_t t = 0; t < T; ++t) {
      double dd = 0, rr = 0, dot = 0, mm = 0;
      for (int64_t i = 0; i < E; ++i) {
        const double a = ref[t * E + i], m = mine[t * E + i];
        dd += (a - m) * (a - m);
        rr += a * a;
        mm += m * m;
        dot += a * m;
      }
      EXPECT_LT(std::sqrt(dd / rr), max_rel) << what << ", token row " << t;
      EXPECT_GT(dot / std::sqrt(rr * mm), min_cos) << what << ", token row " << t;
    }
  };
  // The float32 blocks differ from the engine's by the weights' (Q4_1) and activations' (Q8_1)
  // quantization, and the recorded pass also by its float32 attention.
  compare(served.data(), 0.03, 0.9995, "float32 blocks");
  compare(trained.data(), 0.03, 0.9995, "float32 blocks, recorded");
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
  ASSERT_EQ(head.blocks.size(), 9u);  // block 2's norms and matrices
  for (const auto& p : head.blocks) EXPECT_TRUE(p.name.starts_with("blk.2.")) << p.name;
  EXPECT_EQ(head.first_block, 2);
  EXPECT_EQ(head.backbone_layers, 3);
  const auto up = std::find_if(head.blocks.begin(), head.blocks.end(),
                               [](const train::Param& p) { return p.name == "blk.2.ffn_up.weight"; });
  ASSERT_NE(up, head.blocks.end());
  const TensorView orig = model->file().tensor("blk.2.ffn_up.weight");
  std::vector<float> row(static_cast<size_t>(orig.ne[0]));
  kernels::dequantize_row(orig.type, orig.row(0), row.data(), orig.ne[0]);
  EXPECT_NE(std::vector<float>(up->value.begin(), up->value.begin() + orig.ne[0]), row);
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
  o.block_lr = -1;  // (0 picks the default)
  EXPECT_NE(error_of(o).find("--block-lr"), std::string::npos);
  o.block_lr = 0;
  o.lora_rank = 4;
  o.lora_alpha = 0;
  EXPECT_NE(error_of(o).find("--lora-alpha must be"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(temp_path("never.gguf")));
}

}  // namespace
}  // namespace edgelm
