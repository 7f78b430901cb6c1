// Speculative decoding: drafters (a model, the target's early exit, prompt lookup), the
// verification of a draft in one forward pass of the target, and the adaptive draft length.
#include "edgelm/speculative.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>

#include "edgelm/error.hpp"

namespace edgelm {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

float prob_of(std::span<const TokenProb> dist, int32_t id) {
  for (const TokenProb& t : dist)
    if (t.id == id) return t.p;
  return 0.0f;
}

bool sampling(const SamplerParams& p) { return p.temp > 0.0f; }

// ------------------------------------------------------------------------------------------
// A model's session as the drafter.
class ModelDrafter final : public Drafter {
 public:
  ModelDrafter(std::shared_ptr<const Model> m, const ModelDrafterOptions& o, bool self)
      : session_(std::move(m), {.n_ctx = o.n_ctx, .n_threads = o.n_threads, .n_layers = o.n_layers}),
        seed_(o.seed),
        self_(self) {}

  void propose(std::span<const int32_t> context, int n, const SamplerParams* params, Draft& out) override {
    out.clear();
    n = std::min(n, session_.n_ctx() + 1 - static_cast<int>(context.size()));  // evaluates n - 1 drafts
    if (n <= 0 || context.empty()) return;
    Sampler* sampler = params && sampling(*params) ? sampler_for(*params) : nullptr;
    const int keep = session_.reuse_prefix(0, context);
    std::span<const float> logits = session_.eval(context.subspan(static_cast<size_t>(keep)));
    const Tokenizer& tok = session_.model().tokenizer();
    for (int i = 0; i < n; ++i) {
      int32_t t;
      if (sampler) {
        const std::span<const TokenProb> dist = sampler->distribution(logits);
        t = sampler->draw_from(dist);
        out.probs.emplace_back(dist.begin(), dist.end());
      } else {
        t = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
      }
      out.tokens.push_back(t);
      if (i + 1 == n || tok.is_eog(t)) break;
      const int32_t one[1] = {t};
      logits = session_.eval(one);
    }
  }

  std::string describe() const override {
    const ModelConfig& c = session_.model().config();
    if (self_) return "early exit after " + std::to_string(session_.n_layers()) + " of " + std::to_string(c.n_layer) + " blocks";
    return "draft model " + c.name;
  }

 private:
  // The draft draws from the target's chain without its penalties (it has no history of
  // their window); any draft distribution is correct, a closer one is accepted more often.
  Sampler* sampler_for(const SamplerParams& p) {
    SamplerParams q = p;
    q.repeat_last_n = 0;
    q.seed = seed_;
    const bool same = sampler_ && sampler_->params().temp == q.temp && sampler_->params().top_k == q.top_k &&
                      sampler_->params().top_p == q.top_p && sampler_->params().min_p == q.min_p;
    if (!same) sampler_.emplace(q);
    return &*sampler_;
  }

  Session session_;
  std::optional<Sampler> sampler_;
  uint64_t seed_;
  bool self_;
};

// ------------------------------------------------------------------------------------------
class LookupDrafter final : public Drafter {
 public:
  LookupDrafter(int lo, int hi) : lo_(lo), hi_(hi) {}

  void propose(std::span<const int32_t> ctx, int n, const SamplerParams*, Draft& out) override {
    out.clear();
    const int64_t len = static_cast<int64_t>(ctx.size());
    for (int g = hi_; g >= lo_ && out.tokens.empty(); --g) {
      if (len <= g) continue;
      const std::span<const int32_t> tail = ctx.subspan(static_cast<size_t>(len - g));
      // The latest earlier occurrence: start i with ctx[i, i + g) == tail and i + g < len.
      for (int64_t i = len - g - 1; i >= 0; --i) {
        if (!std::equal(tail.begin(), tail.end(), ctx.begin() + i)) continue;
        for (int64_t j = i + g; j < len && static_cast<int>(out.tokens.size()) < n; ++j)
          out.tokens.push_back(ctx[static_cast<size_t>(j)]);
        break;
      }
    }
  }

  std::string describe() const override {
    return "prompt lookup (" + std::to_string(lo_) + ".." + std::to_string(hi_) + "-grams)";
  }

