// SentencePiece-style vocabularies on small hand-made vocabularies: merging by score, byte
// fallback, the leading space, special tokens, BOS/EOS and decoding.
#include <cstdio>
#include <functional>

#include "tokenizer/test_support.hpp"

namespace edgelm::test {
namespace {

// Ids: 0 <unk>, 1 <s>, 2 </s>, then (with byte_tokens) <0x00>..<0xFF> at 3..258, then `pieces`
// (text with "▁" for spaces, and a score), then `specials`.
struct SpmSpec {
  std::vector<std::pair<std::string, float>> pieces;
  std::vector<std::pair<std::string, TokenType>> specials = {};
  bool byte_tokens = true;
  std::optional<bool> add_space_prefix = false;
};

VocabularyData make_spm(const SpmSpec& spec) {
  VocabularyData d;
  d.model = "llama";
  d.pre = "default";
  const auto add = [&](std::string text, TokenType type, float score) {
    d.tokens.push_back(std::move(text));
    d.token_types.push_back(static_cast<int32_t>(type));
    d.scores.push_back(score);
  };
  add("<unk>", TokenType::Unknown, 0);
  add("<s>", TokenType::Control, 0);
  add("</s>", TokenType::Control, 0);
  if (spec.byte_tokens) {
    for (int b = 0; b < 256; ++b) {
      char hex[7];
      std::snprintf(hex, sizeof hex, "<0x%02X>", b);
      add(hex, TokenType::Byte, 0);
    }
  }
  for (const auto& [text, score] : spec.pieces) add(text, TokenType::Normal, score);
  for (const auto& [text, type] : spec.specials) add(text, type, 0);
  d.bos = 1;
  d.eos = 2;
  d.unk = 0;
  d.add_bos = false;
  d.add_space_prefix = spec.add_space_prefix;
  return d;
}

constexpr int32_t kFirstPiece = 3 + 256;
int32_t byte_id(uint8_t b) { return 3 + b; }

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.message();
  }
  return "(no error)";
}

TEST(Spm, TheBigramWithTheHighestScoreMergesFirst) {
  // "ab" and "bc" compete for the b in "abc": the higher score wins.
  const Tokenizer bc_wins = Tokenizer::from_vocabulary(
      make_spm({.pieces = {{"a", -1}, {"b", -1}, {"c", -1}, {"ab", -5}, {"bc", -2}}}));
  EXPECT_EQ(bc_wins.encode("abc", false, false),
            (std::vector<int32_t>{kFirstPiece, kFirstPiece + 4}));
  const Tokenizer ab_wins = Tokenizer::from_vocabulary(
      make_spm({.pieces = {{"a", -1}, {"b", -1}, {"c", -1}, {"ab", -2}, {"bc", -5}}}));
  EXPECT_EQ(ab_wins.encode("abc", false, false),
            (std::vector<int32_t>{kFirstPiece + 3, kFirstPiece + 2}));
}

TEST(Spm, MergesBuildOnEarlierMergesAndTiesGoLeftmost) {
  const Tokenizer tok = Tokenizer::from_vocabulary(
      make_spm({.pieces = {{"a", -1}, {"aa", -3}, {"aaa", -1}, {"aaaa", -9}}}));
  const int32_t a = kFirstPiece, aa = kFirstPiece + 1, aaa = kFirstPiece + 2;
  // "aaa": the two candidate "aa" pairs tie; the left one merges, then "aa"+"a" -> "aaa".
  EXPECT_EQ(tok.encode("aaa", false, false), (std::vector<int32_t>{aaa}));
  // "aaaaa": the leftmost "aa" merges first, then "aaa" (-1) beats every other pair; the two
  // a's left over become "aa", which cannot join "aaa" (no "aaaaa"), and "aaaa" never forms.
  EXPECT_EQ(tok.encode("aaaaa", false, false), (std::vector<int32_t>{aaa, aa}));
  EXPECT_EQ(tok.encode("a", false, false), (std::vector<int32_t>{a}));
}

TEST(Spm, AMergeOnlyHappensWhenTheResultIsAToken) {
  // Neither "abc" nor "bc" is a token, so "c" stays on its own between the two "ab".
  const Tokenizer tok = Tokenizer::from_vocabulary(
      make_spm({.pieces = {{"a", -1}, {"b", -1}, {"c", -1}, {"ab", -1}}}));
  EXPECT_EQ(tok.encode("abcab", false, false),
            (std::vector<int32_t>{kFirstPiece + 3, kFirstPiece + 2, kFirstPiece + 3}));
}

TEST(Spm, CharactersWithoutATokenFallBackToBytes) {
  const Tokenizer tok = Tokenizer::from_vocabulary(make_spm({.pieces = {{"a", -1}}}));
  // "é" is C3 A9; "€" is E2 82 AC.
  EXPECT_EQ(tok.encode("aé€", false, false),
            (std::vector<int32_t>{kFirstPiece, byte_id(0xC3), byte_id(0xA9), byte_id(0xE2),
                                  byte_id(0x82), byte_id(0xAC)}));
  EXPECT_EQ(tok.decode(tok.encode("aé€", false, false)), "aé€");
  EXPECT_EQ(tok.token_to_piece(byte_id(0x0A)), "\n");
}

