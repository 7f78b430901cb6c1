// Token sampler: llama.cpp's default chain (penalties → top-k → top-p → min-p → temperature →
// draw) over one reusable candidate buffer, so a 256k vocabulary costs a few O(n) passes per
// token and a sort of only the few tokens that survive the filters.
#include "edgelm/sampler.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include "edgelm/error.hpp"

namespace edgelm {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

[[noreturn]] void throw_invalid(const char* name, double value, const char* valid) {
  char value_text[32];
  std::snprintf(value_text, sizeof value_text, "%g", value);
  throw Error(std::string("invalid sampler parameter ") + name + " = " + value_text +
              " (valid: " + valid + ")");
}

void validate(const SamplerParams& p) {
  // Written as !(in range) so that NaN, which fails every comparison, is rejected too.
  if (!std::isfinite(p.temp)) throw_invalid("temp", p.temp, "a finite number; <= 0 is greedy");
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) throw_invalid("top_p", p.top_p, "0 < top_p <= 1");
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) throw_invalid("min_p", p.min_p, "0 <= min_p <= 1");
  if (!(p.repeat_penalty > 0.0f && std::isfinite(p.repeat_penalty))) {
    throw_invalid("repeat_penalty", p.repeat_penalty, "finite and > 0; 1 disables");
  }
  if (p.repeat_last_n < 0) {
    throw_invalid("repeat_last_n", p.repeat_last_n, "an integer >= 0; 0 disables penalties");
  }
  if (!std::isfinite(p.presence_penalty)) {
    throw_invalid("presence_penalty", p.presence_penalty, "a finite number; 0 disables");
  }
  if (!std::isfinite(p.frequency_penalty)) {
    throw_invalid("frequency_penalty", p.frequency_penalty, "a finite number; 0 disables");
  }
}

// NaN means "the model had no opinion" and must never win; +inf is clamped so that
// logit - max_logit stays a number (inf - inf would be NaN) while it still beats every finite one.
float usable_logit(float logit) {
  if (std::isnan(logit)) return kNegInf;
  return std::min(logit, FLT_MAX);
}

// A strict total order, so every partial sort and top-k cut is deterministic and ties go to the
// lower id, as in greedy.
template <class Candidate>
bool ranks_higher(const Candidate& a, const Candidate& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

// [0, 1) from the raw 64-bit output: the top 53 bits fill a double's mantissa exactly, so the
// draw is the same on every standard library (std::uniform_real_distribution is not).
double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

}  // namespace

Sampler::Sampler(SamplerParams p) : p_(p), rng_(p.seed) { validate(p_); }

void Sampler::accept(int32_t token) {
  if (grammar_) grammar_->accept(token);  // first: a refused token changes nothing
  remember(token);
}

void Sampler::accept_prompt(std::span<const int32_t> tokens) {
  for (int32_t t : tokens) remember(t);
}

void Sampler::remember(int32_t token) {
  if (token < 0) {
    throw Error("sampler: accepted token id " + std::to_string(token) + " is negative",
                "pass the id that sample() or the tokenizer returned");
  }
  if (p_.repeat_last_n == 0) return;
  history_.push_back(token);
  while (history_.size() > static_cast<size_t>(p_.repeat_last_n)) history_.pop_front();
}

void Sampler::reset() {
  history_.clear();
  rng_.seed(p_.seed);
  if (grammar_) grammar_->reset();
}

size_t Sampler::filter(std::span<const float> logits, float& max_logit) {
  if (logits.empty()) {
    throw Error("sampler: got an empty logits vector", "pass one logit per vocabulary entry");
  }
  if (logits.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    throw Error("sampler: vocabulary of " + std::to_string(logits.size()) +
                " entries does not fit 32-bit token ids");
  }
  cand_.resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) {
    cand_[i] = {static_cast<int32_t>(i), usable_logit(logits[i]), 0.0f};
  }
  apply_penalties();
  if (grammar_ && p_.temp <= 0.0f) return grammar_argmax(max_logit);
  if (grammar_ && p_.top_k > 0) return grammar_top_k(max_logit);
  if (grammar_) mask_by_grammar();

  const size_t best = argmax();
  max_logit = cand_[best].logit;
  if (max_logit == kNegInf) {
    throw Error("sampler: every logit is -inf or NaN",
                "the model produced no usable scores; check the model file and its inputs");
  }
  if (p_.temp <= 0.0f) {
    std::swap(cand_[0], cand_[best]);
    return 1;
  }
  const size_t n = keep_top_k(cand_.size());
  return keep_min_p_and_top_p(n, max_logit);
}

int32_t Sampler::sample(std::span<const float> logits) {
  float max_logit = 0.0f;
  const size_t n = filter(logits, max_logit);
  if (p_.temp <= 0.0f) return cand_[0].id;
  return draw(n, max_logit);
}