 private:
  int lo_, hi_;
};

// Whether the target keeps drafted token x at this position; when it does not, `replacement`
// is the target's token instead.
bool verify_token(Sampler& sampler, std::span<const float> row, int32_t x, std::span<const TokenProb> q,
                  std::vector<TokenProb>& residual, int32_t& replacement) {
  if (!sampling(sampler.params())) {
    replacement = sampler.sample(row);
    return replacement == x;
  }
  const std::span<const TokenProb> p = sampler.distribution(row);
  const float px = prob_of(p, x);
  const float qx = q.empty() ? 1.0f : prob_of(q, x);
  if (qx > 0.0f && sampler.uniform() * qx < px) return true;
  residual.clear();
  double mass = 0.0;
  for (const TokenProb& t : p) {
    const float r = t.p - (q.empty() ? (t.id == x ? 1.0f : 0.0f) : prob_of(q, t.id));
    if (r > 0.0f) residual.push_back({t.id, r}), mass += r;
  }
  if (!(mass > 0.0)) residual.assign(p.begin(), p.end());  // p == q up to rounding
  replacement = sampler.draw_from(residual);
  return false;
}

}  // namespace

// ------------------------------------------------------------------------------------------
// The draft length that maximises expected tokens per second. A draft of k tokens yields
// 1 + sum over j <= k of a_1 ... a_j tokens (the kept prefix and the target's own), where a_i
// is the rate at which the i-th drafted token is kept once the ones before it were, and costs
// k drafted tokens plus a verification of k + 1. The rates are counted per position over recent
// steps: acceptance comes in runs (a copied passage is kept to its end), so a later position
// is often kept more surely than the first; a position not tried yet takes its predecessor's
// rate. The costs are running estimates of measured times. When plain decoding wins (k = 0), a
// one-token draft now and then keeps the estimates current, spaced by what the last draft
// cost beyond plain decoding (at most kProbeBudget of the time).
class DraftLength {
 public:
  explicit DraftLength(const SpeculativeOptions& o)
      : o_(o),
        verify_(static_cast<size_t>(std::max(0, o.draft_max)) + 2, -1.0),
        tried_(verify_.size(), 0.0),
        kept_(verify_.size(), 0.0) {}

  int next() {
    if (!o_.adaptive || o_.draft_max <= 0) return std::max(0, o_.draft_max);
    // First a short draft and a plain step, to measure each cost once.
    if (draft_cost_ < 0) return std::min(o_.draft_max, kFirstDraft);
    if (verify_[1] < 0) return 0;
    int best = 0;
    double best_rate = 1.0 / verify_[1], tokens = 1.0, run = 1.0, a = kPriorRate;
    for (int k = 1; k <= o_.draft_max; ++k) {
      const size_t i = static_cast<size_t>(k);
      a = (kept_[i] + a) / (tried_[i] + 1.0);  // one pseudo-observation at the predecessor's rate
      run *= a;
      tokens += run;
      const double rate = tokens / (k * draft_cost_ + verify_cost(k + 1));
      if (rate > best_rate) best = k, best_rate = rate;
    }
    if (best > 0) {
      idle_ = 0;
      return best;
    }
    if (++idle_ < probe_gap_) return 0;
    idle_ = 0;
    return 1;
  }

  void record(int drafted, int kept, bool rejected, double draft_s, int verified, double verify_s) {
    constexpr double kKeep = 0.9;  // weight of the past in every running estimate
    // Times: a lower one is taken at once, a higher one slowly, so that a pass slowed by
    // something else on the machine (or the first pass's page faults) does not stop drafting.
    auto cost = [&](double& v, double x) { v = v < 0 || x < v ? x : kKeep * v + (1 - kKeep) * x; };
    if (static_cast<size_t>(verified) < verify_.size()) cost(verify_[static_cast<size_t>(verified)], verify_s);
    if (drafted <= 0) return;
    cost(draft_cost_, draft_s / drafted);
    // What this draft cost beyond plain decoding of the tokens it gave; probes while plain
    // decoding wins come rarely enough that they cost at most kProbeBudget of the time (a
    // draft model idle for long catches up on the whole gap first).
    if (verify_[1] > 0) {
      const double loss = draft_s + verify_s - verify_[1] * (kept + 1);
      probe_gap_ = static_cast<int>(std::clamp(loss / (kProbeBudget * verify_[1]), 16.0, 4096.0));
    }
    for (size_t i = 1; i < tried_.size(); ++i) tried_[i] *= kKeep, kept_[i] *= kKeep;
    const int tried = std::min(drafted, kept + (rejected ? 1 : 0));
    for (int i = 1; i <= tried; ++i) tried_[static_cast<size_t>(i)] += 1;
    for (int i = 1; i <= kept; ++i) kept_[static_cast<size_t>(i)] += 1;
  }

