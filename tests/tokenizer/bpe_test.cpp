// BPE merging and the byte-level alphabet on small hand-made vocabularies.
#include "tokenizer/test_support.hpp"

namespace edgelm::test {
namespace {

using Ids = std::vector<int32_t>;

int32_t id_of(const Tokenizer& tok, const std::string& raw) {
  const auto id = tok.find(tokenizer::ByteLevelAlphabet().encode(raw));
  EXPECT_TRUE(id.has_value()) << raw;
  return id.value_or(-1);
}

TEST(ByteLevelAlphabet, MapsEveryByteToItsOwnPrintableCharacter) {
  const tokenizer::ByteLevelAlphabet alphabet;
  EXPECT_EQ(alphabet.symbol(' '), "Ġ");
  EXPECT_EQ(alphabet.symbol('\n'), "Ċ");
  EXPECT_EQ(alphabet.symbol('\t'), "ĉ");
  EXPECT_EQ(alphabet.symbol('a'), "a");
  EXPECT_EQ(alphabet.symbol(0xAD), "Ń");  // soft hyphen: the last shifted byte
  EXPECT_EQ(alphabet.symbol(0xE9), "é");
  std::set<std::string_view> distinct;
  for (int b = 0; b < 256; ++b) {
    const std::string raw(1, static_cast<char>(b));
    distinct.insert(alphabet.symbol(static_cast<uint8_t>(b)));
    EXPECT_EQ(alphabet.decode(alphabet.encode(raw)), raw) << b;
  }
  EXPECT_EQ(distinct.size(), 256u);
  EXPECT_EQ(alphabet.decode("<|im_start|>"), "<|im_start|>");
  EXPECT_EQ(alphabet.decode("日本"), std::nullopt);  // not byte-level characters
}

TEST(Bpe, MergesTheLowestRankFirst) {
  TinyVocab spec{.extra = {"ab", "bc", "abc"}, .merges = {{"b", "c"}, {"a", "b"}, {"a", "bc"}}};
  const auto tok = Tokenizer::from_vocabulary(make_vocabulary(spec));
  EXPECT_EQ(tok.encode("abc", false, false), Ids{id_of(tok, "abc")});  // b+c, then a+bc

  spec.merges = {{"a", "b"}, {"b", "c"}};  // a+b wins now, and ab+c is not a merge
  const auto tok2 = Tokenizer::from_vocabulary(make_vocabulary(spec));
  EXPECT_EQ(tok2.encode("abc", false, false), (Ids{id_of(tok2, "ab"), 'c'}));
}

TEST(Bpe, TiesGoToTheLeftmostPair) {
  const TinyVocab spec{.extra = {"aa"}, .merges = {{"a", "a"}}};
  const auto tok = Tokenizer::from_vocabulary(make_vocabulary(spec));
  const int32_t aa = id_of(tok, "aa");
  EXPECT_EQ(tok.encode("aaa", false, false), (Ids{aa, 'a'}));
  EXPECT_EQ(tok.encode("aaaa", false, false), (Ids{aa, aa}));
  EXPECT_EQ(tok.encode("aaaaa", false, false), (Ids{aa, aa, 'a'}));
}

TEST(Bpe, NeverMergesAcrossPreTokenizerWords) {
  const TinyVocab spec{.extra = {"a ", " b"}, .merges = {{"a", " "}, {" ", "b"}}};
  const auto tok = Tokenizer::from_vocabulary(make_vocabulary(spec));
  EXPECT_EQ(tok.encode("a b", false, false), (Ids{'a', id_of(tok, " b")}));
}

TEST(Bpe, Llama3TakesWholeWordsFromTheVocabularyWithoutMerging) {
  TinyVocab spec{.extra = {"abc"}, .merges = {}, .specials = {}, .pre = "llama-bpe"};
  VocabularyData data = make_vocabulary(spec);
  data.add_bos = false;
  EXPECT_EQ(Tokenizer::from_vocabulary(data).encode("abc", false, false), Ids{256});
  data.pre = "gpt-2";
  EXPECT_EQ(Tokenizer::from_vocabulary(data).encode("abc", false, false), (Ids{'a', 'b', 'c'}));
}

TEST(Bpe, AMergeOutsideTheVocabularyFallsBackLikeLlamaCpp) {
  // "xy" and " x" are merges but not tokens. llama.cpp then looks up each char of the
  // byte-level text on its own: 'x' and 'y' exist, the two bytes of 'Ġ' (' ') do not.
  const TinyVocab spec{.extra = {}, .merges = {{"x", "y"}, {" ", "x"}}};
  const auto tok = Tokenizer::from_vocabulary(make_vocabulary(spec));
  EXPECT_EQ(tok.encode("xy", false, false), (Ids{'x', 'y'}));
  EXPECT_EQ(tok.encode(" x", false, false), Ids{'x'});
}

TEST(Bpe, NumbersAreSplitPerDigitForSmollm) {
  TinyVocab spec{.extra = {"12", " 1"}, .merges = {{" ", "1"}, {"1", "2"}}};
  spec.pre = "smollm";
  const auto smollm = Tokenizer::from_vocabulary(make_vocabulary(spec));
  EXPECT_EQ(smollm.encode(" 12", false, false), (Ids{' ', '1', '2'}));
  spec.pre = "gpt-2";
  const auto gpt2 = Tokenizer::from_vocabulary(make_vocabulary(spec));
  EXPECT_EQ(gpt2.encode(" 12", false, false), (Ids{id_of(gpt2, " 1"), '2'}));
}

}  // namespace
}  // namespace edgelm::test