std::span<const TokenProb> Sampler::distribution(std::span<const float> logits) {
  float max_logit = 0.0f;
  const size_t n = filter(logits, max_logit);
  dist_.clear();
  if (p_.temp <= 0.0f) {
    dist_.push_back({cand_[0].id, 1.0f});
    return dist_;
  }
  double total = 0.0;
  for (size_t i = 0; i < n; ++i) total += std::exp((cand_[i].logit - max_logit) / p_.temp);
  for (size_t i = 0; i < n; ++i)
    dist_.push_back({cand_[i].id, static_cast<float>(std::exp((cand_[i].logit - max_logit) / p_.temp) / total)});
  std::sort(dist_.begin(), dist_.end(), [](const TokenProb& a, const TokenProb& b) {
    return a.p > b.p || (a.p == b.p && a.id < b.id);
  });
  return dist_;
}

double Sampler::uniform() { return uniform01(rng_); }

int32_t Sampler::draw_from(std::span<const TokenProb> weights) {
  double total = 0.0;
  for (const TokenProb& w : weights) total += std::max(0.0f, w.p);
  if (!(total > 0.0)) throw Error("internal: a draw from a distribution without weight");
  const double target = uniform01(rng_) * total;
  double mass = 0.0;
  for (const TokenProb& w : weights) {
    mass += std::max(0.0f, w.p);
    if (mass > target) return w.id;
  }
  for (size_t i = weights.size(); i-- > 0;)  // rounding in the running sum
    if (weights[i].p > 0.0f) return weights[i].id;
  return weights.front().id;
}

void Sampler::apply_penalties() {
  if (history_.empty()) return;
  if (p_.repeat_penalty == 1.0f && p_.presence_penalty == 0.0f && p_.frequency_penalty == 0.0f) {
    return;
  }
  // Sorting a copy of the (short) window groups equal ids, giving counts without a hash map;
  // window_ keeps its capacity, so this allocates only while the window is still growing.
  window_.assign(history_.begin(), history_.end());
  std::sort(window_.begin(), window_.end());
  for (size_t run = 0; run < window_.size();) {
    const int32_t id = window_[run];
    size_t run_end = run;
    while (run_end < window_.size() && window_[run_end] == id) ++run_end;
    const float count = static_cast<float>(run_end - run);
    run = run_end;
    if (static_cast<size_t>(id) >= cand_.size()) continue;  // from a larger vocabulary

    float& logit = cand_[id].logit;  // cand_ is still indexed by token id here
    // CTRL / llama.cpp rule: dividing a negative logit would make the token *more* likely.
    logit = logit <= 0.0f ? logit * p_.repeat_penalty : logit / p_.repeat_penalty;
    logit -= count * p_.frequency_penalty + p_.presence_penalty;  // OpenAI rule, count > 0 here
    logit = std::min(logit, FLT_MAX);  // a huge logit / penalty < 1 may overflow to +inf
  }
}

size_t Sampler::argmax() const {
  size_t best = 0;
  for (size_t i = 1; i < cand_.size(); ++i) {
    if (cand_[i].logit > cand_[best].logit) best = i;  // strict: ties keep the lower id
  }
  return best;
}

size_t Sampler::argmax_of(size_t n) const {
  size_t best = 0;
  for (size_t i = 1; i < n; ++i)
    if (ranks_higher(cand_[i], cand_[best])) best = i;
  return best;
}

size_t Sampler::keep_top_k(size_t n) {
  if (p_.top_k <= 0 || static_cast<size_t>(p_.top_k) >= n) return n;
  const size_t k = static_cast<size_t>(p_.top_k);
  // partial_sort is a heap pass: a token that cannot beat the current k-th best costs one
  // comparison, and few can, so for the usual small k this is far cheaper than nth_element.
  std::partial_sort(cand_.begin(), cand_.begin() + k, cand_.begin() + n, ranks_higher<Candidate>);
  return k;
}