 private:
  static constexpr int kFirstDraft = 2;
  static constexpr double kPriorRate = 0.5;  // the first position's rate before any draft
  static constexpr double kProbeBudget = 0.02;

  // Measured, or interpolated between the nearest measured batch sizes (a straight line from
  // the one-token cost when only smaller ones are known, 10 % per token until any is).
  double verify_cost(int n) const {
    if (verify_[static_cast<size_t>(n)] >= 0) return verify_[static_cast<size_t>(n)];
    int lo = 1, hi = -1;
    for (int i = 1; i < n; ++i)
      if (verify_[static_cast<size_t>(i)] >= 0) lo = i;
    for (int i = n + 1; i < static_cast<int>(verify_.size()); ++i)
      if (verify_[static_cast<size_t>(i)] >= 0) {
        hi = i;
        break;
      }
    const double v_lo = verify_[static_cast<size_t>(lo)];
    if (hi > 0) return v_lo + (verify_[static_cast<size_t>(hi)] - v_lo) * (n - lo) / (hi - lo);
    double slope = 0.1 * verify_[1];
    if (lo > 1) slope = std::max(0.0, (v_lo - verify_[1]) / (lo - 1));
    return v_lo + slope * (n - lo);
  }

  SpeculativeOptions o_;
  std::vector<double> verify_;  // seconds to verify n tokens, by n
  double draft_cost_ = -1;      // seconds per drafted token
  std::vector<double> tried_, kept_;  // by draft position (1-based): drafts checked, kept
  int idle_ = 0;
  int probe_gap_ = 32;  // plain steps between probes
};

std::unique_ptr<Drafter> make_model_drafter(std::shared_ptr<const Model> draft, const Model& target,
                                            ModelDrafterOptions opts) {
  if (!draft) throw Error("internal: a model drafter without a model");
  const bool self = draft.get() == &target;
  if (!self && (draft->config().n_vocab != target.config().n_vocab ||
                !draft->tokenizer().same_vocabulary(target.tokenizer())))
    throw Error("the draft model '" + draft->config().name + "' and the model '" + target.config().name +
                    "' have different vocabularies",
                "draft with a model made from this one (edgelm distill) or one with its tokenizer");
  if (self && opts.n_layers <= 0)
    throw Error("self-speculation needs a number of blocks to draft with", "use --draft-exit K with K below " +
                                                                               std::to_string(target.config().n_layer));
  if (self && opts.n_layers >= target.config().n_layer)
    throw Error("the early exit after " + std::to_string(opts.n_layers) + " blocks is the whole model",
                "use --draft-exit K with K below " + std::to_string(target.config().n_layer));
  return std::make_unique<ModelDrafter>(std::move(draft), opts, self);
}

std::unique_ptr<Drafter> make_lookup_drafter(int ngram_min, int ngram_max) {
  if (ngram_min < 1 || ngram_max < ngram_min)
    throw Error("prompt lookup needs 1 <= n-gram min <= n-gram max, got " + std::to_string(ngram_min) + " and " +
                std::to_string(ngram_max));
  return std::make_unique<LookupDrafter>(ngram_min, ngram_max);
}

Speculator::Speculator(Drafter& drafter, SpeculativeOptions opts)
    : drafter_(drafter), opts_(opts), length_(std::make_unique<DraftLength>(opts)) {
  if (opts.draft_max < 0) throw Error("the draft length must be >= 0, got " + std::to_string(opts.draft_max));
}
Speculator::~Speculator() = default;
Speculator::Speculator(Speculator&&) noexcept = default;

std::span<const int32_t> Speculator::plan(std::span<const int32_t> context, int32_t pending, int max_draft,
                                          const SamplerParams& sampling) {
  const int k = std::min(length_->next(), max_draft);
  draft_.clear();
  draft_seconds_ = 0;
  if (k > 0) {
    context_.assign(context.begin(), context.end());
    context_.push_back(pending);
    const auto t0 = Clock::now();
    drafter_.propose(context_, k, &sampling, draft_);
    draft_seconds_ = seconds_since(t0);
    if (static_cast<int>(draft_.tokens.size()) > k) draft_.tokens.resize(static_cast<size_t>(k));
  }
  batch_.assign(1, pending);
  batch_.insert(batch_.end(), draft_.tokens.begin(), draft_.tokens.end());
  return batch_;
}

