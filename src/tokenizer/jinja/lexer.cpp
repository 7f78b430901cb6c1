#include "tokenizer/jinja/lexer.hpp"

#include <cstdlib>
#include <limits>

#include "tokenizer/jinja/failure.hpp"
#include "tokenizer/jinja/unicode.hpp"

namespace edgelm::jinja {
namespace {

[[noreturn]] void syntax(size_t pos, std::string message) {
  fail(FailKind::Syntax, static_cast<uint32_t>(pos), std::move(message));
}

// The code point at `pos` and its length in bytes.
char32_t code_point_at(std::string_view s, size_t pos, size_t* length) {
  if (static_cast<unsigned char>(s[pos]) < 0x80) {  // ASCII, nearly every template byte
    *length = 1;
    return static_cast<char32_t>(s[pos]);
  }
  std::u32string cps = unicode::decode(s.substr(pos, 4));
  std::string enc;
  unicode::append(enc, cps[0]);
  *length = enc.size();
  return cps[0];
}

bool space_at(std::string_view s, size_t pos, size_t* length) {
  return pos < s.size() && unicode::is_space(code_point_at(s, pos, length));
}

size_t skip_spaces(std::string_view s, size_t pos) {
  size_t len = 0;
  while (space_at(s, pos, &len)) pos += len;
  return pos;
}

bool all_spaces(std::string_view s) {
  for (char32_t c : unicode::decode(s)) {
    if (!unicode::is_space(c)) return false;
  }
  return true;
}

std::string rstrip_spaces(std::string_view s) {
  std::u32string cps = unicode::decode(s);
  size_t end = cps.size();
  while (end > 0 && unicode::is_space(cps[end - 1])) --end;
  return unicode::encode(std::u32string_view(cps).substr(0, end));
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

int hex_value(char32_t c) {
  if (c >= '0' && c <= '9') return static_cast<int>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<int>(c - 'a' + 10);
  if (c >= 'A' && c <= 'F') return static_cast<int>(c - 'A' + 10);
  return -1;
}

// `(\d+_)*\d+` starting at pos; returns the end, or pos when there is no digit.
size_t match_digits(std::string_view s, size_t pos) {
  if (pos >= s.size() || !is_digit(s[pos])) return pos;
  size_t p = pos;
  while (p < s.size() && is_digit(s[p])) ++p;
  while (p + 1 < s.size() && s[p] == '_' && is_digit(s[p + 1])) {
    ++p;
    while (p < s.size() && is_digit(s[p])) ++p;
  }
  return p;
}

// Jinja's float_re at pos; returns the end or pos.
size_t match_float(std::string_view s, size_t pos) {
  if (pos > 0 && s[pos - 1] == '.') return pos;
  size_t q = match_digits(s, pos);
  if (q == pos) return pos;
  auto exponent = [&](size_t r) -> size_t {  // `e[+\-]?(\d+_)*\d+` at r, or 0
    if (r >= s.size() || (s[r] != 'e' && s[r] != 'E')) return 0;
    size_t t = r + 1;
    if (t < s.size() && (s[t] == '+' || s[t] == '-')) ++t;
    size_t u = match_digits(s, t);
    return u == t ? 0 : u;
  };
  if (q < s.size() && s[q] == '.') {
    size_t f = match_digits(s, q + 1);
    if (f == q + 1) return pos;  // a '.' without digits is not part of a float
    size_t e = exponent(f);
    return e != 0 ? e : f;
  }
  size_t e = exponent(q);
  return e != 0 ? e : pos;
}

// Jinja's integer_re at pos; returns the end or pos.
size_t match_integer(std::string_view s, size_t pos) {
  auto prefixed = [&](char lower, auto is_digit_of_base) -> size_t {
    if (pos + 1 >= s.size() || s[pos] != '0' || (s[pos + 1] != lower && s[pos + 1] != lower - 32)) {
      return 0;
    }
    size_t p = pos + 2, end = 0;
    while (true) {
      size_t q = p;
      if (q < s.size() && s[q] == '_') ++q;
      if (q < s.size() && is_digit_of_base(s[q])) {
        p = q + 1;
        end = p;
      } else {
        break;
      }
    }
    return end;
  };
  if (size_t e = prefixed('b', [](char c) { return c == '0' || c == '1'; })) return e;
  if (size_t e = prefixed('o', [](char c) { return c >= '0' && c <= '7'; })) return e;
  if (size_t e = prefixed('x', [](char c) { return hex_value(static_cast<unsigned char>(c)) >= 0; })) {
    return e;
  }
  if (pos < s.size() && s[pos] >= '1' && s[pos] <= '9') {
    size_t p = pos + 1;
    while (true) {
      size_t q = p;
      if (q < s.size() && s[q] == '_') ++q;
      if (q < s.size() && is_digit(s[q])) {
        p = q + 1;
      } else {
        break;
      }
    }
    return p;
  }
  if (pos < s.size() && s[pos] == '0') {
    size_t p = pos + 1;
    while (true) {
      size_t q = p;
      if (q < s.size() && s[q] == '_') ++q;
      if (q < s.size() && s[q] == '0') {
        p = q + 1;
      } else {
        break;
      }
    }
    return p;
  }
  return pos;
}

int64_t parse_integer(std::string_view text, size_t pos) {
  std::string digits;
  for (char c : text) {
    if (c != '_') digits += c;
  }
  int base = 10;
  size_t start = 0;
  if (digits.size() > 1 && digits[0] == '0') {
    char p = static_cast<char>(digits[1] | 0x20);
    if (p == 'b') base = 2;
    if (p == 'o') base = 8;
    if (p == 'x') base = 16;
    if (base != 10) start = 2;
  }
  uint64_t value = 0;
  for (size_t i = start; i < digits.size(); ++i) {
    int d = hex_value(static_cast<unsigned char>(digits[i]));
    if (value > (static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) - d) / base) {
      fail_unsupported(static_cast<uint32_t>(pos), "integer literal " + std::string(text) +
                                                       " is larger than 64 bits");
    }
    value = value * base + d;
  }
  return static_cast<int64_t>(value);
}

// Python's reading of a string literal body: backslashreplace to ASCII, then unicode-escape.
std::string decode_string_literal(std::string_view body, size_t pos) {
  std::u32string in = unicode::decode(body);
  std::u32string out;
  out.reserve(in.size());
  auto hex_escape = [&](size_t& i, int digits, const char* what) -> char32_t {
    uint32_t value = 0;
    for (int k = 0; k < digits; ++k) {
      int d = i + 1 + k < in.size() ? hex_value(in[i + 1 + k]) : -1;
      if (d < 0) syntax(pos, std::string("truncated ") + what + " escape");
      value = value * 16 + static_cast<uint32_t>(d);
    }
    i += digits;
    return value;
  };
  for (size_t i = 0; i < in.size(); ++i) {
    char32_t c = in[i];
    if (c != '\\') {
      out.push_back(c);
      continue;
    }
    if (i + 1 >= in.size()) syntax(pos, "\\ at end of string");
    char32_t n = in[++i];
    if (n >= 0x80) {
      // The character after the backslash was itself escaped to \xhh / \uhhhh / \Uhhhhhhhh
      // before decoding, so the backslash survives and the escape's letters appear.
      out.push_back('\\');
      const char* kHex = "0123456789abcdef";
      int digits = n < 0x100 ? 2 : (n < 0x10000 ? 4 : 8);
      out.push_back(n < 0x100 ? 'x' : (n < 0x10000 ? 'u' : 'U'));
      for (int k = digits - 1; k >= 0; --k) out.push_back(kHex[(n >> (4 * k)) & 0xF]);
      continue;
    }
    switch (n) {
      case '\n': break;
      case '\\': out.push_back('\\'); break;
      case '\'': out.push_back('\''); break;
      case '"': out.push_back('"'); break;
      case 'a': out.push_back(0x07); break;
      case 'b': out.push_back(0x08); break;
      case 'f': out.push_back(0x0C); break;
      case 'n': out.push_back('\n'); break;
      case 'r': out.push_back('\r'); break;
      case 't': out.push_back('\t'); break;
      case 'v': out.push_back(0x0B); break;
      case 'x': out.push_back(hex_escape(i, 2, "\\xXX")); break;
      case 'u':
      case 'U': {
        char32_t v = hex_escape(i, n == 'u' ? 4 : 8, n == 'u' ? "\\uXXXX" : "\\UXXXXXXXX");
        if (v > 0x10FFFF) syntax(pos, "illegal Unicode character");
        if (v >= 0xD800 && v <= 0xDFFF) {
          fail_unsupported(static_cast<uint32_t>(pos), "string literal contains a lone surrogate");
        }
        out.push_back(v);
        break;
      }
      case 'N':
        fail_unsupported(static_cast<uint32_t>(pos), "\\N{...} escapes are not supported");
      default:
        if (n >= '0' && n <= '7') {
          char32_t v = n - '0';
          for (int k = 0; k < 2 && i + 1 < in.size() && in[i + 1] >= '0' && in[i + 1] <= '7'; ++k) {
            v = v * 8 + (in[++i] - '0');
          }
          out.push_back(v);
        } else {
          out.push_back('\\');
          out.push_back(n);
        }
    }
  }
  return unicode::encode(out);
}

struct OpSpelling {
  const char* text;
  Op op;
};
constexpr OpSpelling kOps[] = {
    {"//", Op::FloorDiv}, {"**", Op::Pow}, {"==", Op::Eq}, {"!=", Op::Ne}, {">=", Op::Ge},
    {"<=", Op::Le},       {"+", Op::Add},  {"-", Op::Sub}, {"/", Op::Div}, {"*", Op::Mul},
    {"%", Op::Mod},       {"~", Op::Tilde}, {"[", Op::LBracket}, {"]", Op::RBracket},
    {"(", Op::LParen},    {")", Op::RParen}, {"{", Op::LBrace}, {"}", Op::RBrace},
    {">", Op::Gt},        {"<", Op::Lt},   {"=", Op::Assign}, {".", Op::Dot}, {":", Op::Colon},
    {"|", Op::Pipe},      {",", Op::Comma}, {";", Op::Semicolon},
};

class Lexer {
 public:
  explicit Lexer(std::string source) { out_.source = std::move(source); }

