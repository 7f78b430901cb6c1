// GBNF (llama.cpp's grammar syntax) -> rule drafts. Groups and repetitions become rules of their
// own, so the compiled grammar has only three element kinds: character set, rule reference, end.
// A rule's body may span lines; it ends where the next `name ::=` or the text ends.
#include <optional>
#include <string>
#include <unordered_map>

#include "edgelm/error.hpp"
#include "edgelm/grammar.hpp"
#include "runtime/grammar_rules.hpp"

namespace edgelm {
namespace {

constexpr uint32_t kMaxRepeat = 10000;  // bounds the rules one {m,n} expands into

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

using Sequence = std::vector<GrammarElement>;

class GbnfParser {
 public:
  explicit GbnfParser(std::string_view text) : s_(text) {}

  std::shared_ptr<const Grammar> parse(std::string_view root) {
    skip_space(true);
    while (pos_ < s_.size()) parse_rule();
    if (rules_.empty()) throw Error("grammar: no rules", "write at least `root ::= ...`");
    check_all_defined();
    auto it = ids_.find(std::string(root));
    if (it == ids_.end()) throw Error("grammar: no rule named '" + std::string(root) + "'", "the start rule is `root`");
    return std::make_shared<const Grammar>(
        std::make_unique<const GrammarRules>(lay_out_rules(std::move(rules_), std::move(charsets_), it->second)));
  }

 private:
  std::string_view s_;
  size_t pos_ = 0;
  std::vector<RuleDraft> rules_;
  std::vector<CharSet> charsets_;
  std::unordered_map<std::string, uint32_t> ids_;
  std::vector<size_t> first_use_;  // per rule: where it was first referenced
  std::vector<bool> defined_;

  [[noreturn]] void fail(const std::string& what, size_t at) const {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at && i < s_.size(); ++i) {
      if (s_[i] == '\n') { ++line; col = 1; } else { ++col; }
    }
    throw Error("grammar: line " + std::to_string(line) + ", column " + std::to_string(col) + ": " + what);
  }
  [[noreturn]] void fail(const std::string& what) const { fail(what, pos_); }

  bool at_end() const { return pos_ >= s_.size(); }
  char peek() const { return at_end() ? '\0' : s_[pos_]; }

  // Skips blanks and comments; newlines too when `newlines`. Returns whether it crossed one.
  bool skip_space(bool newlines) {
    bool crossed = false;
    while (!at_end()) {
      const char c = s_[pos_];
      if (c == '#') {
        while (!at_end() && s_[pos_] != '\n') ++pos_;
      } else if (c == ' ' || c == '\t' || c == '\r') {
        ++pos_;
      } else if (c == '\n' && newlines) {
        ++pos_;
        crossed = true;
      } else {
        break;
      }
    }
    return crossed;
  }

  bool at_rule_start() const {
    size_t p = pos_;
    while (p < s_.size() && is_name_char(s_[p])) ++p;
    if (p == pos_) return false;
    while (p < s_.size() && (s_[p] == ' ' || s_[p] == '\t')) ++p;
    return s_.substr(p, 3) == "::=";
  }

  // In a top-level body a line break ends the rule only where the next rule (or the end) follows.
  bool body_continues(bool nested) {
    const bool crossed = skip_space(true);
    if (at_end()) return false;
    return nested || !crossed || !at_rule_start();
  }

  uint32_t new_rule(std::string name) {
    rules_.push_back({std::move(name), {}});
    first_use_.push_back(pos_);
    defined_.push_back(true);
    return static_cast<uint32_t>(rules_.size() - 1);
  }

  uint32_t rule_id(const std::string& name) {
    auto [it, fresh] = ids_.try_emplace(name, static_cast<uint32_t>(rules_.size()));
    if (fresh) {
      new_rule(name);
      defined_.back() = false;
    }
    return it->second;
  }

  std::string parse_name() {
    const size_t start = pos_;
    while (!at_end() && is_name_char(s_[pos_])) ++pos_;
    if (pos_ == start) fail("expected a rule name");
    return std::string(s_.substr(start, pos_ - start));
  }

  void parse_rule() {
    const size_t start = pos_;
    const std::string name = parse_name();
    skip_space(false);
    if (s_.substr(pos_, 3) != "::=") fail("expected '::=' after rule name '" + name + "'");
    pos_ += 3;
    const uint32_t id = rule_id(name);
    if (defined_[id]) fail("rule '" + name + "' is defined twice", start);
    defined_[id] = true;
    parse_alternatives(id, false);
    skip_space(true);
  }

