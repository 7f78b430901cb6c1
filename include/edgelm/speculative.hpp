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
  // Tokens handed to the caller (accepted drafts and the target's own). Set by
  // generate_speculative(); a Speculator alone leaves it 0, since its caller decides which of
  // the target's tokens it emits.
  int64_t generated = 0;
  double draft_seconds = 0, verify_seconds = 0;
  void add(const SpeculativeStats& o) {
    steps += o.steps, draft_steps += o.draft_steps, drafted += o.drafted, accepted += o.accepted;
    generated += o.generated, draft_seconds += o.draft_seconds, verify_seconds += o.verify_seconds;
  }
  double acceptance_rate() const { return drafted ? static_cast<double>(accepted) / drafted : 0.0; }
  // Drafted tokens kept per step that drafted.
  double mean_accepted() const { return draft_steps ? static_cast<double>(accepted) / draft_steps : 0.0; }
};

class DraftLength;

// One sequence's speculative decoding, for a loop that runs the target's forward passes
// itself (generate_speculative, the server's slots, which verify several sequences' drafts
// in one pass):
//   plan()   -> the pass's tokens for this sequence: the pending token and the drafts;
//   (the caller evaluates them with Session::eval_as_decoded or Session::decode)
//   verify() -> keeps the drafts the target agrees with (passing each to on_token) and returns
//               the target's own next token; the caller truncates the cache to keep.
class Speculator {
 public:
  Speculator(Drafter& drafter, SpeculativeOptions opts);
  ~Speculator();
  Speculator(Speculator&&) noexcept;
  Speculator& operator=(Speculator&&) = delete;

  // `context` is the text in the target's cache, `pending` the last token (not yet in it);
  // at most max_draft tokens are drafted (the room left in the context, the tokens left to
  // generate). The result is valid until the next call.
  std::span<const int32_t> plan(std::span<const int32_t> context, int32_t pending, int max_draft,
                                const SamplerParams& sampling);
  struct Outcome {
    int keep = 1;          // planned tokens that stay in the cache: the pending one and the kept drafts
    int32_t next = -1;     // the target's token after them (not yet given to the sampler); -1: stopped
    bool stopped = false;  // on_token returned false, or a kept draft ended the text
  };
  // rows: the pass's logits for the planned tokens (n_vocab floats each). Kept drafts go to
  // the sampler (accept) and then to on_token, which may stop; a kept end-of-generation token
  // comes back as `next`. pass_seconds: the pass's time, for the adaptive length.
  Outcome verify(Sampler& sampler, std::span<const float> rows, const Tokenizer& tok,
                 const std::function<bool(int32_t)>& on_token, double pass_seconds);
  const SpeculativeStats& stats() const { return stats_; }

 private:
  Drafter& drafter_;
  SpeculativeOptions opts_;
  std::unique_ptr<DraftLength> length_;
  Draft draft_;
  std::vector<int32_t> batch_, context_;
  std::vector<TokenProb> residual_;
  double draft_seconds_ = 0;
  SpeculativeStats stats_;
};

// generate() with a drafter: same arguments, stopping rules (end-of-generation token,
// max_tokens, on_token returning false, a full context unless `shift` is given) and context
// shift, same output under greedy decoding. On return the session holds the prompt and the
// generated tokens but (at most) the last.
int generate_speculative(Session& s, Sampler& sampler, Drafter& drafter, std::span<const int32_t> prompt,
                         int max_tokens, const std::function<bool(int32_t)>& on_token,
                         const SpeculativeOptions& opts = {}, SpeculativeStats* stats = nullptr /* added to */, int seq = 0,
                         const ContextShift* shift = nullptr);

}  // namespace edgelm
