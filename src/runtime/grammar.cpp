// The compiled grammar and the pushdown state that walks it. A state is the set of stacks of
// parser positions still alive (an ambiguous grammar keeps several); every stack's top is a
// character set, so advancing over a code point is: keep the stacks whose top matches, step
// past it, and expand rule references until a character set is on top again. Text arrives as
// bytes: a multi-byte character is held in part until its last byte, and kept only while some
// stack can still accept a character with those leading bytes.
#include <algorithm>
#include <functional>

#include "edgelm/error.hpp"
#include "edgelm/grammar.hpp"
#include "runtime/grammar_rules.hpp"

namespace edgelm {
namespace {

constexpr size_t kMaxStacks = 4096;  // an ambiguous grammar may not grow a state past this
// The work of one step: stacks expanded before duplicates are removed. Nested repetitions of
// one element (((x)+)+)+... expand to 2^depth copies of a few distinct stacks, so the distinct
// count alone does not bound the time a step takes.
constexpr size_t kMaxExpanded = 16 * kMaxStacks;

[[noreturn]] void too_ambiguous(const std::string& what) {
  throw Error("grammar: the text so far has " + what, "the grammar is too ambiguous; make alternatives start "
              "differently and do not nest repetitions of the same thing");
}
constexpr uint32_t kMaxCodePoint = 0x10FFFF;

// Smallest and largest code point of a UTF-8 sequence of `len` bytes (no overlong forms).
constexpr uint32_t kUtf8Min[5] = {0, 0, 0x80, 0x800, 0x10000};
constexpr uint32_t kUtf8Max[5] = {0, 0x7F, 0x7FF, 0xFFFF, kMaxCodePoint};

using Stack = std::vector<uint32_t>;

// Expands references on top of `st` until every resulting stack has a character set on top (or
// is empty: the start rule is finished). Terminates because lay_out_rules rejects left recursion.
// `budget` counts the branches taken; running out is an error (kMaxExpanded).
void expand(const GrammarRules& g, Stack st, std::vector<Stack>& out, size_t& budget) {
  while (!st.empty()) {
    const uint32_t pos = st.back();
    const GrammarElement e = g.elements[pos];
    if (e.kind == GrammarElement::Char) break;
    st.pop_back();
    if (e.kind == GrammarElement::End) continue;
    if (g.elements[pos + 1].kind != GrammarElement::End) st.push_back(pos + 1);  // tail call: no frame
    for (uint32_t start : g.alternatives[e.arg]) {
      if (budget == 0) too_ambiguous("more than " + std::to_string(kMaxExpanded) + " ways to go on");
      --budget;
      Stack branch = st;
      branch.push_back(start);
      expand(g, std::move(branch), out, budget);
    }
    return;
  }
  out.push_back(std::move(st));
}

void normalise(std::vector<Stack>& stacks) {
  std::sort(stacks.begin(), stacks.end());
  stacks.erase(std::unique(stacks.begin(), stacks.end()), stacks.end());
  if (stacks.size() > kMaxStacks) too_ambiguous("more than " + std::to_string(kMaxStacks) + " parses");
}

// --- left recursion ---------------------------------------------------------------------------

std::vector<bool> nullable_rules(const std::vector<RuleDraft>& rules) {
  std::vector<bool> nullable(rules.size(), false);
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = 0; r < rules.size(); ++r) {
      if (nullable[r]) continue;
      for (const auto& alt : rules[r].alternatives) {
        const bool empty = std::all_of(alt.begin(), alt.end(), [&](const GrammarElement& e) {
          return e.kind == GrammarElement::Ref && nullable[e.arg];
        });
        if (empty) {
          nullable[r] = changed = true;
          break;
        }
      }
    }
  }
  return nullable;
}