Speculator::Outcome Speculator::verify(Sampler& sampler, std::span<const float> rows, const Tokenizer& tok,
                                       const std::function<bool(int32_t)>& on_token, double pass_seconds) {
  const size_t n_vocab = rows.size() / batch_.size();
  Outcome out;
  size_t i = 0;
  int32_t target = -1;
  bool rejected = false;
  for (; i < draft_.tokens.size(); ++i) {
    const int32_t x = draft_.tokens[i];
    const std::span<const TokenProb> q =
        draft_.probs.size() > i ? std::span<const TokenProb>(draft_.probs[i]) : std::span<const TokenProb>();
    int32_t replacement = -1;
    if (!verify_token(sampler, rows.subspan(i * n_vocab, n_vocab), x, q, residual_, replacement)) {
      target = replacement;
      rejected = true;
      break;
    }
    if (tok.is_eog(x)) {  // the text ends here: the caller sees it as the next token
      target = x;
      ++i;
      break;
    }
    sampler.accept(x);
    ++stats_.accepted, ++out.keep;
    if (!on_token(x)) {
      out.stopped = true;
      break;
    }
  }
  if (!out.stopped && !rejected && target < 0) target = sampler.sample(rows.subspan(i * n_vocab, n_vocab));
  if (!out.stopped) out.next = target;
  const int kept = out.keep - 1;
  ++stats_.steps;
  stats_.draft_steps += draft_.tokens.empty() ? 0 : 1;
  stats_.drafted += static_cast<int64_t>(draft_.tokens.size());
  stats_.draft_seconds += draft_seconds_;
  stats_.verify_seconds += pass_seconds;
  length_->record(static_cast<int>(draft_.tokens.size()), kept, rejected, draft_seconds_,
                  static_cast<int>(batch_.size()), pass_seconds);
  return out;
}

int generate_speculative(Session& s, Sampler& sampler, Drafter& drafter, std::span<const int32_t> prompt,
                         int max_tokens, const std::function<bool(int32_t)>& on_token,
                         const SpeculativeOptions& opts, SpeculativeStats* stats, int seq,
                         const ContextShift* shift) {
  Speculator spec(drafter, opts);
  const Tokenizer& tok = s.model().tokenizer();
  // The first token comes from the prompt's pass, as in generate(); each later one from a
  // verification pass, whose rows are what one-token passes give: the same arithmetic as
  // plain decoding, token for token.
  sampler.accept_prompt(prompt);
  const std::span<const float> first = s.eval(prompt, seq);
  int n = 0;
  int32_t next = max_tokens > 0 ? sampler.sample(first) : -1;
  const auto emit = [&](int32_t t) {
    ++n;
    return on_token(t) && n < max_tokens;
  };
  bool going = next >= 0 && !tok.is_eog(next);
  if (going) {
    sampler.accept(next);
    going = emit(next);
  }
  while (going) {
    if (s.n_past(seq) >= s.n_ctx()) {  // full: no room for `next`
      std::optional<std::vector<int32_t>> kept = shift_context(s, seq, shift);
      if (!kept) break;
      if (!kept->empty()) s.eval(*kept, seq);
    }
    const int room = s.n_ctx() - s.n_past(seq) - 1;  // positions after `next`
    const std::span<const int32_t> batch = spec.plan(s.tokens(seq), next, std::min(room, max_tokens - n), sampler.params());
    const auto t0 = Clock::now();
    const std::span<const float> rows = s.eval_as_decoded(batch, seq);
    const int before = s.n_past(seq) - static_cast<int>(batch.size());
    const Speculator::Outcome o = spec.verify(sampler, rows, tok, emit, seconds_since(t0));
    s.truncate(seq, before + o.keep);  // drops the rejected drafts
    if (o.stopped || tok.is_eog(o.next)) break;
    next = o.next;
    sampler.accept(next);
    going = emit(next);
  }
  if (stats) {
    SpeculativeStats run = spec.stats();
    run.generated = n;
    stats->add(run);
  }
  return n;
}

}  // namespace edgelm
