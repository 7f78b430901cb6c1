// TokenStreamDecoder on single-byte tokens (ids 0..255 are the bytes themselves).
#include "tokenizer/test_support.hpp"

namespace edgelm::test {
namespace {

const std::string kFffd = "\xEF\xBF\xBD";

const Tokenizer& byte_tokenizer() {
  static const Tokenizer tok = Tokenizer::from_vocabulary(
      make_vocabulary(TinyVocab{.specials = {{"<|im_end|>", TokenType::Control}}}));
  return tok;
}

std::vector<std::string> push_bytes(TokenStreamDecoder& d, std::string_view bytes) {
  std::vector<std::string> out;
  for (char c : bytes) out.push_back(d.push(static_cast<uint8_t>(c)));
  return out;
}

using Pieces = std::vector<std::string>;

TEST(TokenStreamDecoder, HoldsBackACharacterUntilItIsComplete) {
  TokenStreamDecoder d(byte_tokenizer());
  EXPECT_EQ(push_bytes(d, "\xC3\xA9"), (Pieces{"", "é"}));
  EXPECT_EQ(push_bytes(d, "\xF0\x9F\x98\x80"), (Pieces{"", "", "", "😀"}));
  EXPECT_EQ(push_bytes(d, "a\xE6\xBC"), (Pieces{"a", "", ""}));
  EXPECT_EQ(push_bytes(d, "\xA2z"), (Pieces{"漢", "z"}));
  EXPECT_EQ(d.flush(), "");
}

TEST(TokenStreamDecoder, ReplacesBytesThatCanNeverFormACharacter) {
  TokenStreamDecoder d(byte_tokenizer());
  EXPECT_EQ(push_bytes(d, "\xFF"), Pieces{kFffd});
  EXPECT_EQ(push_bytes(d, "\x80"), Pieces{kFffd});
  EXPECT_EQ(push_bytes(d, "\xE4\x41"), (Pieces{"", kFffd + "A"}));
  EXPECT_EQ(push_bytes(d, "\xC0\x80"), (Pieces{kFffd, kFffd}));                  // overlong
  EXPECT_EQ(push_bytes(d, "\xED\xA0\x80"), (Pieces{"", kFffd + kFffd, kFffd}));  // surrogate
  EXPECT_EQ(d.flush(), "");
}

TEST(TokenStreamDecoder, FlushEmitsAnUnfinishedCharacterAsReplacement) {
  TokenStreamDecoder d(byte_tokenizer());
  EXPECT_EQ(push_bytes(d, "x\xE4\xB8"), (Pieces{"x", "", ""}));
  EXPECT_EQ(d.flush(), kFffd);
  EXPECT_EQ(d.flush(), "");
  EXPECT_EQ(push_bytes(d, "y"), Pieces{"y"});  // usable again after a flush
}

TEST(TokenStreamDecoder, ShowsControlTokensOnlyWhenAsked) {
  TokenStreamDecoder plain(byte_tokenizer());
  TokenStreamDecoder special(byte_tokenizer(), /*special=*/true);
  EXPECT_EQ(plain.push(256), "");
  EXPECT_EQ(special.push(256), "<|im_end|>");
}

TEST(TokenStreamDecoder, RejectsIdsOutsideTheVocabulary) {
  TokenStreamDecoder d(byte_tokenizer());
  EXPECT_THROW(d.push(-1), Error);
  EXPECT_THROW(d.push(byte_tokenizer().n_vocab()), Error);
}

}  // namespace
}  // namespace edgelm::test
