// The two UTF-8 readers: llama.cpp's lenient one (for parity) and the strict one (for output).
#include "tokenizer/utf8.hpp"

#include <gtest/gtest.h>

namespace edgelm::tokenizer {
namespace {

const std::string kFffd = "\xEF\xBF\xBD";

TEST(NormalizeLikeLlama, KeepsValidTextUnchanged) {
  const std::string text = "héllo 漢字 😀\n";
  const auto n = normalize_like_llama(text);
  EXPECT_EQ(n.bytes, text);
  EXPECT_EQ(n.regex_subject, text);
}

TEST(NormalizeLikeLlama, ReplacesEachUndecodableByte) {
  EXPECT_EQ(normalize_like_llama("\x80").bytes, kFffd);
  EXPECT_EQ(normalize_like_llama("a\xFF\x62").bytes, "a" + kFffd + "b");
  EXPECT_EQ(normalize_like_llama("\xE4\xB8").bytes, kFffd + kFffd);  // truncated
  EXPECT_EQ(normalize_like_llama("\xE4\xB8\x41").bytes, kFffd + kFffd + "A");
  EXPECT_EQ(normalize_like_llama("\xF4\x90\x80\x80").bytes, kFffd + kFffd + kFffd + kFffd);
}

TEST(NormalizeLikeLlama, AcceptsOverlongFormsAndSurrogatesAsLlamaCppDoes) {
  EXPECT_EQ(normalize_like_llama("\xC0\x80").bytes, std::string(1, '\0'));  // re-encoded
  EXPECT_EQ(normalize_like_llama("\xE0\x81\x81").bytes, "A");
  const auto surrogate = normalize_like_llama("x\xED\xA0\x80y");
  EXPECT_EQ(surrogate.bytes, "x\xED\xA0\x80y");           // tokenized as these bytes
  EXPECT_EQ(surrogate.regex_subject, "x" + kFffd + "y");  // PCRE2 sees valid UTF-8
}

TEST(ScanUtf8, FollowsTheWellFormedTable) {
  struct Case {
    std::string bytes;
    Utf8Status status;
    size_t length;
  };
  const Case cases[] = {
      {"a", Utf8Status::Complete, 1},
      {"\xC3\xA9", Utf8Status::Complete, 2},
      {"\xE6\xBC\xA2", Utf8Status::Complete, 3},
      {"\xF0\x9F\x98\x80", Utf8Status::Complete, 4},
      {"\xC3", Utf8Status::Incomplete, 1},
      {"\xF0\x9F\x98", Utf8Status::Incomplete, 3},
      {"\x80", Utf8Status::Invalid, 1},
      {"\xC0\x80", Utf8Status::Invalid, 1},
      {"\xC1\xBF", Utf8Status::Invalid, 1},
      {"\xE0\x80\x80", Utf8Status::Invalid, 1},
      {"\xED\xA0\x80", Utf8Status::Invalid, 1},
      {"\xF4\x90\x80\x80", Utf8Status::Invalid, 1},
      {"\xF5\x80", Utf8Status::Invalid, 1},
      {"\xE6\xBC\x41", Utf8Status::Invalid, 2},
      {"\xFF", Utf8Status::Invalid, 1},
  };
  for (const Case& c : cases) {
    const Utf8Scan scan = scan_utf8(c.bytes, 0);
    EXPECT_EQ(scan.status, c.status) << testing::PrintToString(c.bytes);
    EXPECT_EQ(scan.length, c.length) << testing::PrintToString(c.bytes);
  }
}

}  // namespace
}  // namespace edgelm::tokenizer
