// Word splits where PCRE2's own Unicode tables would disagree with llama.cpp's. SmolLM2's merges
// happen not to reveal these through token ids, so the splits are checked directly; the
// expectations follow llama.cpp's Unicode 15.1 tables and its whitespace set.
#include "tokenizer/pretokenizer.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace edgelm::tokenizer {
namespace {

std::vector<std::string> words(const char* pre, const std::string& text) {
  const PreTokenizer splitter(pre_tokenizer_config(pre));
  std::vector<std::string> out;
  for (const Span s : splitter.split(text)) out.push_back(text.substr(s.begin, s.end - s.begin));
  return out;
}

using Words = std::vector<std::string>;

TEST(PreTokenizer, SplitsLikeGpt2) {
  EXPECT_EQ(words("gpt-2", "Hello, world!  It's 2024\n"),
            (Words{"Hello", ",", " world", "!", " ", " It", "'s", " 2024", "\n"}));
  EXPECT_EQ(words("smollm", " 2024"), (Words{" ", "2", "0", "2", "4"}));
  EXPECT_EQ(words("llama-bpe", " 12345 DON'T\n\n x"),
            (Words{" ", "123", "45", " DON", "'T", "\n\n", " x"}));
}

TEST(PreTokenizer, MongolianVowelSeparatorIsNotWhitespace) {
  // PCRE2's \s (UCP) matches U+180E; llama.cpp's whitespace set (Unicode White_Space) does not.
  EXPECT_EQ(words("gpt-2", "\u180e!"), (Words{"\u180e!"}));
}

TEST(PreTokenizer, NextLineIsWhitespace) {
  EXPECT_EQ(words("gpt-2", "a\u0085\u0085!"), (Words{"a", "\u0085", "\u0085", "!"}));
}

TEST(PreTokenizer, LettersAndDigitsNewInUnicode15Count) {
  // U+1E030 (Cyrillic Extended-D) and U+31350 (CJK Extension H) are letters, U+11F50 (Kawi)
  // a digit, in llama.cpp's tables; PCRE2 10.42 (Unicode 14) knows none of them.
  EXPECT_EQ(words("gpt-2", "x\U0001e030y \U00031350z"), (Words{"x\U0001e030y", " \U00031350z"}));
  EXPECT_EQ(words("smollm", "a\U00011f50\U00011f51"), (Words{"a", "\U00011f50", "\U00011f51"}));
  EXPECT_EQ(words("default", "?\U00011b00!"), (Words{"?\U00011b00!"}));  // Unicode 15 punctuation
}

TEST(PreTokenizer, PatternsDoNotLookPastThePieceBeforeThem) {
  // "smollm" first isolates digits; the GPT-2 pattern then sees "  " alone, so its look-ahead
  // finds the end of the piece, not the digit, and keeps both spaces together.
  EXPECT_EQ(words("smollm", "a  1"), (Words{"a", "  ", "1"}));
  EXPECT_EQ(words("gpt-2", "a  1"), (Words{"a", " ", " 1"}));
}

}  // namespace
}  // namespace edgelm::tokenizer
