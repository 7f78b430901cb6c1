// The regular-expression subset JSON Schema patterns use (literals, classes, ., \d \w \s and
// their negations, groups, alternation, * + ? {m,n}, ^ and $ at the ends) -> GBNF for the JSON
// string content of the strings it matches whole. Characters a JSON string must escape come out
// escaped; other control characters are left out of classes (a subset of the matches, still
// matches). Anything else (look-around, back-references, \b) is an error.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/grammar_rules.hpp"
#include "runtime/json_schema_parts.hpp"

namespace edgelm {
namespace {

std::string hex_escape(uint32_t cp) {
  char buf[16];
  if (cp <= 0xFF) {
    std::snprintf(buf, sizeof buf, "\\x%02X", cp);
  } else if (cp <= 0xFFFF) {
    std::snprintf(buf, sizeof buf, "\\u%04X", cp);
  } else {
    std::snprintf(buf, sizeof buf, "\\U%08X", cp);
  }
  return buf;
}

// How a character that JSON escapes appears inside the string, as a GBNF literal.
std::string escaped_char(uint32_t cp) {
  switch (cp) {
    case '"': return R"("\\\"")";
    case '\\': return R"("\\\\")";
    case '\n': return R"("\\n")";
    case '\t': return R"("\\t")";
    case '\r': return R"("\\r")";
    default: return "";
  }
}

std::string char_gbnf(uint32_t cp) {
  if (cp < 0x20 || cp == '"' || cp == '\\') {
    const std::string e = escaped_char(cp);
    if (e.empty()) return "\"\\\\u00" + hex_escape(cp).substr(2) + "\"";
    return e;
  }
  std::string out = "[";
  out += hex_escape(cp);
  return out + "]";
}

// A class as GBNF: the characters a string holds as themselves in one [...], the escaped
// ones as literals beside it.
std::string class_gbnf(const CharSet& set) {
  std::string plain;
  std::vector<std::string> alts;
  for (auto [lo, hi] : set.ranges) {
    for (uint32_t c : {uint32_t{'\t'}, uint32_t{'\n'}, uint32_t{'\r'}, uint32_t{'"'}, uint32_t{'\\'}})
      if (lo <= c && c <= hi) alts.push_back(escaped_char(c));
    for (uint32_t a = std::max<uint32_t>(lo, 0x20); a <= hi;) {  // split around '"' and '\\'
      uint32_t b = hi;
      if (a <= '"' && '"' <= b) b = std::min<uint32_t>(b, '"' - 1);
      if (a <= '\\' && '\\' <= b) b = std::min<uint32_t>(b, '\\' - 1);
      if (a == '"' || a == '\\') {
        ++a;
        continue;
      }
      plain += a == b ? hex_escape(a) : hex_escape(a) + "-" + hex_escape(b);
      if (b == 0x10FFFF) break;
      a = b + 1;
    }
  }
  if (!plain.empty()) alts.insert(alts.begin(), "[" + plain + "]");
  if (alts.empty()) throw PatternError("a character class matches no character a JSON string can hold");
  if (alts.size() == 1) return alts[0];
  std::string out = "(";
  for (size_t i = 0; i < alts.size(); ++i) out += (i ? " | " : " ") + alts[i];
  return out + " )";
}

class PatternParser {
 public:
  explicit PatternParser(std::string_view s) : s_(s) {}

  std::string parse() {
    if (peek() == '^') ++pos_;
    std::string out = alternation();
    if (pos_ < s_.size()) fail("unbalanced ')'");
    return out;
  }

 private:
  std::string_view s_;
  size_t pos_ = 0;

