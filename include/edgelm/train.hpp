// Training building blocks written for the CPU: a seeded random generator, softmax
// cross-entropy, AdamW with decoupled weight decay, gradient-norm clipping, ReduceLROnPlateau,
// early stopping, and a classification head (pooling + linear or one-hidden-layer MLP) with
// its own backward pass. Single-threaded and in a fixed order, so one seed gives bit-identical
// results on one machine.
//
//   edgelm::train::Rng rng(42);
//   edgelm::train::ClassifierHead head({.n_embd = 576, .n_hidden = 0, .n_class = 151,
//                                       .pooling = edgelm::train::Pooling::Mean});
//   head.init(rng);
//   edgelm::train::AdamW opt(head.params(), {.lr = 1e-3f, .weight_decay = 0.01f});
//   // per example: head.forward(states, n_tokens, logits, &trace);
//   //              softmax_cross_entropy(logits, n_class, label, dlogits);
//   //              head.backward(trace, dlogits);
//   edgelm::train::clip_grad_norm(head.params(), 1.0f);
//   opt.step();
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "edgelm/lora.hpp"

namespace edgelm {
class Model;
struct ModelConfig;
}  // namespace edgelm

namespace edgelm::train {

// xoshiro256** seeded through splitmix64: the same stream on every platform (unlike the
// standard library's distributions, whose output is implementation-defined).
class Rng {
 public:
  explicit Rng(uint64_t seed);
  uint64_t next();
  float uniform();                 // [0, 1), 24 random bits
  float normal();                  // standard normal (Box-Muller)
  uint32_t below(uint32_t n);      // uniform in [0, n), n > 0
  void shuffle(std::vector<int>& v);
  // The generator's whole state (checkpoints).
  std::array<uint64_t, 4> state() const { return {s_[0], s_[1], s_[2], s_[3]}; }
  void set_state(const std::array<uint64_t, 4>& s) { std::copy(s.begin(), s.end(), s_); }

 private:
  uint64_t s_[4];
};

// A trainable tensor: values, accumulated gradients, and whether weight decay applies.
struct Param {
  std::string name;
  std::vector<float> value;
  std::vector<float> grad{};
  bool decay = true;
  std::vector<int64_t> shape;  // dimensions, GGUF order (first = row length); empty: 1-D
  float decay_center = 0.0f;  // weight decay pulls towards this (1 for a norm stored as 1 + w)
  void resize(size_t n) { value.assign(n, 0.0f); grad.assign(n, 0.0f); }
};

// Loss for one example: -log softmax(logits)[label]. When dlogits is not null it receives the
// gradient softmax(logits) - onehot(label), scaled by `scale`.
float softmax_cross_entropy(const float* logits, int n_class, int label, float* dlogits, float scale = 1.0f);
void softmax(const float* in, float* out, int n);

// Scales all gradients so that their joint L2 norm is at most max_norm; returns the norm before.
float clip_grad_norm(std::span<Param* const> params, float max_norm);

struct AdamWOptions {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.01f;  // decoupled: w -= lr * wd * w, only for params with decay=true
  int n_threads = 1;           // threads of step() (each element's update is independent)
};

class AdamW {
 public:
  AdamW(std::vector<Param*> params, AdamWOptions opts);
  void step();        // one update from the accumulated gradients
  void zero_grad();
  float lr() const { return opts_.lr; }
  void set_lr(float lr) { opts_.lr = lr; }
  int64_t steps() const { return t_; }
  // The state a checkpoint keeps: the step count and param k's first and second moments.
  void set_steps(int64_t t) { t_ = t; }
  std::vector<float>& moment1(size_t k) { return m_[k]; }
  std::vector<float>& moment2(size_t k) { return v_[k]; }