size_t Sampler::keep_min_p_and_top_p(size_t n, float max_logit) {
  const bool min_p_on = p_.min_p > 0.0f;
  const bool top_p_on = p_.top_p < 1.0f;
  if (!min_p_on && !top_p_on) return n;

  // Temperature-1 probabilities relative to the top token (which therefore has p = 1), and
  // their sum, so p / total is the normalised probability.
  double total = 0.0;
  for (size_t i = 0; i < n; ++i) {
    cand_[i].p = std::exp(cand_[i].logit - max_logit);
    total += cand_[i].p;
  }

  // Top-p and min-p each keep a prefix of the same ranking of the same distribution, and top-p
  // does not change min-p's reference (the top probability). So running min-p first keeps
  // exactly the set llama.cpp's order keeps, with an O(n) partition instead of a sort, and leaves
  // top-p only the few survivors to sort. The top token always survives (1 >= min_p).
  if (min_p_on) {
    auto survives = [&](const Candidate& c) { return c.p >= p_.min_p; };
    n = static_cast<size_t>(std::partition(cand_.begin(), cand_.begin() + n, survives) -
                            cand_.begin());
  }
  if (!top_p_on) return n;

  // The nucleus is a prefix of the ranking. Usual case, a peaky distribution: it lies within the
  // top 64, found by one partial sort (a heap pass, ~one comparison per token).
  const double target_mass = static_cast<double>(p_.top_p) * total;
  auto begin = cand_.begin();
  const size_t head = std::min<size_t>(n, 64);
  std::partial_sort(begin, begin + head, begin + n, ranks_higher<Candidate>);
  double mass = 0.0;
  for (size_t i = 0; i < head; ++i) {
    mass += cand_[i].p;
    if (mass >= target_mass) return i + 1;
  }
  // Flat distribution, large nucleus: sorting it would cost O(n log n) per token, so find the
  // boundary by selection on mass instead. Each round splits the undecided range [lo, hi) at its
  // median rank (nth_element, O(hi - lo)) and keeps the half that holds the boundary: O(n) in
  // all. The kept prefix stays unsorted; the draw does not need order.
  size_t lo = head, hi = n;  // mass == sum of p over [0, lo)
  while (hi - lo > 64) {
    const size_t mid = lo + (hi - lo) / 2;
    std::nth_element(begin + lo, begin + mid, begin + hi, ranks_higher<Candidate>);
    double upper_mass = 0.0;
    for (size_t i = lo; i < mid; ++i) upper_mass += cand_[i].p;
    if (mass + upper_mass >= target_mass) {
      hi = mid;
    } else {
      mass += upper_mass;
      lo = mid;
    }
  }
  std::sort(begin + lo, begin + hi, ranks_higher<Candidate>);
  for (size_t i = lo; i < hi; ++i) {
    mass += cand_[i].p;
    if (mass >= target_mass) return i + 1;
  }
  // Only reachable through rounding (the mass was summed in a different order when [lo, hi)
  // was chosen): the boundary is then the last token of the range.
  return hi;
}

int32_t Sampler::draw(size_t n, float max_logit) {
  // Subtracting the max before dividing keeps every exponent <= 0: no overflow at any temperature.
  double total = 0.0;
  for (size_t i = 0; i < n; ++i) {
    cand_[i].p = std::exp((cand_[i].logit - max_logit) / p_.temp);
    total += cand_[i].p;
  }
  const double target = uniform01(rng_) * total;
  double mass = 0.0;
  for (size_t i = 0; i < n; ++i) {
    mass += cand_[i].p;
    if (mass > target) return cand_[i].id;  // strict: a zero-weight token is never picked
  }
  // Only reachable through rounding in the running sum: take the last token that has weight.
  for (size_t i = n; i-- > 0;) {
    if (cand_[i].p > 0.0f) return cand_[i].id;
  }
  return cand_[0].id;  // unreachable: the top token always has weight 1
}

// Greedy under a grammar: the best token is usually allowed, so check it alone first; mask the
// whole vocabulary only when it is not (same answer as masking first).
size_t Sampler::grammar_argmax(float& max_logit) {
  size_t best = argmax();
  if (cand_[best].logit == kNegInf || !grammar_->allows(cand_[best].id)) {
    mask_by_grammar();
    best = argmax();
  }
  std::swap(cand_[0], cand_[best]);
  max_logit = cand_[0].logit;
  return 1;
}

size_t Sampler::grammar_top_k(float& max_logit) {
  const size_t k = std::min(static_cast<size_t>(p_.top_k), cand_.size());
  const size_t window = std::min(cand_.size(), std::max<size_t>(256, 4 * k));
  std::partial_sort(cand_.begin(), cand_.begin() + window, cand_.end(), ranks_higher<Candidate>);
  size_t kept = 0;
  for (size_t i = 0; i < window && kept < k; ++i) {
    if (cand_[i].logit != kNegInf && grammar_->allows(cand_[i].id)) std::swap(cand_[kept++], cand_[i]);
  }
  size_t n = k;
  if (kept < k) {
    mask_by_grammar();
    n = keep_top_k(cand_.size());
    std::swap(cand_[0], cand_[argmax_of(n)]);
  }
  max_logit = cand_[0].logit;
  return keep_min_p_and_top_p(n, max_logit);
}

// By id: the candidates may already be reordered (grammar_draw_top_k's fallback).
void Sampler::mask_by_grammar() {
  const TokenMask& allowed = grammar_->allowed();
  const size_t n_allowed_bits = allowed.size() * 64;
  bool any = false;
  for (Candidate& c : cand_) {
    const auto id = static_cast<size_t>(c.id);
    if (id >= n_allowed_bits || !((allowed[id >> 6] >> (id & 63)) & 1u)) c.logit = kNegInf;
    any = any || c.logit != kNegInf;
  }
  if (!any)
    throw Error("grammar: no token with a usable logit can continue the text here",
                "the grammar may need characters that no token of this vocabulary holds");
}

}  // namespace edgelm
