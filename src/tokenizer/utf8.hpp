// UTF-8 helpers with two deliberately different notions of validity:
//  - lenient decoding that reproduces llama.cpp's reading of input text (so token ids match it),
//  - strict scanning (Unicode's well-formed table) for the stream decoder's output.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace edgelm::tokenizer {

inline constexpr char32_t kReplacementChar = 0xFFFD;

// Appends the UTF-8 form of `cp` (< 0x110000; surrogates are encoded like any other value).
void append_utf8(std::string& out, char32_t cp);

// Reads one code point at `pos` the way llama.cpp does: a lead byte followed by the right number
// of continuation bytes is accepted without checking for overlong forms or surrogates; anything
// else consumes one byte and yields U+FFFD. Values above U+10FFFF (which make llama.cpp abort)
// are treated as invalid too.
char32_t next_codepoint_lenient(std::string_view s, size_t& pos);

// The text that llama.cpp actually splits and encodes: `raw` decoded leniently and re-encoded.
// `bytes` is what gets tokenized; `regex_subject` is the same text with surrogates replaced by
// U+FFFD (also three bytes, and of the same character class), so that PCRE2 sees valid UTF-8 and
// offsets into one are offsets into the other.
struct NormalizedText {
  std::string bytes;
  std::string regex_subject;
};
NormalizedText normalize_like_llama(std::string_view raw);

// Strict scan of the character starting at `pos` (pos < s.size()).
enum class Utf8Status { Complete, Incomplete, Invalid };
struct Utf8Scan {
  Utf8Status status;
  size_t length;  // Complete: bytes of the character; Invalid: bytes to replace by one U+FFFD;
                  // Incomplete: bytes present (a valid prefix that runs into the end of `s`)
};
Utf8Scan scan_utf8(std::string_view s, size_t pos);

// Appends `s` to `out` with every ill-formed sequence replaced by U+FFFD, one per maximal
// invalid subpart as scan_utf8 finds them. An incomplete character at the end is left out
// when `hold_incomplete` (a stream waits for its rest), else replaced too. Returns the bytes
// of `s` consumed.
size_t append_valid_utf8(std::string_view s, std::string& out, bool hold_incomplete);

// `s` with every ill-formed sequence (and an incomplete one at the end) replaced by U+FFFD;
// well-formed text is unchanged.
std::string to_valid_utf8(std::string_view s);

}  // namespace edgelm::tokenizer