 private:
  std::vector<Param*> params_;
  AdamWOptions opts_;
  std::vector<std::vector<float>> m_, v_;
  int64_t t_ = 0;
};

// PyTorch's torch.optim.lr_scheduler.ReduceLROnPlateau, option for option: after more than
// `patience` epochs without a better metric (mode min: lower, max: higher; "better" beyond
// `threshold`, relative or absolute), lr = max(lr * factor, min_lr), unless that changes it by
// eps or less; then `cooldown` epochs in which bad epochs are not counted. The first metric is
// always an improvement (PyTorch starts from +-inf).
struct PlateauOptions {
  enum class Mode { kMin, kMax };
  enum class ThresholdMode { kRel, kAbs };
  Mode mode = Mode::kMin;
  double factor = 0.1;   // < 1
  int patience = 10;
  double threshold = 1e-4;
  ThresholdMode threshold_mode = ThresholdMode::kRel;
  int cooldown = 0;
  double min_lr = 0;
  double eps = 1e-8;
};

class ReduceLROnPlateau {
 public:
  explicit ReduceLROnPlateau(PlateauOptions o);  // throws edgelm::Error for factor >= 1 or negative counts
  // mode min, relative threshold, no cooldown (the intent trainer's settings)
  ReduceLROnPlateau(float factor = 0.5f, int patience = 2, float threshold = 1e-4f, float min_lr = 1e-6f);
  // One epoch's metric; returns true when it lowered the optimizer's learning rate.
  bool step(double metric, AdamW& opt);
  double best() const { return best_; }
  int bad_epochs() const { return bad_; }
  struct State {
    double best;
    int bad, cooldown_left;
  };
  State state() const { return {best_, bad_, cooldown_left_}; }
  void set_state(const State& s) { best_ = s.best, bad_ = s.bad, cooldown_left_ = s.cooldown_left; }

 private:
  bool better(double a) const;
  PlateauOptions o_;
  double best_;
  int bad_ = 0;
  int cooldown_left_ = 0;
};

// Stops after `patience` epochs without a new best (lower) value.
class EarlyStopping {
 public:
  explicit EarlyStopping(int patience) : patience_(patience) {}
  // Records an epoch's value; returns true when it is a new best.
  bool update(float metric);
  bool should_stop() const { return patience_ > 0 && bad_ >= patience_; }
  float best() const { return best_; }
  int bad_epochs() const { return bad_; }
  bool has_best() const { return has_best_; }
  void set_state(bool has_best, float best, int bad) { has_best_ = has_best, best_ = best, bad_ = bad; }