TEST(Spm, InvalidUtf8IsCutByLeadByteAndSpelledAsBytes) {
  const Tokenizer tok = Tokenizer::from_vocabulary(make_spm({.pieces = {{"a", -1}}}));
  // A lone continuation byte is one character; a 4-byte lead byte swallows the next byte (as in
  // llama.cpp), so even the "a" after it comes out as a byte token.
  EXPECT_EQ(tok.encode("\x80"
                       "a",
                       false, false),
            (std::vector<int32_t>{byte_id(0x80), kFirstPiece}));
  EXPECT_EQ(tok.encode("\xF0"
                       "a",
                       false, false),
            (std::vector<int32_t>{byte_id(0xF0), byte_id('a')}));
  // The byte tokens keep the bytes (token_to_piece), decode() shows the ill-formed one as U+FFFD.
  const auto ids = tok.encode("\xF0"
                              "a",
                              false, false);
  EXPECT_EQ(tok.token_to_piece(ids[0]) + tok.token_to_piece(ids[1]), "\xF0"
                                                                      "a");
  EXPECT_EQ(tok.decode(ids), "\xEF\xBF\xBD"
                             "a");
}

TEST(Spm, WithoutByteTokensTheUnknownTokenStandsIn) {
  const Tokenizer tok =
      Tokenizer::from_vocabulary(make_spm({.pieces = {{"a", -1}}, .byte_tokens = false}));
  EXPECT_EQ(tok.encode("aza", false, false), (std::vector<int32_t>{3, 0, 3}));

  VocabularyData no_unk = make_spm({.pieces = {{"a", -1}}, .byte_tokens = false});
  no_unk.token_types[0] = static_cast<int32_t>(TokenType::Normal);
  no_unk.unk = -1;
  const Tokenizer strict = Tokenizer::from_vocabulary(no_unk);
  EXPECT_NE(error_of([&] { strict.encode("z", false, false); }).find("no token for byte 0x7A"),
            std::string::npos);
}

TEST(Spm, SpacesAreWrittenAsLowerOneEighthBlock) {
  const Tokenizer tok = Tokenizer::from_vocabulary(
      make_spm({.pieces = {{"a", -1}, {"b", -1}, {"▁", -2}, {"▁b", -1}}}));
  const int32_t a = kFirstPiece, space = kFirstPiece + 2, space_b = kFirstPiece + 3;
  EXPECT_EQ(tok.encode("a b", false, false), (std::vector<int32_t>{a, space_b}));
  EXPECT_EQ(tok.encode("a  b", false, false), (std::vector<int32_t>{a, space, space_b}));
  EXPECT_EQ(tok.token_to_piece(space_b), " b");
  EXPECT_EQ(tok.decode(tok.encode(" a  b ", false, false)), " a  b ");
  // A "▁" in the input is the same character as an escaped space.
  EXPECT_EQ(tok.encode("a▁b", false, false), tok.encode("a b", false, false));
}

TEST(Spm, TheSpacePrefixGoesBeforeTheTextAndAfterEachSpecialToken) {
  const Tokenizer tok = Tokenizer::from_vocabulary(
      make_spm({.pieces = {{"a", -1}, {"▁", -2}, {"▁a", -1}},
                .specials = {{"<ctl>", TokenType::Control}, {"<ud>", TokenType::UserDefined}},
                .add_space_prefix = true}));
  const int32_t a = kFirstPiece, space = kFirstPiece + 1, space_a = kFirstPiece + 2;
  const int32_t ctl = kFirstPiece + 3, ud = kFirstPiece + 4;
  EXPECT_EQ(tok.encode("a", false, false), (std::vector<int32_t>{space_a}));
  EXPECT_EQ(tok.encode("aa", false, false), (std::vector<int32_t>{space_a, a}));
  EXPECT_EQ(tok.encode("a<ctl>a", false, true), (std::vector<int32_t>{space_a, ctl, space_a}));
  EXPECT_EQ(tok.encode("a<ud>a", false, false), (std::vector<int32_t>{space_a, ud, space_a}));
  EXPECT_EQ(tok.encode("", false, false), (std::vector<int32_t>{}));
  EXPECT_EQ(tok.encode(" ", false, false), (std::vector<int32_t>{space, space}));
  // Decoding drops the space the encoder added, from the first token only.
  EXPECT_EQ(tok.decode(tok.encode("a a", false, false)), "a a");
  EXPECT_EQ(tok.decode(std::vector<int32_t>{space_a, space_a}), "a a");
  // ... and only when the first token is where the text starts (after BOS it stays, as in
  // llama_detokenize).
  EXPECT_EQ(tok.decode(std::vector<int32_t>{1, space_a}), " a");
  EXPECT_EQ(tok.decode(std::vector<int32_t>{1, space_a}, true), "<s> a");

  const Tokenizer off = Tokenizer::from_vocabulary(
      make_spm({.pieces = {{"a", -1}, {"▁", -2}, {"▁a", -1}}, .add_space_prefix = false}));
  EXPECT_EQ(off.encode("a", false, false), (std::vector<int32_t>{a}));
  EXPECT_EQ(off.decode(std::vector<int32_t>{space_a}), " a");
}

