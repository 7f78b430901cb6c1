// Intent classification on top of a small language model: features are the backbone's final
// hidden states, pooled (last token, mean, or learned attention) and fed to a small head that
// is trained on the CPU and stored as its own GGUF (edgelm.classifier.* metadata). The head
// records the backbone's SHA-256 and refuses any other backbone.
//
//   auto model = edgelm::Model::load("smollm2");
//   edgelm::intent::TrainOptions o;  o.pooling = edgelm::train::Pooling::Mean;
//   edgelm::intent::train_classifier(model, "train.jsonl", "val.jsonl", "head.gguf", o);
//   edgelm::intent::Classifier c(model, "head.gguf");
//   auto p = c.classify("navigate to the nearest gas station", 3);
//   std::cout << p.intent << " " << p.confidence << "\n";
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "edgelm/model.hpp"
#include "edgelm/session.hpp"
#include "edgelm/train.hpp"

namespace edgelm::intent {

// The label that marks out-of-scope examples (CLINC150's name for it).
inline constexpr const char* kOosLabel = "oos";

struct Example {
  std::string text;
  std::string label;
};
// JSON Lines, one {"text": ..., "label": ...} object a line ("intent" is accepted for "label",
// as CLINC150 names it). Blank lines are skipped. Throws edgelm::Error naming the file and line
// for malformed JSON, a missing or non-string field, or an empty text.
std::vector<Example> read_examples(const std::string& path);

std::string sha256_hex(std::span<const unsigned char> data);
// SHA-256 of a file's bytes, as `sha256sum` prints it.
std::string sha256_file(const std::string& path);

// Per-token final hidden states of many texts (float16, BOS row dropped), enough for any pooling.
struct TokenStates {
  int n_embd = 0;
  std::vector<uint64_t> offsets;  // size() + 1 row offsets
  std::vector<uint16_t> data;     // rows of n_embd half floats
  size_t size() const { return offsets.empty() ? 0 : offsets.size() - 1; }
  int n_tokens(size_t i) const { return static_cast<int>(offsets[i + 1] - offsets[i]); }
  void get(size_t i, std::vector<float>& out) const;  // n_tokens(i) x n_embd floats
};

// The token ids the classifier reads for a text: `templ` with {text} replaced, BOS as the
// model asks. Throws edgelm::Error for an empty (or all-blank) text.
std::vector<int32_t> encode_text(const Tokenizer& tok, std::string_view text, const std::string& templ);

// The early exit `n_layers` (FeatureOptions::n_layers) asks of a backbone with config c, as
// SessionOptions::n_layers and Head::backbone_layers hold it: K when 0 < K < c.n_layer, else 0
// (all blocks).
inline int early_exit(int n_layers, const ModelConfig& c) {
  return n_layers > 0 && n_layers < c.n_layer ? n_layers : 0;
}

struct FeatureOptions {
  std::string templ = "{text}";
  int n_threads = 0;      // 0: all cores
  int texts_per_call = 32;  // texts per embed_batch call (the session's n_seq)
  int n_batch = 512;      // tokens per forward pass
  // Early exit: the states after the backbone's first n_layers blocks (0, or more than it has:
  // all). 6 of SmolLM2's
  // 30 gives better intent features than all 30 at a fifth of the time (README: 6 to 12 tried).
  int n_layers = 6;
  std::string cache_dir;  // "" : $EDGELM_FEATURE_CACHE or ~/.cache/edgelm/features; "-": no cache
};
using ProgressFn = std::function<void(size_t done, size_t total)>;

// Hidden states of `texts`, from the cache when an entry for the same backbone, texts and
// template exists, else computed with Session::embed_batch and stored (atomically).
// `cache_hit` (optional) tells which happened.
TokenStates text_states(const std::shared_ptr<const Model>& model, const std::string& backbone_sha256,
                        const std::vector<std::string>& texts, const FeatureOptions& opts,
                        const ProgressFn& progress = {}, bool* cache_hit = nullptr);

// A trained head with everything needed to use it.
struct Head {
  train::ClassifierHead net{train::HeadShape{1, 0, 2, train::Pooling::Mean}};
  std::vector<std::string> labels;
  std::string backbone_name;
  std::string backbone_sha256;
  std::string templ = "{text}";
  float oos_threshold = 0;  // below this top probability a prediction becomes out-of-scope
  // Early exit: the head reads the states after the backbone's first backbone_layers blocks
  // (and its output norm); 0: after all of them.
  int backbone_layers = 0;
  // Fine-tuned copies of every backbone tensor of blocks [first_block, blocks used), named as
  // in the backbone's file ("blk.29.attn_q.weight"); empty: the backbone is used as it is.
  // With lora_alpha > 0 they are LoRA adapters instead ("blk.29.attn_q.weight.lora_a" /
  // ".lora_b", llama.cpp's layout), scaled by lora_alpha / rank beside the backbone's own
  // (still quantized) products.
  std::vector<train::Param> blocks;
  int first_block = 0;
  float lora_alpha = 0;
  // The LoRA adapters of `blocks` for `model` (lora_alpha > 0); throws edgelm::Error when they
  // do not fit it.
  std::shared_ptr<const LoraAdapter> lora_adapter(const Model& model) const;
  int oos_index() const;    // index of "oos" in labels, -1 if absent
  int layers_used(const ModelConfig& c) const { return backbone_layers > 0 ? backbone_layers : c.n_layer; }
};
void save_head(const Head& head, const std::string& path);  // atomic (temp file + rename)
Head load_head(const std::string& path);                    // throws edgelm::Error if invalid
// Throws edgelm::Error when the head was trained on another backbone.
void check_backbone(const Head& head, const Model& model, const std::string& model_sha256);

struct TrainOptions {
  train::Pooling pooling = train::Pooling::Mean;
  int hidden = 0;          // 0: linear head
  int epochs = 40;
  float lr = 2e-3f;
  float weight_decay = 0.3f;  // with dropout 0.6: the best of the grid on CLINC150 (README)
  int batch_size = 32;
  uint64_t seed = 1;
  int patience = 6;        // early stopping (epochs without a better validation loss)
  int lr_patience = 2;     // ReduceLROnPlateau
  float lr_factor = 0.5f;
  float clip = 1.0f;       // gradient-norm clipping (0: off)
  float dropout = 0.6f;     // on the pooled features; strong regularisation pays on CLINC150
  // "auto": chosen on validation to maximise accuracy over all validation examples (in-scope
  // and out-of-scope alike); "none"; or a number in [0, 1].
  std::string oos_threshold = "auto";
  // Fine-tune the top `unfreeze` blocks of the blocks used (features.n_layers) with the head (0: frozen backbone): after the
  // head is trained on the frozen backbone, `unfreeze_epochs` more epochs train head and blocks
  // together (the head at its final learning rate, the blocks in float32 at block_lr). The
  // blocks' input states are computed once.
  int unfreeze = 0;
  int unfreeze_epochs = 3;
  float block_lr = 0;  // 0: 5e-5 for whole blocks, 1e-3 for LoRA adapters
  // LoRA (lora_rank > 0): the unfrozen blocks (all the blocks used when unfreeze is 0) train as
  // adapters of this rank over the backbone's own, still quantized weights, and the head file
  // carries them; classify runs the backbone with them.
  int lora_rank = 0;
  float lora_alpha = 16;
  std::vector<std::string> lora_targets{"q", "k", "v", "o", "gate", "up", "down"};
  FeatureOptions features;
};

struct EpochStats {
  int epoch = 0;
  double train_loss = 0, val_loss = 0, val_acc = 0, lr = 0, seconds = 0;
  bool best = false;
  bool lr_reduced = false;
};

// CLINC150's metrics: in-scope accuracy (an in-scope example counts when its intent is right;
// predicting oos is wrong) and out-of-scope recall.
struct ScopeMetrics {
  double in_scope_acc = 0, oos_recall = 0, overall_acc = 0;
  size_t n_in = 0, n_oos = 0;
};
struct ThresholdPoint {
  float threshold = 0;
  ScopeMetrics m;
};

struct TrainReport {
  std::vector<EpochStats> epochs;
  int best_epoch = 0;
  double best_val_loss = 0;
  ScopeMetrics argmax;       // oos class only
  ScopeMetrics thresholded;  // oos class + confidence threshold
  float threshold = 0;
  std::vector<ThresholdPoint> curve;  // a few thresholds for the report
  double feature_seconds = 0, train_seconds = 0;
  double head_seconds = 0;  // the head on the frozen backbone (all of train_seconds without --unfreeze)
  double block_feature_seconds = 0, block_train_seconds = 0;  // --unfreeze: frozen part once, fine-tuning
  int blocks_tuned = 0;  // --unfreeze / --lora: the blocks fine-tuned (0: none)
  bool train_cache_hit = false, val_cache_hit = false;
  size_t n_train = 0, n_val = 0;
};

struct TrainCallbacks {
  std::function<void(const EpochStats&)> on_epoch;
  std::function<void(const char* stage, size_t done, size_t total)> on_progress;
};

TrainReport train_classifier(const std::shared_ptr<const Model>& model, const std::string& train_path,
                             const std::string& val_path, const std::string& out_path, const TrainOptions& opts,
                             const TrainCallbacks& cb = {});

// Picks the threshold; exposed for tests. probs: n x n_class softmax rows; labels: class ids.
ScopeMetrics scope_metrics(std::span<const float> probs, std::span<const int> labels, int n_class, int oos_index,
                           float threshold);

struct Ranked {
  std::string label;
  float prob = 0;
};
struct Prediction {
  std::string intent;     // top label, or "oos" when below the threshold
  float confidence = 0;   // top probability
  bool oos = false;
  std::vector<Ranked> top;  // top-k labels by probability
};

// A head bound to its backbone, ready to classify.
class Classifier {
 public:
  // Loads the head, checks it was trained on this backbone (by SHA-256 of the file).
  Classifier(std::shared_ptr<const Model> model, const std::string& head_path, int n_threads = 1,
             int max_batch = 16);
  // Same, with the backbone's SHA-256 already known (saves hashing the file again).
  Classifier(std::shared_ptr<const Model> model, Head head, const std::string& model_sha256, int n_threads = 1,
             int max_batch = 16);
  ~Classifier();
  const Head& head() const { return head_; }
  Prediction classify(std::string_view text, int top_k = 1);
  std::vector<Prediction> classify_batch(std::span<const std::string> texts, int top_k = 1);
  static constexpr int kMaxTokens = 512;

 private:
  Prediction predict(const float* states, int n_tokens, int top_k) const;
  std::shared_ptr<const Model> model_;
  Head head_;
  std::unique_ptr<Session> session_;  // the frozen backbone, or the blocks below the fine-tuned ones
  std::shared_ptr<train::LanguageModel> tuned_;  // the fine-tuned blocks and the output norm
  int max_batch_;
};

// The in-car assistant built on the classifier: edgelm/car.hpp.

}  // namespace edgelm::intent