 private:
  int patience_;
  float best_ = 0;
  bool has_best_ = false;
  int bad_ = 0;
};

// The training loop, written once for every trainer (fine-tuning, the classifier's head and
// blocks): epochs of shuffled mini-batches, gradient accumulation, gradient-norm clipping over
// all params, optimizer updates, validation every N updates or after each epoch, early
// stopping, and a resumable position. What a batch computes, how the learning rate moves and
// what is saved come from the caller's hooks.
//
//   train::TrainingLoop loop(params, {&opt}, {.epochs = 3, .batch = 8, .clip = 1.0f, .patience = 2});
//   loop.run(n_examples, rng, {.train_batch = [&](std::span<const int> ids) { ...; return BatchLoss{...}; },
//                              .validate = [&] { return val_loss(); }});
struct LoopOptions {
  int epochs = 1;          // epochs of this run
  int first_epoch = 1;     // the first one's number (a later phase goes on counting)
  size_t batch = 1;        // examples per mini-batch
  int grad_accum = 1;      // mini-batches whose gradients are averaged into one update
  float clip = 0;          // gradient-norm clipping over all params (0: off)
  int eval_every = 0;      // validate every N updates (0: after each epoch only)
  int patience = 0;        // stop after N validations without a lower loss (0: never)
  std::string diverged_hint = "lower --lr";  // the hint of the error for a loss that is not finite
};

// A mini-batch's losses: their sum over `count` units (examples, or 1 for a batch mean), and
// its tokens. The epoch's training loss is the sum of sums over the sum of counts.
struct BatchLoss {
  double sum = 0;
  double count = 1;
  int64_t tokens = 0;
};

// Where a run is, for checkpoints: the epoch in progress, its example order and next batch,
// its loss and token sums so far, and the updates done.
struct LoopState {
  int epoch = 0;  // 0: not started (run() begins at first_epoch)
  int64_t next_batch = 0, updates = 0, tokens = 0;
  std::vector<int> order;
  double loss_sum = 0, loss_count = 0;
};

struct LoopUpdate {
  int epoch;
  size_t batch, n_batches;  // the batch just used (from 1) of the epoch's
  int64_t update, total_updates;
  double loss;              // the last batch's loss (sum / count)
};
struct LoopValidation {
  int epoch;
  int64_t update;
  double loss;
  bool best;  // lower than every earlier one (and than start_from's)
};
struct LoopEpoch {
  int epoch;
  double train_loss;
  double seconds;
  int64_t tokens;
};

struct LoopHooks {
  // Required: adds the gradient of the batch's mean loss to the params' grads.
  std::function<BatchLoss(std::span<const int> ids)> train_batch;
  // The validation loss; none: no validation (eval_every and patience need one).
  std::function<double()> validate;
  std::function<void(int64_t update)> set_lr;                  // before each update (from 0)
  std::function<void(const LoopUpdate&)> on_update;            // after each update
  std::function<void(const LoopValidation&)> on_validation;    // schedules, reports, best checkpoints
  std::function<void(const LoopEpoch&)> on_epoch;
  std::function<void()> checkpoint;  // the state is consistent: after a mid-epoch validation and each epoch
};

class TrainingLoop {
 public:
  // Throws edgelm::Error for a batch or grad_accum below 1, or negative counts.
  TrainingLoop(std::vector<Param*> params, std::vector<AdamW*> optimizers, LoopOptions o);
  // A validation loss measured before training, as the one to beat.
  void start_from(double val_loss) { stopper_.update(static_cast<float>(val_loss)); }
  // Trains on examples 0..n_examples-1 (from state() when resumed) to the last epoch or an
  // early stop; returns true for an early stop. Throws edgelm::Error (with the hint) when a
  // training or validation loss is not finite.
  bool run(size_t n_examples, Rng& rng, const LoopHooks& h);
  LoopState& state() { return st_; }
  EarlyStopping& stopper() { return stopper_; }
  // Updates per epoch for n_examples.
  int64_t updates_per_epoch(size_t n_examples) const;

 private:
  std::vector<Param*> params_;
  std::vector<AdamW*> opts_;
  LoopOptions o_;
  EarlyStopping stopper_;
  LoopState st_;
};

enum class Pooling { Last, Mean, Attention };
const char* pooling_name(Pooling p);
Pooling parse_pooling(const std::string& s);  // throws edgelm::Error for an unknown name

struct HeadShape {
  int n_embd = 0;
  int n_hidden = 0;   // 0: linear head; else one ReLU hidden layer of this width
  int n_class = 0;
  Pooling pooling = Pooling::Mean;
};

// Pooling + input standardisation + linear / MLP head. Token states enter raw; each is mapped
// to (h - mean) * scale (statistics fixed before training), pooled (last row, mean, or softmax
// attention with a learned query), optionally dropped out, then classified.
class ClassifierHead {
 public:
  explicit ClassifierHead(HeadShape shape);
  const HeadShape& shape() const { return shape_; }
  int n_in() const { return shape_.n_embd; }

  // Small random weights (uniform, +-1/sqrt(fan_in)), zero biases, zero attention query (which
  // makes attention pooling start as mean pooling).
  void init(Rng& rng);
  // Per-dimension standardisation: x = (h - mean) * scale.
  std::vector<float> in_mean, in_scale;