TEST(Spm, TheSpacePrefixIsOnWhenTheMetadataDoesNotSay) {
  const Tokenizer tok = Tokenizer::from_vocabulary(
      make_spm({.pieces = {{"a", -1}, {"▁a", -1}}, .add_space_prefix = std::nullopt}));
  EXPECT_EQ(tok.encode("a", false, false), (std::vector<int32_t>{kFirstPiece + 1}));
}

TEST(Spm, ControlTokensAreRecognisedOnlyWhenAskedUserDefinedAlways) {
  const Tokenizer tok = Tokenizer::from_vocabulary(
      make_spm({.pieces = {{"<", -1}, {">", -1}, {"x", -1}},
                .specials = {{"<x>", TokenType::Control}, {"<ud>", TokenType::UserDefined}}}));
  const int32_t lt = kFirstPiece, gt = kFirstPiece + 1, x = kFirstPiece + 2;
  const int32_t ctl = kFirstPiece + 3, ud = kFirstPiece + 4;
  EXPECT_EQ(tok.encode("<x>", false, true), (std::vector<int32_t>{ctl}));
  EXPECT_EQ(tok.encode("<x>", false, false), (std::vector<int32_t>{lt, x, gt}));
  EXPECT_EQ(tok.encode("x<ud>", false, false), (std::vector<int32_t>{x, ud}));
  // Control tokens print only when asked; user-defined ones always.
  EXPECT_EQ(tok.decode(std::vector<int32_t>{ctl, ud, x}), "<ud>x");
  EXPECT_EQ(tok.decode(std::vector<int32_t>{ctl, ud, x}, true), "<x><ud>x");
  EXPECT_TRUE(tok.is_control(ctl));
  EXPECT_FALSE(tok.is_control(ud));
}

TEST(Spm, BosAndEosFollowTheMetadata) {
  VocabularyData data = make_spm({.pieces = {{"a", -1}}});
  data.add_bos = true;
  data.add_eos = true;
  const Tokenizer tok = Tokenizer::from_vocabulary(data);
  EXPECT_TRUE(tok.add_bos());
  EXPECT_EQ(tok.encode("a", true, false), (std::vector<int32_t>{1, kFirstPiece, 2}));
  EXPECT_EQ(tok.encode("a", false, false), (std::vector<int32_t>{kFirstPiece}));
  EXPECT_EQ(tok.encode("", true, false), (std::vector<int32_t>{1, 2}));
  EXPECT_TRUE(tok.is_eog(2));

  VocabularyData unset = make_spm({.pieces = {{"a", -1}}});
  unset.add_bos.reset();  // SentencePiece vocabularies add BOS unless told otherwise
  EXPECT_TRUE(Tokenizer::from_vocabulary(unset).add_bos());

  VocabularyData no_bos = make_spm({.pieces = {{"a", -1}}});
  no_bos.add_bos = true;
  no_bos.bos = -1;
  EXPECT_NE(error_of([&] { Tokenizer::from_vocabulary(no_bos); }).find("BOS"), std::string::npos);
}

TEST(Spm, StreamingHoldsBackAnIncompleteByteSequence) {
  const Tokenizer tok = Tokenizer::from_vocabulary(make_spm({.pieces = {{"a", -1}}}));
  const auto ids = tok.encode("a€", false, false);  // a, <0xE2>, <0x82>, <0xAC>
  ASSERT_EQ(ids.size(), 4u);
  TokenStreamDecoder dec(tok);
  EXPECT_EQ(dec.push(ids[0]), "a");
  EXPECT_EQ(dec.push(ids[1]), "");
  EXPECT_EQ(dec.push(ids[2]), "");
  EXPECT_EQ(dec.push(ids[3]), "€");
  EXPECT_EQ(dec.push(byte_id(0xE2)), "");
  EXPECT_EQ(dec.flush(), "\xEF\xBF\xBD");  // cut off: U+FFFD
}

TEST(Spm, ScoresOfTheWrongLengthAreRejected) {
  VocabularyData data = make_spm({.pieces = {{"a", -1}}});
  data.scores.resize(5);
  EXPECT_NE(error_of([&] { Tokenizer::from_vocabulary(data); }).find("scores has 5 entries"),
            std::string::npos);
  data.scores.clear();  // no scores at all: every token scores 0
  EXPECT_EQ(Tokenizer::from_vocabulary(data).encode("a", false, false),
            (std::vector<int32_t>{kFirstPiece}));
}

}  // namespace
}  // namespace edgelm::test
