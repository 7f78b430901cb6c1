// Speculative decoding: a cheap drafter proposes the next few tokens, the target model checks
// them all in one forward pass (about the cost of one token when decoding is bound by reading
// the weights), and the tokens it agrees with are kept.
//
//   auto draft = edgelm::make_model_drafter(edgelm::Model::load("student.gguf"), target, {});
//   edgelm::SpeculativeOptions o;            // o.draft_max = 8; adaptive length
//   edgelm::SpeculativeStats stats;
//   edgelm::generate_speculative(session, sampler, *draft, prompt, 128, on_token, o, &stats);
//
// Greedy: the kept text is what plain greedy decoding gives (each drafted token is checked
// against the target's argmax at its position). Sampling: the rejection rule of Leviathan et
// al. and Chen et al. (2023) -- keep drafted token x with probability min(1, p(x) / q(x)), on a
// rejection draw from max(0, p - q) -- so every token is distributed exactly as the target's
// sampler would draw it. Rejected positions are dropped from the target's (and the draft's)
// KV cache.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "edgelm/sampler.hpp"
#include "edgelm/session.hpp"

namespace edgelm {

// Tokens a drafter proposes, and for each the distribution it was drawn from (empty: drawn
// deterministically, q = 1 for the token).
struct Draft {
  std::vector<int32_t> tokens;
  std::vector<std::vector<TokenProb>> probs;
  void clear() {
    tokens.clear();
    probs.clear();
  }
};

class Drafter {
 public:
  virtual ~Drafter() = default;
  // Up to n tokens that may follow `context` (the whole text so far, prompt included). With
  // `sampling` (temp > 0) a drafter may draw its tokens and record their distributions.
  virtual void propose(std::span<const int32_t> context, int n, const SamplerParams* sampling, Draft& out) = 0;
  // "draft model", "early exit after 6 blocks", "prompt lookup": for statistics and logs.
  virtual std::string describe() const = 0;
};

struct ModelDrafterOptions {
  int n_ctx = 2048;    // the draft's context: at least the target's
  int n_threads = 0;   // 0: all hardware threads
  int n_layers = 0;    // early exit: run only the first n_layers blocks (0: all)
  uint64_t seed = 0x5EC0DE;  // the draft's own sampling stream
};

// A drafter that runs a model: a smaller model with the target's vocabulary (a distilled
// student), or the target itself stopped after its first n_layers blocks (self-speculation:
// the draft shares the target's weights and output head). Keeps its own KV cache in step with
// the accepted text. Throws edgelm::Error when the vocabularies differ.
std::unique_ptr<Drafter> make_model_drafter(std::shared_ptr<const Model> draft, const Model& target,
                                            ModelDrafterOptions opts);

// Prompt lookup: finds the latest earlier occurrence of the text's last n tokens (n from
// ngram_max down to ngram_min) and proposes what followed it. Free: no model runs.
std::unique_ptr<Drafter> make_lookup_drafter(int ngram_min = 2, int ngram_max = 4);

struct SpeculativeOptions {
  int draft_max = 8;     // most tokens drafted per step
  // Adaptive: each step drafts the number of tokens that maximises expected tokens per second
  // from the measured acceptance rate, draft cost and verification cost (0 when drafting does
  // not pay: the step is then plain decoding). Off: always draft_max.
  bool adaptive = true;
};

struct SpeculativeStats {
  int steps = 0;            // target forward passes after the prompt
  int draft_steps = 0;      // of them, with at least one drafted token
  int64_t drafted = 0;      // tokens proposed
  int64_t accepted = 0;     // drafted tokens kept
  int64_t generated = 0;    // tokens produced (accepted + one of the target's per step)
  double draft_seconds = 0, verify_seconds = 0;
  double acceptance_rate() const { return drafted ? static_cast<double>(accepted) / drafted : 0.0; }
  // Drafted tokens kept per step that drafted.
  double mean_accepted() const { return draft_steps ? static_cast<double>(accepted) / draft_steps : 0.0; }
};

// generate() with a drafter: same arguments and stopping rules (end-of-generation token,
// max_tokens, on_token returning false, a full context), same output under greedy decoding.
// On return the session holds the prompt and the generated tokens but the last.
int generate_speculative(Session& s, Sampler& sampler, Drafter& drafter, std::span<const int32_t> prompt,
                         int max_tokens, const std::function<bool(int32_t)>& on_token,
                         const SpeculativeOptions& opts = {}, SpeculativeStats* stats = nullptr, int seq = 0);

}  // namespace edgelm