  Param query;     // [n_embd]                     attention pooling only
  Param w1, b1;    // [n_hidden][n_embd], [n_hidden] MLP only
  Param w2, b2;    // [n_class][n_in2], [n_class]   n_in2 = n_hidden or n_embd
  std::vector<Param*> params();

  // Intermediate values of one forward pass, kept for backward.
  struct Trace {
    int n_tokens = 0;
    std::vector<float> x;        // standardised token rows (attention pooling)
    std::vector<float> attn;     // attention weights
    std::vector<float> pooled;   // pooled + standardised input, before dropout
    std::vector<float> mask;     // dropout multipliers (empty: no dropout)
    std::vector<float> hidden;   // post-ReLU hidden layer
  };
  // Pools the raw token states (n_tokens rows of n_embd floats) into one standardised vector.
  // For Last/Mean pooling this does not depend on trained weights, so training can pool once.
  void pool(const float* tokens, int n_tokens, float* out, Trace* trace = nullptr) const;
  // logits = head(pool(tokens)). `rng` with dropout > 0 enables dropout (training).
  void forward(const float* tokens, int n_tokens, float* logits, Trace* trace = nullptr,
               float dropout = 0.0f, Rng* rng = nullptr) const;
  // Same, from an already pooled vector (Last/Mean pooling).
  void forward_pooled(const float* pooled, float* logits, Trace* trace = nullptr,
                      float dropout = 0.0f, Rng* rng = nullptr) const;
  // Accumulates parameter gradients for dL/dlogits into the params' grad fields. With `dtokens`
  // (n_tokens x n_embd floats, trace from forward()) also writes dL/d(token states).
  void backward(const Trace& trace, const float* dlogits, float* dtokens = nullptr);