  LexedTemplate run() {
    const std::string& s = out_.source;
    size_t pos = 0;
    bool line_starting = true;
    while (pos < s.size()) {
      size_t k = find_tag(pos);
      if (k == std::string::npos) {
        push_data(pos, s.substr(pos));
        break;
      }
      std::string_view text = std::string_view(s).substr(pos, k - pos);
      char kind = s[k + 1];
      size_t raw_end = kind == '%' ? match_raw_begin(k) : 0;
      size_t after = raw_end != 0 ? raw_end : k + 2;
      char sign = 0;
      if (raw_end == 0 && after < s.size() && (s[after] == '-' || s[after] == '+')) {
        sign = s[after++];
      } else if (raw_end != 0 && k + 2 < s.size() && (s[k + 2] == '-' || s[k + 2] == '+')) {
        sign = s[k + 2];
      }
      push_data(pos, strip_before_tag(text, sign, kind != '{', line_starting));
      line_starting = s[after - 1] == '\n';
      if (raw_end != 0) {
        pos = lex_raw(raw_end, line_starting);
      } else if (kind == '#') {
        pos = lex_comment(after);
      } else {
        pos = lex_tag(k, after, kind == '{');
      }
      line_starting = pos > 0 && s[pos - 1] == '\n';
    }
    Token eof;
    eof.type = Tok::Eof;
    eof.pos = static_cast<uint32_t>(s.size());
    out_.tokens.push_back(std::move(eof));
    return std::move(out_);
  }

