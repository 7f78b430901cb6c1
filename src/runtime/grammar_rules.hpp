// The compiled form of a GBNF grammar: every rule's alternatives laid out as sequences of
// elements in one array, each sequence closed by an End element, so a parser position is one
// index into that array.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace edgelm {

// A set of Unicode code points as sorted, disjoint, inclusive ranges, with an ASCII bitmap for
// the common case.
struct CharSet {
  std::vector<std::pair<uint32_t, uint32_t>> ranges;
  uint64_t ascii[2] = {0, 0};

  bool contains(uint32_t cp) const;
  bool intersects(uint32_t lo, uint32_t hi) const;
  // Sorts and merges `ranges`, complements them when `negated`, and fills the bitmap.
  void finish(bool negated);
};

struct GrammarElement {
  enum Kind : uint8_t { End, Char, Ref };
  Kind kind;
  uint32_t arg;  // Char: index into charsets; Ref: rule id
};

struct GrammarRules {
  std::vector<GrammarElement> elements;
  std::vector<std::vector<uint32_t>> alternatives;  // per rule: start index of each sequence
  std::vector<CharSet> charsets;
  std::vector<std::string> names;  // per rule, for messages
  uint32_t root = 0;

  const CharSet& charset_at(uint32_t pos) const { return charsets[elements[pos].arg]; }
};

// Rules as the GBNF parser builds them, before they are laid out.
struct RuleDraft {
  std::string name;
  std::vector<std::vector<GrammarElement>> alternatives;  // no End elements yet
};

// Lays the drafts out as GrammarRules; throws edgelm::Error when a rule is left-recursive (the
// pushdown parser would loop on it).
GrammarRules lay_out_rules(std::vector<RuleDraft> drafts, std::vector<CharSet> charsets, uint32_t root);

}  // namespace edgelm