 private:
  void head_forward(const float* in, float* logits, Trace* trace, float dropout, Rng* rng) const;
  HeadShape shape_;
};

// --- the whole language model, trainable ----------------------------------------------------

// Token sequences packed into one batch. targets[s][i] is the token that position i of sequence
// s is trained to predict, or -1 where no loss is taken (a chat prompt, the last position).
struct TokenBatch {
  std::vector<std::vector<int32_t>> tokens, targets;
  int64_t n_tokens() const;
  int64_t n_targets() const;
};

// A teacher's next-token distributions at the positions a batch trains (targets >= 0, in batch
// order), for knowledge distillation: per position the log-probabilities at `temperature` of
// its k likeliest words, and the log of the probability left over for the rest (-inf: none).
// With k == n_vocab it is the whole distribution and `ids` is empty (word order).
struct TeacherTargets {
  int64_t k = 0;
  float temperature = 1;
  std::vector<int32_t> ids{};     // rows x k
  std::vector<float> logp{};      // rows x k
  std::vector<float> log_rest{};  // rows
  int64_t rows() const { return static_cast<int64_t>(log_rest.size()); }
  // Appends the row of one position from the teacher's logits (n_vocab floats).
  void add_row(const float* logits, int64_t n_vocab);
  // Appends another's rows (of the same k and temperature).
  void append(const TeacherTargets& t);
};

// The distillation loss: alpha * CE(student, targets) + (1 - alpha) * c * KL, with KL between
// the teacher's and the student's distributions at the teacher's temperature T, forward
// KL(teacher || student) or reverse KL(student || teacher), and c = T^2 (Hinton's factor,
// which keeps the soft term's gradient the same size across temperatures) or 1. Both terms
// are means over the trained positions, as PyTorch's cross_entropy and kl_div(batchmean).
struct DistillLoss {
  const TeacherTargets* teacher = nullptr;
  float alpha = 0.5f;
  bool t_squared = true;
  bool reverse = false;
};

// A language model with float32 master weights: one Param per tensor of the GGUF file (its
// name and layout; quantized tensors are dequantized) or, with LoRA, per adapter matrix, run by the same forward pass that serves
// inference, with an activation tape, and its backward pass: token embedding, every block,
// final norm, tied or untied output. The cross-entropy over the vocabulary is computed in
// chunks of tokens, never as a tokens x vocabulary matrix.
//
//   edgelm::train::LanguageModel lm(edgelm::Model::load("smollm2"), /*n_threads=*/2);
//   edgelm::train::AdamW opt(lm.params(), {.lr = 2e-5f});
//   double loss = lm.loss(batch, /*backward=*/true);   // gradients added to each Param's grad
//   edgelm::train::clip_grad_norm(lm.params(), 1.0f);
//   opt.step(); opt.zero_grad();
// LoRA: the base's weights stay frozen, in their own (quantized) types; only low-rank
// adapters beside the chosen products train. A starts uniform in +-1/sqrt(n_in) (PyTorch's
// kaiming_uniform_(a=sqrt(5)), as peft), B at zero, so training starts from the base.
struct LoraOptions {
  int rank = 0;        // 0: no LoRA, every weight trains
  float alpha = 16;    // products scaled by alpha / rank
  float dropout = 0;   // on each adapter's input, in training passes only
  // among q k v o gate up down
  std::vector<std::string> targets{"q", "k", "v", "o"};
  uint64_t seed = 42;  // A's initial values and the dropout masks
};

struct LanguageModelOptions {
  int n_threads = 1;
  int n_layers = 0;     // blocks run (0: all), an early exit as SessionOptions::n_layers
  // Blocks [first_block, n_layers) and the final norm are trained; the blocks below are not
  // run. With first_block > 0 the residual stream entering it comes from the caller
  // (hidden_states), which ran the frozen blocks below once.
  int first_block = 0;
  // The token embeddings and the output matrix are trained too; loss() and logits() need
  // them (and first_block 0).
  bool lm_head = true;
  // Keep only each block's input during the forward pass and run each block again before
  // its backward step: about one more forward pass of time for the activation memory of one
  // block instead of all (gradient checkpointing per block).
  bool recompute = false;
  LoraOptions lora{};
};

class LanguageModel {
 public:
  // Throws edgelm::Error for a model whose blocks the backward pass does not cover.
  LanguageModel(std::shared_ptr<const Model> base, LanguageModelOptions options);
  LanguageModel(std::shared_ptr<const Model> base, int n_threads) : LanguageModel(std::move(base), {.n_threads = n_threads}) {}
  ~LanguageModel();
  LanguageModel(const LanguageModel&) = delete;
  LanguageModel& operator=(const LanguageModel&) = delete;

  const ModelConfig& config() const;
  std::vector<Param*> params();
  Param* find(const std::string& name);  // nullptr if absent
  // With LoRA: the adapters as they are now (alpha, the base's identity, A and B of each
  // target), ready to save; throws edgelm::Error without LoRA.
  LoraAdapter lora_adapter() const;

  // Mean cross-entropy of the batch's targets (sums in double), or with `kd` the distillation
  // loss. With `backward` the gradient of that mean is added to every Param's grad. Throws
  // edgelm::Error for an empty batch, mismatched shapes, ids outside the vocabulary or a
  // teacher whose rows or vocabulary do not fit the batch.
  double loss(const TokenBatch& batch, bool backward, const DistillLoss* kd = nullptr);
  // Logits of every position (tokens x n_vocab, sequences in order), from the training forward.
  std::vector<float> logits(const TokenBatch& batch);

  // Packed sequences of `lens` tokens whose residual stream entering first_block is
  // `residual_in` (one row of n_embd floats per token; for block 0, the scaled embeddings)
  // through the trained blocks and the final norm into `out` (same shape). `record` keeps what backward_hidden
  // needs; without it the pass is inference's (half-precision KV cache).
  void hidden_states(std::span<const int> lens, const float* residual_in, float* out, bool record);
  // The gradient of a loss of the last recorded hidden_states() output, given dL/d(out), added
  // to the params' grads.
  void backward_hidden(const float* dout);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgelm::train