 private:
  size_t find_tag(size_t from) const {
    const std::string& s = out_.source;
    for (size_t i = s.find('{', from); i != std::string::npos; i = s.find('{', i + 1)) {
      if (i + 1 < s.size() && (s[i + 1] == '{' || s[i + 1] == '%' || s[i + 1] == '#')) return i;
    }
    return std::string::npos;
  }

  // `{%(-|+|)\s*raw\s*(?:-%}\s*|%})` at k: returns the end, or 0.
  size_t match_raw_begin(size_t k) const {
    const std::string& s = out_.source;
    size_t p = k + 2;
    if (p < s.size() && (s[p] == '-' || s[p] == '+')) ++p;
    p = skip_spaces(s, p);
    if (s.compare(p, 3, "raw") != 0) return 0;
    p = skip_spaces(s, p + 3);
    if (s.compare(p, 3, "-%}") == 0) return skip_spaces(s, p + 3);
    if (s.compare(p, 2, "%}") == 0) return p + 2;
    return 0;
  }

  // Whitespace control on the data before a tag: `-` strips all trailing whitespace;
  // otherwise lstrip_blocks removes the indentation before a block or comment tag that
  // starts its line.
  static std::string strip_before_tag(std::string_view text, char sign, bool is_block,
                                      bool line_starting) {
    if (sign == '-') return rstrip_spaces(text);
    if (sign != '+' && is_block) {
      size_t nl = text.rfind('\n');
      size_t l_pos = nl == std::string_view::npos ? 0 : nl + 1;
      if (l_pos > 0 || line_starting) {
        std::string_view tail = text.substr(l_pos);
        if (!tail.empty() && all_spaces(tail)) return std::string(text.substr(0, l_pos));
      }
    }
    return std::string(text);
  }

