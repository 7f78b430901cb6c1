#include "tokenizer/jinja/unicode.hpp"

namespace edgelm::jinja::unicode {
namespace {

constexpr char32_t kEscapeBase = 0xDC80;  // surrogateescape: U+DC80 + byte

bool in(char32_t c, char32_t lo, char32_t hi) { return c >= lo && c <= hi; }

// Simple (one-to-one) mappings; the one-to-many cases are handled in lower()/upper().
char32_t lower_simple(char32_t c) {
  if (in(c, 'A', 'Z')) return c + 32;
  if (c < 0xC0) return c;
  if (in(c, 0xC0, 0xDE) && c != 0xD7) return c + 32;
  if (in(c, 0x100, 0x17F)) {
    if (c == 0x178) return 0xFF;
    bool even_upper = in(c, 0x100, 0x12F) || in(c, 0x132, 0x137) || in(c, 0x14A, 0x177);
    bool odd_upper = in(c, 0x139, 0x148) || in(c, 0x179, 0x17E);
    if (even_upper && c % 2 == 0) return c + 1;
    if (odd_upper && c % 2 == 1) return c + 1;
    return c;
  }
  if (in(c, 0x370, 0x3FF)) {
    if (c == 0x386) return 0x3AC;
    if (in(c, 0x388, 0x38A)) return c + 37;
    if (c == 0x38C) return 0x3CC;
    if (in(c, 0x38E, 0x38F)) return c + 63;
    if (in(c, 0x391, 0x3A1) || in(c, 0x3A3, 0x3AB)) return c + 32;
    return c;
  }
  if (in(c, 0x400, 0x52F)) {
    if (in(c, 0x400, 0x40F)) return c + 80;
    if (in(c, 0x410, 0x42F)) return c + 32;
    if (c == 0x4C0) return 0x4CF;
    bool even_upper = in(c, 0x460, 0x481) || in(c, 0x48A, 0x4BF) || in(c, 0x4D0, 0x52F);
    bool odd_upper = in(c, 0x4C1, 0x4CE);
    if (even_upper && c % 2 == 0) return c + 1;
    if (odd_upper && c % 2 == 1) return c + 1;
    return c;
  }
  if (in(c, 0xFF21, 0xFF3A)) return c + 32;
  return c;
}

char32_t upper_simple(char32_t c) {
  if (in(c, 'a', 'z')) return c - 32;
  if (c < 0xB5) return c;
  if (c == 0xB5) return 0x39C;
  if (in(c, 0xE0, 0xFE) && c != 0xF7) return c - 32;
  if (c == 0xFF) return 0x178;
  if (in(c, 0x100, 0x17F)) {
    if (c == 0x131) return 'I';
    if (c == 0x17F) return 'S';
    bool odd_lower = in(c, 0x101, 0x12F) || in(c, 0x133, 0x137) || in(c, 0x14B, 0x177);
    bool even_lower = in(c, 0x13A, 0x148) || in(c, 0x17A, 0x17E);
    if (odd_lower && c % 2 == 1) return c - 1;
    if (even_lower && c % 2 == 0) return c - 1;
    return c;
  }
  if (in(c, 0x370, 0x3FF)) {
    if (c == 0x3AC) return 0x386;
    if (in(c, 0x3AD, 0x3AF)) return c - 37;
    if (c == 0x3CC) return 0x38C;
    if (in(c, 0x3CD, 0x3CE)) return c - 63;
    if (c == 0x3C2) return 0x3A3;
    if (in(c, 0x3B1, 0x3C1) || in(c, 0x3C3, 0x3CB)) return c - 32;
    return c;
  }
  if (in(c, 0x430, 0x52F)) {
    if (in(c, 0x430, 0x44F)) return c - 32;
    if (in(c, 0x450, 0x45F)) return c - 80;
    if (c == 0x4CF) return 0x4C0;
    bool odd_lower = in(c, 0x461, 0x481) || in(c, 0x48B, 0x4BF) || in(c, 0x4D1, 0x52F);
    bool even_lower = in(c, 0x4C2, 0x4CE);
    if (odd_lower && c % 2 == 1) return c - 1;
    if (even_lower && c % 2 == 0) return c - 1;
    return c;
  }
  if (in(c, 0xFF41, 0xFF5A)) return c - 32;
  return c;
}

}  // namespace

void append(std::string& out, char32_t cp) {
  if (cp >= kEscapeBase && cp <= kEscapeBase + 0x7F) {  // an escaped raw byte 0x80..0xFF
    out.push_back(static_cast<char>(cp - kEscapeBase + 0x80));
    return;
  }
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::u32string decode(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    unsigned char b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      out.push_back(b);
      ++i;
      continue;
    }
    int need = 0;
    char32_t cp = 0, min = 0;
    if (b >= 0xC2 && b <= 0xDF) { need = 1; cp = b & 0x1F; min = 0x80; }
    else if (b >= 0xE0 && b <= 0xEF) { need = 2; cp = b & 0x0F; min = 0x800; }
    else if (b >= 0xF0 && b <= 0xF4) { need = 3; cp = b & 0x07; min = 0x10000; }
    bool ok = need > 0 && i + static_cast<size_t>(need) < s.size();
    for (int k = 1; ok && k <= need; ++k) {
      unsigned char c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) {
        ok = false;
      } else {
        cp = (cp << 6) | (c & 0x3F);
      }
    }
    if (ok && (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))) ok = false;
    if (ok) {
      out.push_back(cp);
      i += need + 1;
    } else {
      out.push_back(kEscapeBase + (b - 0x80));
      ++i;
    }
  }
  return out;
}