  void parse_alternatives(uint32_t rule, bool nested) {
    for (;;) {
      Sequence seq = parse_sequence(rule, nested);
      rules_[rule].alternatives.push_back(std::move(seq));
      if (peek() != '|') return;
      ++pos_;
    }
  }

  Sequence parse_sequence(uint32_t rule, bool nested) {
    Sequence seq;
    while (body_continues(nested)) {
      const char c = peek();
      if (c == '|' || c == ')') break;
      Sequence unit = parse_primary(rule);
      unit = parse_postfix(rule, std::move(unit));
      seq.insert(seq.end(), unit.begin(), unit.end());
    }
    return seq;
  }

  Sequence parse_primary(uint32_t rule) {
    const char c = peek();
    if (c == '"') return parse_literal();
    if (c == '[') return {char_element(parse_class())};
    if (c == '.') {
      ++pos_;
      CharSet any;
      any.finish(true);  // the complement of nothing: every code point
      return {char_element(std::move(any))};
    }
    if (c == '(') {
      const size_t open = pos_++;
      const uint32_t group = new_rule(rules_[rule].name + "-" + std::to_string(rules_.size()));
      parse_alternatives(group, true);
      if (peek() != ')') fail("unclosed '(' (opened here)", open);
      ++pos_;
      return {{GrammarElement::Ref, group}};
    }
    if (is_name_char(c)) {
      const size_t at = pos_;
      const uint32_t id = rule_id(parse_name());
      if (!defined_[id] && first_use_[id] > at) first_use_[id] = at;
      if (s_.substr(pos_).starts_with(" ::=") || s_.substr(pos_).starts_with("::="))
        fail("a new rule starts in the middle of a line; put each rule on its own line");
      return {{GrammarElement::Ref, id}};
    }
    if (c == '<') fail("token references (<...>) are not supported");
    fail(std::string("unexpected character '") + c + "'");
  }

  GrammarElement char_element(CharSet set) {
    charsets_.push_back(std::move(set));
    return {GrammarElement::Char, static_cast<uint32_t>(charsets_.size() - 1)};
  }

  Sequence parse_literal() {
    const size_t open = pos_++;
    Sequence seq;
    for (;;) {
      if (at_end() || peek() == '\n') fail("unterminated string literal", open);
      if (peek() == '"') break;
      const uint32_t cp = parse_char();
      CharSet one;
      one.ranges.push_back({cp, cp});
      one.finish(false);
      seq.push_back(char_element(std::move(one)));
    }
    ++pos_;
    return seq;
  }

  CharSet parse_class() {
    const size_t open = pos_++;
    CharSet set;
    const bool negated = peek() == '^';
    if (negated) ++pos_;
    while (peek() != ']') {
      if (at_end() || peek() == '\n') fail("unterminated character class", open);
      const uint32_t lo = parse_char();
      uint32_t hi = lo;
      if (peek() == '-' && pos_ + 1 < s_.size() && s_[pos_ + 1] != ']') {
        ++pos_;
        hi = parse_char();
        if (hi < lo) fail("character range is backwards");
      }
      set.ranges.push_back({lo, hi});
    }
    ++pos_;
    set.finish(negated);
    return set;
  }

  // One character of a literal or class: an escape or one UTF-8 encoded code point.
  uint32_t parse_char() {
    const char c = s_[pos_];
    if (c == '\\') return parse_escape();
    const auto b = static_cast<uint8_t>(c);
    const int len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    if (len == 0 || pos_ + len > s_.size()) fail("invalid UTF-8 in the grammar");
    uint32_t cp = len == 1 ? b : b & (0x7Fu >> len);
    for (int i = 1; i < len; ++i) {
      const auto cont = static_cast<uint8_t>(s_[pos_ + i]);
      if ((cont & 0xC0) != 0x80) fail("invalid UTF-8 in the grammar");
      cp = (cp << 6) | (cont & 0x3F);
    }
    pos_ += len;
    return cp;
  }

  uint32_t parse_escape() {
    const size_t at = pos_++;
    if (at_end()) fail("escape at the end of the grammar", at);
    const char e = s_[pos_++];
    switch (e) {
      case 'n': return '\n';
      case 'r': return '\r';
      case 't': return '\t';
      case '\\': case '"': case '[': case ']': case '-': case '^': case '/': case '\'':
        return static_cast<uint8_t>(e);
      case 'x': return parse_hex(2, at);
      case 'u': return parse_hex(4, at);
      case 'U': return parse_hex(8, at);
      default: fail(std::string("unknown escape '\\") + e + "'", at);
    }
  }

