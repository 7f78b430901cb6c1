#include "tokenizer/utf8.hpp"

#include <algorithm>

namespace edgelm::tokenizer {

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

char32_t next_codepoint_lenient(std::string_view s, size_t& pos) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char lead = byte(pos);
  if (lead < 0x80) {
    ++pos;
    return lead;
  }
  size_t n_cont = 0;
  char32_t cp = 0;
  if ((lead & 0xE0) == 0xC0) {
    n_cont = 1;
    cp = lead & 0x1F;
  } else if ((lead & 0xF0) == 0xE0) {
    n_cont = 2;
    cp = lead & 0x0F;
  } else if ((lead & 0xF8) == 0xF0) {
    n_cont = 3;
    cp = lead & 0x07;
  } else {  // continuation byte or 0xF8..0xFF in lead position
    ++pos;
    return kReplacementChar;
  }
  if (pos + n_cont >= s.size()) {  // truncated at the end of the text
    ++pos;
    return kReplacementChar;
  }
  for (size_t k = 1; k <= n_cont; ++k) {
    const unsigned char c = byte(pos + k);
    if ((c & 0xC0) != 0x80) {
      ++pos;
      return kReplacementChar;
    }
    cp = (cp << 6) | (c & 0x3F);
  }
  if (cp > 0x10FFFF) {
    ++pos;
    return kReplacementChar;
  }
  pos += n_cont + 1;
  return cp;
}

NormalizedText normalize_like_llama(std::string_view raw) {
  NormalizedText out;
  out.bytes.reserve(raw.size());
  size_t pos = 0;
  bool has_surrogate = false;
  while (pos < raw.size()) {
    const char32_t cp = next_codepoint_lenient(raw, pos);
    has_surrogate |= (cp >= 0xD800 && cp <= 0xDFFF);
    append_utf8(out.bytes, cp);
  }
  if (!has_surrogate) {
    out.regex_subject = out.bytes;
    return out;
  }
  out.regex_subject.reserve(out.bytes.size());
  pos = 0;
  while (pos < out.bytes.size()) {
    const char32_t cp = next_codepoint_lenient(out.bytes, pos);
    append_utf8(out.regex_subject, (cp >= 0xD800 && cp <= 0xDFFF) ? kReplacementChar : cp);
  }
  return out;
}

Utf8Scan scan_utf8(std::string_view s, size_t pos) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char lead = byte(pos);
  if (lead < 0x80) return {Utf8Status::Complete, 1};
  // Unicode 15, table 3-7: the lead byte fixes the length and the range of the second byte.
  size_t n_cont = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    n_cont = 1;
  } else if (lead == 0xE0) {
    n_cont = 2, lo = 0xA0;
  } else if ((lead >= 0xE1 && lead <= 0xEC) || lead == 0xEE || lead == 0xEF) {
    n_cont = 2;
  } else if (lead == 0xED) {
    n_cont = 2, hi = 0x9F;  // no surrogates
  } else if (lead == 0xF0) {
    n_cont = 3, lo = 0x90;
  } else if (lead >= 0xF1 && lead <= 0xF3) {
    n_cont = 3;
  } else if (lead == 0xF4) {
    n_cont = 3, hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return {Utf8Status::Invalid, 1};
  }
  for (size_t k = 1; k <= n_cont; ++k) {
    if (pos + k >= s.size()) return {Utf8Status::Incomplete, k};
    const unsigned char c = byte(pos + k);
    const bool ok = (k == 1) ? (c >= lo && c <= hi) : (c >= 0x80 && c <= 0xBF);
    if (!ok) return {Utf8Status::Invalid, k};
  }
  return {Utf8Status::Complete, n_cont + 1};
}

size_t append_valid_utf8(std::string_view s, std::string& out, bool hold_incomplete) {
  size_t pos = 0;
  while (pos < s.size()) {
    const Utf8Scan sc = scan_utf8(s, pos);
    if (hold_incomplete && sc.status == Utf8Status::Incomplete) break;
    const size_t len = std::max<size_t>(1, sc.length);
    if (sc.status == Utf8Status::Complete)
      out.append(s.substr(pos, len));
    else
      append_utf8(out, kReplacementChar);
    pos += len;
  }
  return pos;
}

std::string to_valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  append_valid_utf8(s, out, /*hold_incomplete=*/false);
  return out;
}

}  // namespace edgelm::tokenizer