std::string encode(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) append(out, c);
  return out;
}

size_t length(std::string_view s) {
  bool ascii = true;
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) { ascii = false; break; }
  }
  return ascii ? s.size() : decode(s).size();
}

bool is_space(char32_t c) {
  return in(c, 0x09, 0x0D) || in(c, 0x1C, 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         in(c, 0x2000, 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

bool is_line_break(char32_t c) {
  return c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || in(c, 0x1C, 0x1E) || c == 0x85 ||
         c == 0x2028 || c == 0x2029;
}

bool is_printable(char32_t c) {
  if (c == ' ') return true;
  if (c < 0x20 || in(c, 0x7F, 0xA0) || c == 0xAD) return false;
  if (c >= kEscapeBase && c <= kEscapeBase + 0x7F) return false;
  if (in(c, 0x600, 0x605) || c == 0x61C || c == 0x6DD || c == 0x70F || in(c, 0x890, 0x891) ||
      c == 0x8E2 || c == 0x1680 || c == 0x180E || in(c, 0x2000, 0x200F) || in(c, 0x2028, 0x202F) ||
      in(c, 0x205F, 0x2064) || in(c, 0x2066, 0x206F) || c == 0x3000 || in(c, 0xD800, 0xF8FF) ||
      c == 0xFEFF || in(c, 0xFFF9, 0xFFFB) || c == 0x110BD || c == 0x110CD ||
      in(c, 0x13430, 0x1343F) || in(c, 0x1BCA0, 0x1BCA3) || in(c, 0x1D173, 0x1D17A) ||
      c == 0xE0001 || in(c, 0xE0020, 0xE007F) || in(c, 0xF0000, 0x10FFFF)) {
    return false;
  }
  return true;
}

std::u32string lower(char32_t c) {
  if (c == 0x130) return std::u32string{U'i', 0x307};
  return std::u32string(1, lower_simple(c));
}

std::u32string upper(char32_t c) {
  switch (c) {
    case 0xDF: return U"SS";
    case 0x149: return std::u32string{0x2BC, U'N'};
    case 0x1E9E: return std::u32string(1, c);
    default: return std::u32string(1, upper_simple(c));
  }
}

bool is_lower_char(char32_t c) { return upper_simple(c) != c || c == 0xDF || c == 0x138 || c == 0x149; }
bool is_upper_char(char32_t c) { return lower_simple(c) != c || c == 0x130; }
bool is_cased(char32_t c) { return is_lower_char(c) || is_upper_char(c); }

std::string to_lower(std::string_view s) {
  std::u32string cps = decode(s);
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < cps.size(); ++i) {
    char32_t c = cps[i];
    if (c == 0x3A3) {  // Greek capital sigma: final form at the end of a word
      bool before = i > 0 && is_cased(cps[i - 1]);
      bool after = i + 1 < cps.size() && is_cased(cps[i + 1]);
      append(out, before && !after ? 0x3C2 : 0x3C3);
      continue;
    }
    for (char32_t m : lower(c)) append(out, m);
  }
  return out;
}

std::string to_upper(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : decode(s)) {
    for (char32_t m : upper(c)) append(out, m);
  }
  return out;
}

bool is_ascii_digit(char32_t c) { return c >= '0' && c <= '9'; }

bool is_decimal(char32_t c) { return is_ascii_digit(c) || in(c, 0xFF10, 0xFF19); }

bool is_alpha(char32_t c) {
  if (in(c, 'a', 'z') || in(c, 'A', 'Z')) return true;
  if (c < 0xAA) return false;
  if (c == 0xAA || c == 0xB5 || c == 0xBA) return true;
  if (in(c, 0xC0, 0x2C1) && c != 0xD7 && c != 0xF7) return true;
  if (in(c, 0x370, 0x3FF) && c != 0x375 && c != 0x37E && c != 0x384 && c != 0x385 && c != 0x387)
    return true;
  if (in(c, 0x400, 0x481) || in(c, 0x48A, 0x52F)) return true;
  if (in(c, 0x3041, 0x3096) || in(c, 0x30A1, 0x30FA) || in(c, 0x4E00, 0x9FFF) ||
      in(c, 0xAC00, 0xD7A3) || in(c, 0xFF21, 0xFF3A) || in(c, 0xFF41, 0xFF5A))
    return true;
  return false;
}

}  // namespace edgelm::jinja::unicode
