// Token sampling: greedy, temperature, top-k, top-p, min-p, repetition penalty; seeded.
//
//   edgelm::SamplerParams p; p.temp = 0.7f; p.top_p = 0.9f; p.seed = 42;
//   edgelm::Sampler s(p);
//   int32_t tok = s.sample(logits);   // logits: n_vocab floats
//   s.accept(tok);                    // feeds the repetition-penalty window
//   s.set_grammar(edgelm::GrammarConstraint(grammar, trie));  // only text the grammar accepts
#pragma once
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <random>
#include <span>
#include <vector>

#include "edgelm/grammar.hpp"

namespace edgelm {

// One token's probability in a distribution sample() draws from.
struct TokenProb {
  int32_t id;
  float p;
};

struct SamplerParams {
  float temp = 0.8f;           // <= 0 means greedy (argmax); must be finite
  int top_k = 40;              // <= 0 disables
  float top_p = 0.95f;         // 1 disables; valid (0, 1]
  float min_p = 0.05f;         // 0 disables; valid [0, 1]
  float repeat_penalty = 1.0f; // 1 disables; applied to tokens in the last repeat_last_n; > 0
  int repeat_last_n = 64;      // 0 disables all penalties; >= 0
  float presence_penalty = 0.0f;   // OpenAI-style, over the same window; finite
  float frequency_penalty = 0.0f;
  uint64_t seed = 0xED6E1A;    // same seed + same logits -> same tokens
};

class Sampler {
 public:
  // Throws edgelm::Error naming the first invalid parameter and its valid range.
  explicit Sampler(SamplerParams p = {});
  // Picks the next token. Order: penalties, top-k, top-p, min-p, temperature, softmax, draw —
  // the order llama.cpp's default chain uses (temperature last, so top-p and min-p see the
  // temperature-1 distribution), so the same settings behave alike. NaN logits count as -inf;
  // throws edgelm::Error when logits is empty or no logit is usable.
  int32_t sample(std::span<const float> logits);
  // Feeds the penalty window; a negative id throws edgelm::Error. Ids beyond the vocabulary of
  // a later sample() are ignored there.
  // With a grammar it also advances the grammar, and throws edgelm::Error for a token the
  // grammar does not allow.
  void accept(int32_t token);
  // Prompt tokens: they feed the penalty window but not the grammar, which constrains only what
  // is generated.
  void accept_prompt(std::span<const int32_t> tokens);
  void reset();  // clears history, reseeds, and puts the grammar back at its start

  // The distribution sample() would draw the next token from, after the whole chain: the tokens
  // that survive it with their normalised probabilities, most likely first (greedy: the argmax
  // alone, p = 1). Valid until the next call; draws nothing. Speculative decoding's rejection
  // rule compares it with the draft's.
  std::span<const TokenProb> distribution(std::span<const float> logits);
  // A token drawn from `weights` (non-negative, not necessarily normalised; at least one
  // positive), and a uniform number in [0, 1): both from this sampler's seeded stream.
  int32_t draw_from(std::span<const TokenProb> weights);
  double uniform();
  const SamplerParams& params() const { return p_; }

  // Constrains the following samples to the grammar: tokens it does not allow are masked to
  // -inf before the chain (greedy decoding checks its pick first and masks only when the pick
  // is not allowed). std::nullopt removes the constraint.
  void set_grammar(std::optional<GrammarConstraint> grammar) { grammar_ = std::move(grammar); }
  GrammarConstraint* grammar() { return grammar_ ? &*grammar_ : nullptr; }

 private:
  SamplerParams p_;
  std::mt19937_64 rng_;
  std::deque<int32_t> history_;
  struct Candidate { int32_t id; float logit; float p; };
  std::vector<Candidate> cand_;      // one per vocabulary entry; reused across calls
  std::vector<int32_t> window_;      // scratch copy of history_ for counting; reused
  std::vector<TokenProb> dist_;      // distribution()'s result

  // Penalties, top-k, top-p and min-p over logits: the first n candidates survive, and
  // max_logit is the best one's logit. Greedy (temp <= 0) stops after the argmax: n = 1,
  // with the argmax first.
  size_t filter(std::span<const float> logits, float& max_logit);
  std::optional<GrammarConstraint> grammar_;

  void remember(int32_t token);  // the penalty window
  void apply_penalties();
  size_t argmax() const;
  size_t keep_top_k(size_t n);
  size_t keep_min_p_and_top_p(size_t n, float max_logit);
  int32_t draw(size_t n, float max_logit);
  void mask_by_grammar();
  size_t grammar_argmax(float& max_logit);
  size_t grammar_top_k(float& max_logit);
  size_t argmax_of(size_t n) const;  // best of the first n candidates
};

}  // namespace edgelm
