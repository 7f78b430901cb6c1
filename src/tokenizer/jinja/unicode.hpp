// The parts of Python's `str` semantics that template rendering depends on: UTF-8 decoding
// that round-trips any bytes, whitespace and line-break classes, printable characters (for
// repr) and case mapping.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace edgelm::jinja::unicode {

// Decodes UTF-8. Bytes that are not part of a well-formed sequence become U+DC80 + byte
// (Python's "surrogateescape"), so encode(decode(s)) == s for every byte string.
std::u32string decode(std::string_view s);
void append(std::string& out, char32_t cp);
std::string encode(std::u32string_view s);

// Number of code points (what Python's len() reports for the decoded text).
size_t length(std::string_view s);

// str.isspace(): also what `\s` matches in Python regexes and what str.strip() removes.
bool is_space(char32_t c);
// The line boundaries of str.splitlines().
bool is_line_break(char32_t c);
// str.isprintable() (used by repr). Covers the control, format, separator, surrogate and
// private-use ranges; unassigned code points count as printable.
bool is_printable(char32_t c);

// Case mapping for ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic and full-width Latin,
// including the one-to-many mappings Python applies there (e.g. "ß".upper() == "SS").
// Characters of other scripts are returned unchanged.
std::u32string lower(char32_t c);
std::u32string upper(char32_t c);
bool is_cased(char32_t c);
bool is_lower_char(char32_t c);
bool is_upper_char(char32_t c);

std::string to_lower(std::string_view s);
std::string to_upper(std::string_view s);

bool is_ascii_digit(char32_t c);
bool is_alpha(char32_t c);     // letters of the scripts above plus CJK ideographs / kana / hangul
bool is_decimal(char32_t c);   // ASCII and full-width digits

}  // namespace edgelm::jinja::unicode
