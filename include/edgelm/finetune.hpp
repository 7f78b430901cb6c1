// Fine-tuning of a language model on the CPU, every weight or LoRA adapters over a frozen
// (quantized) base: training data read from JSON Lines (chat
// messages rendered with the model's chat format, the loss on the assistant's tokens only; or
// plain text) or a plain text file, AdamW with gradient clipping, gradient accumulation and a
// learning-rate schedule, a validation loss per epoch, and the result written as a GGUF of the
// base's metadata with F32 or F16 weights (which `edgelm quantize` then shrinks).
//
//   auto model = edgelm::Model::load("smollm2");
//   auto data = edgelm::load_lm_data(*model, "train.jsonl", {.n_ctx = 256});
//   edgelm::FinetuneReport r = edgelm::finetune(model, data, val, "tuned.gguf", {.lr = 2e-5f});
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "edgelm/model.hpp"
#include "edgelm/train.hpp"

namespace edgelm {

// One training sequence: its tokens and, per position, the token it is trained to predict
// (-1: no loss there).
struct LmExample {
  std::vector<int32_t> tokens, targets;
};

struct LmDataOptions {
  int n_ctx = 256;          // longest sequence; a longer example is an error naming its line
  std::string chat_format{};  // for chat messages; empty: the model's own
};

// Reads FILE.jsonl (one object per line: {"messages": [{"role", "content"}, ...]} or
// {"text": "..."}) or any other file as plain text (cut into n_ctx-token windows). Throws
// edgelm::Error naming the file and line for a malformed line, an example with no trained
// token, or one longer than n_ctx.
std::vector<LmExample> load_lm_data(const Model& model, const std::string& path, const LmDataOptions& o);

struct FinetuneOptions {
  int epochs = 1;
  float lr = 2e-5f;
  int batch = 8;          // sequences per step (packed)
  int grad_accum = 1;     // steps whose gradients add up before one optimizer update
  // "constant", "cosine" (linear warm-up, then cosine to 0) or "plateau" (PyTorch's
  // ReduceLROnPlateau on the validation loss: lr *= plateau_factor after more than
  // plateau_patience validations without a better loss)
  std::string schedule = "constant";
  double plateau_factor = 0.5;
  int plateau_patience = 2;
  double plateau_threshold = 1e-4;  // relative: "better" means below best * (1 - threshold)
  int plateau_cooldown = 0;         // validations after a reduction in which none are counted
  double plateau_min_lr = 0;        // the learning rate never goes below this
  int warmup = 0;         // optimizer updates of linear warm-up
  float clip = 1.0f;      // gradient-norm clipping (0: off)
  float weight_decay = 0.0f;
  uint64_t seed = 42;
  int n_threads = 0;      // 0: all cores
  bool f16 = true;        // matrices written as F16 (norms and biases stay F32); false: all F32
  bool recompute = false; // activation checkpointing per block (LanguageModelOptions::recompute)
  int eval_every = 0;     // optimizer updates between validations (0: one at the end of each epoch)
  int patience = 0;       // stop after this many validations without a lower loss (0: never)
  // written atomically after each validation and epoch: weights, AdamW state and the run's
  // position (a loadable F32 GGUF besides)
  std::string checkpoint{};
  std::string resume{};   // a checkpoint to go on from (same model, data and options)
  // LoRA (lora.rank > 0): the base stays frozen in its own types and the output file is an
  // adapter (llama.cpp's layout) instead of a model. Its seed is `seed`.
  train::LoraOptions lora{};
  // Knowledge distillation (edgelm/distill.hpp): the teacher's distributions for a batch of
  // training examples (indices into `train`, in batch order), written over `out`
  // (TeacherSignal), and the loss's alpha, T^2 factor and direction (its teacher pointer is set
  // per batch). Validation stays the cross-entropy.
  std::function<void(std::span<const int> ids, train::TeacherTargets& out)> teacher{};
  train::DistillLoss distill{};
};

struct FinetuneEpoch {
  int epoch = 0;
  double train_loss = 0;  // mean over the epoch's batches
  double val_loss = 0;    // the latest validation's (NaN without one)
  double seconds = 0;
  double tokens_per_second = 0;  // trained tokens (forward + backward + update)
};

struct FinetuneEval {
  int64_t update = 0;  // updates done when it was measured
  int epoch = 0;
  double val_loss = 0;
  float lr = 0;        // the learning rate of the last update
};

struct FinetuneReport {
  double initial_val_loss = 0;  // before the first update (NaN without validation data)
  std::vector<FinetuneEpoch> epochs;
  std::vector<FinetuneEval> evals;
  int64_t updates = 0;
  int64_t tokens_trained = 0;   // tokens of the batches trained on, over all epochs
  bool stopped_early = false;   // by `patience`
};

struct FinetuneCallbacks {
  std::function<void(int64_t done, int64_t total, double loss)> on_step;  // after each update
  std::function<void(const FinetuneEpoch&)> on_epoch;
  std::function<void(const FinetuneEval&)> on_eval;  // after each validation
};

// Trains every weight of `model` (or, with LoRA, adapters beside it) on `train` (validation on
// `val`, may be empty) and writes the result to out_path (atomically). Throws edgelm::Error for bad options or a diverged loss.
FinetuneReport finetune(const std::shared_ptr<const Model>& model, const std::vector<LmExample>& train,
                        const std::vector<LmExample>& val, const std::string& out_path, const FinetuneOptions& o,
                        const FinetuneCallbacks& cb = {});

}  // namespace edgelm