  void push_data(size_t pos, std::string text) {
    if (text.empty()) return;
    Token t;
    t.type = Tok::Data;
    t.pos = static_cast<uint32_t>(pos);
    t.text = std::move(text);
    out_.tokens.push_back(std::move(t));
  }

  void push(Tok type, size_t pos) {
    Token t;
    t.type = type;
    t.pos = static_cast<uint32_t>(pos);
    out_.tokens.push_back(std::move(t));
  }

  size_t lex_comment(size_t from) {
    const std::string& s = out_.source;
    if (from >= s.size()) return from;  // `{#` at the very end: Jinja ignores it
    size_t q = s.find("#}", from);
    if (q == std::string::npos) syntax(from - 2, "Missing end of comment tag");
    if (q > from && (s[q - 1] == '-' || s[q - 1] == '+')) {
      if (s[q - 1] == '-') return skip_spaces(s, q + 2);
      return q + 2;
    }
    size_t end = q + 2;
    if (end < s.size() && s[end] == '\n') ++end;  // trim_blocks
    return end;
  }

  size_t lex_raw(size_t from, bool line_starting) {
    const std::string& s = out_.source;
    if (from >= s.size()) return from;
    for (size_t k = s.find("{%", from); k != std::string::npos; k = s.find("{%", k + 1)) {
      size_t p = k + 2;
      char sign = 0;
      if (p < s.size() && (s[p] == '-' || s[p] == '+')) sign = s[p++];
      p = skip_spaces(s, p);
      if (s.compare(p, 6, "endraw") != 0) continue;
      p = skip_spaces(s, p + 6);
      size_t end = 0;
      if (s.compare(p, 3, "+%}") == 0) {
        end = p + 3;
      } else if (s.compare(p, 3, "-%}") == 0) {
        end = skip_spaces(s, p + 3);
      } else if (s.compare(p, 2, "%}") == 0) {
        end = p + 2;
        if (end < s.size() && s[end] == '\n') ++end;
      } else {
        continue;
      }
      push_data(from, strip_before_tag(std::string_view(s).substr(from, k - from), sign, true,
                                       line_starting));
      return end;
    }
    syntax(from, "Missing end of raw directive");
  }

