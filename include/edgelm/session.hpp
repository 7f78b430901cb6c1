// A session: the KV cache, scratch and threads for running a model on one or more sequences.
//
//   auto model = edgelm::Model::load("smollm2");
//   edgelm::Session s(model, {.n_ctx = 2048, .n_threads = 2});
//   auto logits = s.eval(model->tokenizer().encode("Once upon", false, false));
//   edgelm::Sampler sampler({.temp = 0});
//   edgelm::generate(s, sampler, prompt_ids, 32, [](int32_t tok) { ...; return true; });
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "edgelm/lora.hpp"
#include "edgelm/model.hpp"
#include "edgelm/sampler.hpp"

namespace edgelm {

struct SessionOptions {
  int n_ctx = 2048;    // positions per sequence
  int n_threads = 0;   // 0: all hardware threads
  int n_seq = 1;       // independent sequences (each with its own KV cache)
  int n_batch = 256;   // tokens per forward pass while processing a prompt
  DType kv_type = DType::F16;  // KV cache storage: F16, or Q8_0 (8-bit, 53 % of the bytes)
  MatmulInputHook on_matmul_input{};  // optional: see MatmulInputHook
  BlockOutputHook on_block_output{};  // optional: see BlockOutputHook
  // Early exit: run only the model's first n_layers blocks, then the output norm (and the
  // output head for logits); 0 runs them all. Hidden states from an intermediate block are
  // often better features than the last one's, and the skipped blocks cost no time, no KV
  // cache and, with the weights memory-mapped, no resident memory.
  int n_layers = 0;
  // embed() and embed_batch() return the residual stream after the last block run, without
  // the output norm: the input of further blocks that the caller runs itself.
  bool residual_hidden = false;
  // LoRA adapters applied beside the model's matrix products (edgelm::LoraAdapter::load).
  std::vector<LoraUse> lora{};
};

// "f16" or "q8_0" (any case) as a KV cache type; throws edgelm::Error naming the choices.
DType parse_kv_type(std::string_view name);

class Session {
 public:
  Session(std::shared_ptr<const Model> model, SessionOptions opts = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const Model& model() const { return *model_; }
  int n_ctx() const { return opts_.n_ctx; }
  int n_seq() const { return opts_.n_seq; }
  int n_threads() const;
  // Blocks each forward pass runs: SessionOptions::n_layers, or all of the model's.
  int n_layers() const { return opts_.n_layers > 0 ? opts_.n_layers : model_->config().n_layer; }
  // Tokens whose keys and values are in the cache for `seq`, in order.
  const std::vector<int32_t>& tokens(int seq = 0) const;
  int n_past(int seq = 0) const { return static_cast<int>(tokens(seq).size()); }
  uint64_t kv_bytes() const;

  // Appends tokens to `seq` and returns the next-token logits after the last one (n_vocab
  // floats, valid until the next call). Throws edgelm::Error if they do not fit the context.
  std::span<const float> eval(std::span<const int32_t> tokens, int seq = 0);
  // Like eval, but returns logits after every token (tokens.size() x n_vocab), for perplexity.
  std::span<const float> eval_all(std::span<const int32_t> tokens, int seq = 0);
  // Like eval_all, but each row is bit for bit what evaluating the tokens one at a time gives
  // (eval_all sums attention in the order of a batched pass, as llama.cpp's prompt processing
  // does, which rounds differently): speculative decoding's verification of a draft.
  std::span<const float> eval_as_decoded(std::span<const int32_t> tokens, int seq = 0);
  // Like eval_all, but returns each token's final hidden state (after the output norm,
  // n_embd floats per token) instead of logits: the features for pooling and classifiers.
  std::span<const float> embed(std::span<const int32_t> tokens, int seq = 0);
  // Hidden states of several independent texts, packed into as few forward passes as the batch
  // size allows: text i is evaluated from an empty cache in sequence i (at most n_seq texts;
  // their earlier contents are dropped). The result holds all tokens' rows, text after text.
  std::span<const float> embed_batch(std::span<const std::vector<int32_t>> texts);

  // New tokens for the listed sequences, all in one forward pass: token i goes to seqs[i]
  // (a sequence listed several times gets its tokens in order, as a speculative draft does);
  // row i of the result is the logits after token i. Every row is bit for bit what a one-token
  // eval gives, whatever else shares the pass.
  std::span<const float> decode(std::span<const int32_t> tokens, std::span<const int> seqs);

  // The scale of each SessionOptions::lora adapter for `seq` (at first the options' scales):
  // sequences of one session may use the adapters differently (the server's per-request
  // adapters). Changing them drops seq's cached positions, computed with the old scales.
  std::span<const float> lora_scales(int seq = 0) const;
  void set_lora_scales(int seq, std::span<const float> scales);

  // Drops cached positions from n_keep on.
  void truncate(int seq, int n_keep);
  // Keeps the longest cached prefix shared with `tokens` and returns its length; the caller
  // then evals only the rest. (A prefix equal to all of `tokens` keeps one token fewer so that
  // there is something to eval for fresh logits.)
  int reuse_prefix(int seq, std::span<const int32_t> tokens);

 private:
  // Throws unless toks is non-empty and fits after seq's cached positions.
  void check_append(std::span<const int32_t> toks, int seq) const;
  struct Impl;
  std::shared_ptr<const Model> model_;
  SessionOptions opts_;
  std::unique_ptr<Impl> impl_;
};

// What generate() does when the context is full: stop, or shift -- keep the first n_keep cached
// tokens, drop the older half of the rest, re-evaluate what is kept after them and go on (as
// llama.cpp's context shift does; the kept tokens are evaluated again at their new positions,
// so the cache is exactly what a fresh evaluation of them gives).
struct ContextShift {
  int n_keep = 0;
  std::function<void(int n_dropped)> on_shift;  // optional: told after each shift
};

// The shift itself, for generation loops: drops the older half of seq's cached positions after
// the first shift->n_keep and returns the tokens that followed them, which the caller
// evaluates again (with whatever it appends); nullopt, with nothing changed, when there is no
// shift or it may drop nothing.
std::optional<std::vector<int32_t>> shift_context(Session& s, int seq, const ContextShift* shift);

// Samples up to max_tokens tokens after the cached history of seq (`prompt` is evaluated first).
// on_token is called with each new token before it is fed back; returning false stops. Stops at
// an end-of-generation token (not passed to on_token), or when the context is full unless
// `shift` is given (and keeps fewer tokens than the context holds). Returns the number of tokens
// generated.
int generate(Session& s, Sampler& sampler, std::span<const int32_t> prompt, int max_tokens,
             const std::function<bool(int32_t)>& on_token, int seq = 0, const ContextShift* shift = nullptr);

}  // namespace edgelm
