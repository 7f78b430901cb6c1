// Token sampling: greedy, temperature, top-k, top-p, min-p, repetition penalty; seeded.
//
//   edgelm::SamplerParams p; p.temp = 0.7f; p.top_p = 0.9f; p.seed = 42;
//   edgelm::Sampler s(p);
//   int32_t tok = s.sample(logits);   // logits: n_vocab floats
//   s.accept(tok);                    // feeds the repetition-penalty window
#pragma once
#include <cstdint>
#include <deque>
#include <random>
#include <span>
#include <vector>

namespace edgelm {

struct SamplerParams {
  float temp = 0.8f;           // <= 0 means greedy (argmax)
  int top_k = 40;              // <= 0 disables
  float top_p = 0.95f;         // >= 1 disables
  float min_p = 0.05f;         // <= 0 disables
  float repeat_penalty = 1.0f; // 1 disables; applied to tokens in the last repeat_last_n
  int repeat_last_n = 64;
  float presence_penalty = 0.0f;   // OpenAI-style, over the same window
  float frequency_penalty = 0.0f;
  uint64_t seed = 0xED6E1A;    // same seed + same logits -> same tokens
};

class Sampler {
 public:
  explicit Sampler(SamplerParams p = {});
  // Picks the next token. Order: penalties, top-k, temperature, softmax, top-p, min-p, draw —
  // the order llama.cpp's default chain uses, so the same settings behave alike.
  int32_t sample(std::span<const float> logits);
  void accept(int32_t token);
  void reset();  // clears history and reseeds
  const SamplerParams& params() const { return p_; }

 private:
  SamplerParams p_;
  std::mt19937_64 rng_;
  std::deque<int32_t> history_;
  struct Candidate { int32_t id; float logit; float p; };
  std::vector<Candidate> cand_;
};

}  // namespace edgelm