// Edges r -> s where s can be the first thing r expands to (everything before s may be empty).
std::vector<std::vector<uint32_t>> leftmost_refs(const std::vector<RuleDraft>& rules) {
  const std::vector<bool> nullable = nullable_rules(rules);
  std::vector<std::vector<uint32_t>> edges(rules.size());
  for (size_t r = 0; r < rules.size(); ++r) {
    for (const auto& alt : rules[r].alternatives) {
      for (const GrammarElement& e : alt) {
        if (e.kind != GrammarElement::Ref) break;
        edges[r].push_back(e.arg);
        if (!nullable[e.arg]) break;
      }
    }
  }
  return edges;
}

void reject_left_recursion(const std::vector<RuleDraft>& rules) {
  const auto edges = leftmost_refs(rules);
  std::vector<uint8_t> mark(rules.size(), 0);  // 0 unseen, 1 on the path, 2 done
  std::vector<uint32_t> path;
  std::function<void(uint32_t)> visit = [&](uint32_t r) {
    mark[r] = 1;
    path.push_back(r);
    for (uint32_t s : edges[r]) {
      if (mark[s] == 1) {
        std::string cycle;
        for (auto it = std::find(path.begin(), path.end(), s); it != path.end(); ++it) cycle += rules[*it].name + " -> ";
        throw Error("grammar: rule '" + rules[s].name + "' is left-recursive (" + cycle + rules[s].name + ")",
                    "rewrite it with repetition, e.g. list ::= item (\",\" item)*; a repeated part must not match empty text");
      }
      if (mark[s] == 0) visit(s);
    }
    path.pop_back();
    mark[r] = 2;
  };
  for (uint32_t r = 0; r < rules.size(); ++r)
    if (mark[r] == 0) visit(r);
}

}  // namespace

// --- CharSet ----------------------------------------------------------------------------------

bool CharSet::contains(uint32_t cp) const {
  if (cp < 128) return (ascii[cp >> 6] >> (cp & 63)) & 1u;
  auto it = std::upper_bound(ranges.begin(), ranges.end(), cp,
                             [](uint32_t v, const std::pair<uint32_t, uint32_t>& r) { return v < r.first; });
  return it != ranges.begin() && cp <= std::prev(it)->second;
}

bool CharSet::intersects(uint32_t lo, uint32_t hi) const {
  for (const auto& [a, b] : ranges)
    if (a <= hi && b >= lo) return true;
  return false;
}

void CharSet::finish(bool negated) {
  std::sort(ranges.begin(), ranges.end());
  std::vector<std::pair<uint32_t, uint32_t>> merged;
  for (const auto& r : ranges) {
    if (!merged.empty() && r.first <= merged.back().second + 1) {
      merged.back().second = std::max(merged.back().second, r.second);
    } else {
      merged.push_back(r);
    }
  }
  if (negated) {
    std::vector<std::pair<uint32_t, uint32_t>> complement;
    uint32_t next = 0;
    for (const auto& [a, b] : merged) {
      if (a > next) complement.push_back({next, a - 1});
      next = b + 1;
    }
    if (next <= kMaxCodePoint) complement.push_back({next, kMaxCodePoint});
    merged = std::move(complement);
  }
  ranges = std::move(merged);
  ascii[0] = ascii[1] = 0;
  for (const auto& [a, b] : ranges)
    for (uint32_t c = a; c <= std::min<uint32_t>(b, 127); ++c) ascii[c >> 6] |= uint64_t{1} << (c & 63);
}

// --- layout -----------------------------------------------------------------------------------

GrammarRules lay_out_rules(std::vector<RuleDraft> drafts, std::vector<CharSet> charsets, uint32_t root) {
  reject_left_recursion(drafts);
  GrammarRules g;
  g.charsets = std::move(charsets);
  g.root = root;
  for (auto& rule : drafts) {
    std::vector<uint32_t> starts;
    for (auto& alt : rule.alternatives) {
      starts.push_back(static_cast<uint32_t>(g.elements.size()));
      g.elements.insert(g.elements.end(), alt.begin(), alt.end());
      g.elements.push_back({GrammarElement::End, 0});
    }
    g.alternatives.push_back(std::move(starts));
    g.names.push_back(std::move(rule.name));
  }
  return g;
}