  size_t lex_tag(size_t begin, size_t pos, bool variable) {
    const std::string& s = out_.source;
    push(variable ? Tok::VarBegin : Tok::BlockBegin, begin);
    std::vector<char> balance;
    while (true) {
      if (pos >= s.size()) {
        syntax(begin, variable ? "unexpected end of template: '{{' is never closed by '}}'"
                               : "unexpected end of template: '{%' is never closed by '%}'");
      }
      if (balance.empty()) {
        if (variable) {
          if (s.compare(pos, 3, "-}}") == 0) {
            push(Tok::VarEnd, pos);
            return skip_spaces(s, pos + 3);
          }
          if (s.compare(pos, 2, "}}") == 0) {
            push(Tok::VarEnd, pos);
            return pos + 2;
          }
        } else {
          if (s.compare(pos, 3, "+%}") == 0) {
            push(Tok::BlockEnd, pos);
            return pos + 3;
          }
          if (s.compare(pos, 3, "-%}") == 0) {
            push(Tok::BlockEnd, pos);
            return skip_spaces(s, pos + 3);
          }
          if (s.compare(pos, 2, "%}") == 0) {
            push(Tok::BlockEnd, pos);
            size_t end = pos + 2;
            if (end < s.size() && s[end] == '\n') ++end;  // trim_blocks
            return end;
          }
        }
      }
      size_t len = 0;
      if (space_at(s, pos, &len)) {
        pos += len;
        continue;
      }
      if (size_t e = match_float(s, pos); e != pos) {
        Token t;
        t.type = Tok::Float;
        t.pos = static_cast<uint32_t>(pos);
        std::string digits;
        for (size_t i = pos; i < e; ++i) {
          if (s[i] != '_') digits += s[i];
        }
        t.float_value = std::strtod(digits.c_str(), nullptr);
        out_.tokens.push_back(std::move(t));
        pos = e;
        continue;
      }
      if (size_t e = match_integer(s, pos); e != pos) {
        Token t;
        t.type = Tok::Integer;
        t.pos = static_cast<uint32_t>(pos);
        t.int_value = parse_integer(std::string_view(s).substr(pos, e - pos), pos);
        out_.tokens.push_back(std::move(t));
        pos = e;
        continue;
      }
      if (is_name_start(s[pos])) {
        size_t e = pos + 1;
        while (e < s.size() && is_name_char(s[e])) ++e;
        if (e < s.size() && static_cast<unsigned char>(s[e]) >= 0x80 && !space_at(s, e, &len)) {
          fail_unsupported(static_cast<uint32_t>(pos), "non-ASCII identifiers are not supported");
        }
        Token t;
        t.type = Tok::Name;
        t.pos = static_cast<uint32_t>(pos);
        t.text = s.substr(pos, e - pos);
        out_.tokens.push_back(std::move(t));
        pos = e;
        continue;
      }
      if (s[pos] == '\'' || s[pos] == '"') {
        char quote = s[pos];
        size_t i = pos + 1;
        while (i < s.size() && s[i] != quote) i += s[i] == '\\' ? 2 : 1;
        if (i >= s.size()) syntax(pos, "unterminated string literal");
        Token t;
        t.type = Tok::String;
        t.pos = static_cast<uint32_t>(pos);
        t.text = decode_string_literal(std::string_view(s).substr(pos + 1, i - pos - 1), pos);
        out_.tokens.push_back(std::move(t));
        pos = i + 1;
        continue;
      }
      bool matched = false;
      for (const OpSpelling& o : kOps) {
        size_t n = std::char_traits<char>::length(o.text);
        if (s.compare(pos, n, o.text) != 0) continue;
        if (o.op == Op::LBrace) balance.push_back('}');
        if (o.op == Op::LParen) balance.push_back(')');
        if (o.op == Op::LBracket) balance.push_back(']');
        if (o.op == Op::RBrace || o.op == Op::RParen || o.op == Op::RBracket) {
          if (balance.empty()) syntax(pos, std::string("unexpected '") + o.text + "'");
          if (balance.back() != o.text[0]) {
            syntax(pos, std::string("unexpected '") + o.text + "', expected '" + balance.back() + "'");
          }
          balance.pop_back();
        }
        Token t;
        t.type = Tok::Op;
        t.op = o.op;
        t.pos = static_cast<uint32_t>(pos);
        out_.tokens.push_back(std::move(t));
        pos += n;
        matched = true;
        break;
      }
      if (matched) continue;
      if (static_cast<unsigned char>(s[pos]) >= 0x80) {
        fail_unsupported(static_cast<uint32_t>(pos), "non-ASCII character in an expression");
      }
      syntax(pos, std::string("unexpected char '") + s[pos] + "'");
    }
  }

  LexedTemplate out_;
};

}  // namespace

std::string normalize_newlines(std::string_view source) {
  std::string out;
  if (source.find('\r') == std::string_view::npos) {
    out.assign(source);
  } else {
    out.reserve(source.size());
    for (size_t i = 0; i < source.size(); ++i) {
      if (source[i] == '\r') {
        out += '\n';
        if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
      } else {
        out += source[i];
      }
    }
  }
  // Jinja drops one trailing newline (keep_trailing_newline is off).
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

const char* op_text(Op op) {
  for (const OpSpelling& o : kOps) {
    if (o.op == op) return o.text;
  }
  return "?";
}

LexedTemplate lex(std::string_view source) {
  if (source.size() >= std::numeric_limits<uint32_t>::max() / 2) {
    fail(FailKind::Limit, kNoPos, "template source too large");
  }
  return Lexer(normalize_newlines(source)).run();
}

}  // namespace edgelm::jinja