  [[noreturn]] void fail(const std::string& what) const {
    throw PatternError("pattern: " + what + " at offset " + std::to_string(pos_));
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  bool at_end() const { return pos_ >= s_.size(); }

  std::string alternation() {
    std::vector<std::string> alts = {sequence()};
    while (peek() == '|') {
      ++pos_;
      alts.push_back(sequence());
    }
    if (alts.size() == 1) return alts[0];
    std::string out = "(";
    for (size_t i = 0; i < alts.size(); ++i) out += (i ? " | " : " ") + (alts[i].empty() ? "\"\"" : alts[i]);
    return out + " )";
  }

  std::string sequence() {
    std::string out;
    while (!at_end() && peek() != '|' && peek() != ')') {
      if (peek() == '$') {
        ++pos_;
        if (!at_end()) fail("'$' is supported only at the end");
        break;
      }
      const std::string atom = quantified(this->atom());
      out += (out.empty() ? "" : " ") + atom;
    }
    return out;
  }

  std::string atom() {
    const char c = peek();
    if (c == '(') return group();
    if (c == '[') return class_gbnf(bracket());
    if (c == '.') {
      ++pos_;
      CharSet dot;
      dot.ranges = {{'\n', '\n'}};
      dot.finish(true);
      return class_gbnf(dot);
    }
    if (c == '\\') return escape();
    if (c == '*' || c == '+' || c == '?' || c == '{') fail("nothing to repeat");
    if (c == '^') fail("'^' is supported only at the start");
    return char_gbnf(utf8_char());
  }

  std::string group() {
    ++pos_;
    if (peek() == '?') {
      if (s_.substr(pos_, 2) != "?:") fail("look-around and named groups are not supported");
      pos_ += 2;
    }
    const std::string inner = alternation();
    if (peek() != ')') fail("unclosed '('");
    ++pos_;
    return "( " + (inner.empty() ? "\"\"" : inner) + " )";
  }

  std::string quantified(std::string atom) {
    const char c = peek();
    std::string q;
    if (c == '*' || c == '+' || c == '?') {
      ++pos_;
      q = std::string(1, c);
    } else if (c == '{' && pos_ + 1 < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[pos_ + 1])) || s_[pos_ + 1] == ',')) {
      q = braces();
    } else {
      return atom;
    }
    if (peek() == '?') ++pos_;  // lazy: the same strings match whole
    if (peek() == '+') fail("possessive quantifiers are not supported");
    return atom + q;
  }

  // {m}, {m,}, {m,n} or {,n}, checked here so that the GBNF it becomes always parses: digits only,
  // m <= n, and counts the grammar engine expands (at most 10000).
  std::string braces() {
    const size_t close = s_.find('}', pos_);
    if (close == std::string_view::npos) fail("unclosed '{'");
    const std::string_view body = s_.substr(pos_ + 1, close - pos_ - 1);
    const size_t comma = body.find(',');
    const auto count = [&](std::string_view digits) -> std::optional<uint32_t> {
      if (digits.empty()) return std::nullopt;
      uint32_t v = 0;
      for (char d : digits) {
        if (d < '0' || d > '9') fail("a repetition {m,n} holds only numbers");
        v = v * 10 + static_cast<uint32_t>(d - '0');
        if (v > 10000) fail("a repetition count above 10000");
      }
      return v;
    };
    const auto lo = count(body.substr(0, comma));
    const auto hi = comma == std::string_view::npos ? lo : count(body.substr(comma + 1));
    if (comma != std::string_view::npos && body.find(',', comma + 1) != std::string_view::npos)
      fail("a repetition {m,n} holds only numbers");
    if (lo && hi && *hi < *lo) fail("repetition {" + std::string(body) + "} has n < m");
    pos_ = close + 1;
    std::string q = "{" + (lo ? std::to_string(*lo) : std::string("0"));
    if (comma != std::string_view::npos) q += "," + (hi ? std::to_string(*hi) : std::string());
    return q + "}";
  }

  // \d \w \s and negations as classes; other escapes are characters.
  std::string escape() {
    CharSet set;
    if (class_escape(set)) return class_gbnf(set);
    return char_gbnf(escaped_literal());
  }

  // Reads \d \D \w \W \s \S into `set` (finished); false, position unchanged, for other escapes.
  bool class_escape(CharSet& set) {
    const char e = pos_ + 1 < s_.size() ? s_[pos_ + 1] : '\0';
    const char lower = static_cast<char>(std::tolower(static_cast<unsigned char>(e)));
    if (lower != 'd' && lower != 'w' && lower != 's') return false;
    pos_ += 2;
    if (lower == 'd') set.ranges = {{'0', '9'}};
    if (lower == 'w') set.ranges = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
    if (lower == 's') set.ranges = {{' ', ' '}, {'\t', '\t'}, {'\n', '\n'}, {'\r', '\r'}};
    set.finish(std::isupper(static_cast<unsigned char>(e)));
    return true;
  }

  uint32_t escaped_literal() {
    ++pos_;
    if (at_end()) fail("a pattern cannot end with '\\'");
    const char e = s_[pos_++];
    switch (e) {
      case 'n': return '\n';
      case 't': return '\t';
      case 'r': return '\r';
      case 'f': return '\f';
      case 'v': return '\v';
      case 'x': return hex(2);
      case 'u': return hex(4);
      default: break;
    }
    if (std::isalnum(static_cast<unsigned char>(e))) fail(std::string("unsupported escape '\\") + e + "'");
    return static_cast<unsigned char>(e);
  }

  uint32_t hex(int n) {
    uint32_t v = 0;
    for (int i = 0; i < n; ++i, ++pos_) {
      const char c = peek();
      if (!std::isxdigit(static_cast<unsigned char>(c))) fail("expected hex digits");
      v = v * 16 + static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : std::tolower(c) - 'a' + 10);
    }
    return v;
  }

  uint32_t utf8_char() {
    const auto b = static_cast<uint8_t>(s_[pos_]);
    const int len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    if (len == 0 || pos_ + len > s_.size()) fail("invalid UTF-8");
    uint32_t cp = len == 1 ? b : b & (0x7Fu >> len);
    for (int i = 1; i < len; ++i) cp = (cp << 6) | (static_cast<uint8_t>(s_[pos_ + i]) & 0x3Fu);
    pos_ += len;
    return cp;
  }

  CharSet bracket() {
    ++pos_;
    CharSet set;
    const bool negated = peek() == '^';
    if (negated) ++pos_;
    bool first = true;
    while (first || peek() != ']') {
      if (at_end()) fail("unclosed '['");
      first = false;
      CharSet inner;
      if (peek() == '\\' && class_escape(inner)) {
        set.ranges.insert(set.ranges.end(), inner.ranges.begin(), inner.ranges.end());
        continue;
      }
      const uint32_t lo = class_char();
      uint32_t hi = lo;
      if (peek() == '-' && pos_ + 1 < s_.size() && s_[pos_ + 1] != ']') {
        ++pos_;
        hi = class_char();
        if (hi < lo) fail("character range is backwards");
      }
      set.ranges.push_back({lo, hi});
    }
    ++pos_;
    set.finish(negated);
    return set;
  }

  uint32_t class_char() { return peek() == '\\' ? escaped_literal() : utf8_char(); }
};

}  // namespace

std::string pattern_to_gbnf(const std::string& pattern) {
  const std::string out = PatternParser(pattern).parse();
  return out.empty() ? "\"\"" : out;
}

}  // namespace edgelm