Grammar::Grammar(std::unique_ptr<const GrammarRules> rules) : rules_(std::move(rules)) {}
Grammar::~Grammar() = default;

// --- GrammarState -----------------------------------------------------------------------------

GrammarState::GrammarState(std::shared_ptr<const Grammar> grammar) : grammar_(std::move(grammar)) {
  const GrammarRules& g = grammar_->rules();
  size_t budget = kMaxExpanded;
  for (uint32_t start : g.alternatives[g.root]) expand(g, Stack{start}, stacks_, budget);
  normalise(stacks_);
}

bool GrammarState::accept_bytes(std::string_view bytes) {
  GrammarState next = *this;
  for (char c : bytes)
    if (!next.advance_byte(static_cast<uint8_t>(c))) return false;
  *this = std::move(next);
  return true;
}

bool GrammarState::accepts_bytes(std::string_view bytes) const {
  GrammarState probe = *this;
  return probe.accept_bytes(bytes);
}

bool GrammarState::is_complete() const {
  return partial_left_ == 0 && !stacks_.empty() && stacks_.front().empty();  // sorted: empty first
}

bool GrammarState::advance_byte(uint8_t b) {
  if (partial_left_ > 0) {
    if ((b & 0xC0) != 0x80) return false;
    partial_ = (partial_ << 6) | (b & 0x3Fu);
    if (--partial_left_ > 0) return partial_can_complete();
    const uint32_t cp = partial_;
    const uint8_t len = partial_len_;
    partial_ = partial_len_ = 0;
    if (cp < kUtf8Min[len] || cp > kUtf8Max[len] || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    return advance_codepoint(cp);
  }
  if (b < 0x80) return advance_codepoint(b);
  const uint8_t len = (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
  if (len == 0) return false;  // a continuation byte, or 0xF8..0xFF
  partial_ = b & (0x7Fu >> len);
  partial_left_ = static_cast<uint8_t>(len - 1);
  partial_len_ = len;
  return partial_can_complete();
}

// Whether some stack accepts a character that starts with the bytes held so far: those
// characters form one interval of code points.
bool GrammarState::partial_can_complete() const {
  const unsigned shift = 6u * partial_left_;
  const uint32_t lo = std::max(partial_ << shift, kUtf8Min[partial_len_]);
  const uint32_t hi = std::min(((partial_ + 1) << shift) - 1, kUtf8Max[partial_len_]);
  if (lo > hi) return false;
  const GrammarRules& g = grammar_->rules();
  return std::any_of(stacks_.begin(), stacks_.end(),
                     [&](const Stack& st) { return !st.empty() && g.charset_at(st.back()).intersects(lo, hi); });
}

bool GrammarState::advance_codepoint(uint32_t cp) {
  const GrammarRules& g = grammar_->rules();
  std::vector<Stack> next;
  size_t budget = kMaxExpanded;
  for (const Stack& st : stacks_) {
    if (st.empty() || !g.charset_at(st.back()).contains(cp)) continue;
    Stack moved = st;
    ++moved.back();
    expand(g, std::move(moved), next, budget);
  }
  if (next.empty()) return false;
  normalise(next);
  stacks_ = std::move(next);
  return true;
}

void GrammarState::append_key(std::vector<uint32_t>& out) const {
  out.push_back(partial_);
  out.push_back(partial_left_ | (uint32_t{partial_len_} << 8));
  for (const Stack& st : stacks_) {
    out.push_back(static_cast<uint32_t>(st.size()));
    out.insert(out.end(), st.begin(), st.end());
  }
}

bool GrammarState::operator==(const GrammarState& o) const {
  return grammar_ == o.grammar_ && partial_ == o.partial_ && partial_left_ == o.partial_left_ &&
         partial_len_ == o.partial_len_ && stacks_ == o.stacks_;
}

}  // namespace edgelm