  uint32_t parse_hex(int digits, size_t at) {
    uint32_t v = 0;
    for (int i = 0; i < digits; ++i) {
      const int d = hex_value(peek());
      if (d < 0) fail("expected " + std::to_string(digits) + " hex digits after the escape", at);
      v = v * 16 + static_cast<uint32_t>(d);
      ++pos_;
    }
    if (v > 0x10FFFF) fail("code point beyond U+10FFFF", at);
    return v;
  }

  uint32_t parse_count() {
    const size_t start = pos_;
    uint64_t v = 0;
    while (peek() >= '0' && peek() <= '9') {
      v = v * 10 + static_cast<uint64_t>(peek() - '0');
      if (v > kMaxRepeat) fail("repetition count above " + std::to_string(kMaxRepeat), start);
      ++pos_;
    }
    if (pos_ == start) fail("expected a number in {m,n}");
    return static_cast<uint32_t>(v);
  }

  Sequence parse_postfix(uint32_t rule, Sequence unit) {
    // The last of a run of ?, * and + on one element, applied to that element: x++ is x+, and
    // x+?, x?+ and x** are x*. Nesting them instead would give 2^n parses of a run of x.
    std::optional<GrammarElement> simple_base;  // the element under the run
    uint32_t run_min = 0;
    bool run_unbounded = false;
    for (;;) {
      const char c = peek();
      if (c != '*' && c != '+' && c != '?' && c != '{') return unit;
      ++pos_;
      uint32_t min = 0, max = 0;  // max 0 with unbounded: no upper bound
      bool unbounded = false;
      if (c == '*') {
        unbounded = true;
      } else if (c == '+') {
        min = 1;
        unbounded = true;
      } else if (c == '?') {
        max = 1;
      } else {
        parse_braces(min, max, unbounded);
        simple_base.reset();
        unit = repeat(rule, as_one_element(rule, std::move(unit)), min, max, unbounded);
        continue;
      }
      if (simple_base) {  // (x^a)^b for a, b among ?, *, +: x at least once only if both say so
        min = run_min & min;
        unbounded = run_unbounded || unbounded;
        max = unbounded ? 0 : 1;
      } else {
        simple_base = as_one_element(rule, std::move(unit));
      }
      run_min = min, run_unbounded = unbounded;
      unit = repeat(rule, *simple_base, min, max, unbounded);
    }
  }

  void parse_braces(uint32_t& min, uint32_t& max, bool& unbounded) {
    const size_t open = pos_ - 1;
    skip_space(false);
    min = peek() == ',' ? 0 : parse_count();
    skip_space(false);
    if (peek() == ',') {
      ++pos_;
      skip_space(false);
      unbounded = peek() == '}';
      if (!unbounded) max = parse_count();
    } else {
      max = min;
    }
    skip_space(false);
    if (peek() != '}') fail("expected '}' to close the repetition", open);
    ++pos_;
    if (!unbounded && max < min) fail("repetition {m,n} has n < m", open);
  }

  GrammarElement as_one_element(uint32_t rule, Sequence unit) {
    if (unit.size() == 1) return unit[0];
    const uint32_t r = new_rule(rules_[rule].name + "-" + std::to_string(rules_.size()));
    rules_[r].alternatives.push_back(std::move(unit));
    return {GrammarElement::Ref, r};
  }

  // e{min,max} (max unbounded: e{min,}): min copies of e, then a rule for the optional rest.
  Sequence repeat(uint32_t rule, GrammarElement e, uint32_t min, uint32_t max, bool unbounded) {
    Sequence seq(min, e);
    const std::string base = rules_[rule].name + "-";
    if (unbounded) {
      const uint32_t star = new_rule(base + std::to_string(rules_.size()));
      rules_[star].alternatives = {{e, {GrammarElement::Ref, star}}, {}};
      seq.push_back({GrammarElement::Ref, star});
      return seq;
    }
    // opt_k ::= e opt_{k-1} | "" ; nested, so a run of fewer is one path, not many.
    uint32_t prev = 0;
    for (uint32_t k = 1; k <= max - min; ++k) {
      const uint32_t opt = new_rule(base + std::to_string(rules_.size()));
      Sequence first = {e};
      if (k > 1) first.push_back({GrammarElement::Ref, prev});
      rules_[opt].alternatives = {std::move(first), {}};
      prev = opt;
    }
    if (max > min) seq.push_back({GrammarElement::Ref, prev});
    return seq;
  }

  void check_all_defined() const {
    for (size_t i = 0; i < rules_.size(); ++i)
      if (!defined_[i]) fail("rule '" + rules_[i].name + "' is used but never defined", first_use_[i]);
  }
};

}  // namespace

std::shared_ptr<const Grammar> Grammar::parse(std::string_view gbnf, std::string_view root) {
  return GbnfParser(gbnf).parse(root);
}

}  // namespace edgelm
