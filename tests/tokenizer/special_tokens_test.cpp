// Special tokens in text, end-of-generation rules and BOS/EOS, on hand-made vocabularies.
#include "tokenizer/test_support.hpp"

namespace edgelm::test {
namespace {

using Ids = std::vector<int32_t>;

Ids bytes_of(std::string_view s) {
  Ids ids;
  for (char c : s) ids.push_back(static_cast<uint8_t>(c));
  return ids;
}

TinyVocab chat_vocab() {
  return TinyVocab{.specials = {{"<|im_start|>", TokenType::Control},   // 256
                                {"<|im_end|>", TokenType::Normal},      // 257
                                {"<tool>", TokenType::UserDefined},     // 258
                                {"<|endoftext|>", TokenType::Control},  // 259
                                {"<reponame>", TokenType::Control},     // 260
                                {"<other>", TokenType::Control}}};      // 261
}

TEST(SpecialTokens, ParsedOnlyWhenAsked) {
  const auto tok = Tokenizer::from_vocabulary(make_vocabulary(chat_vocab()));
  EXPECT_EQ(tok.encode("<|im_start|>hi", false, true), (Ids{256, 'h', 'i'}));
  EXPECT_EQ(tok.encode("<|im_start|>hi", false, false), bytes_of("<|im_start|>hi"));
  EXPECT_EQ(tok.encode("a<|im_start|><|im_start|>b", false, true), (Ids{'a', 256, 256, 'b'}));
}

TEST(SpecialTokens, UserDefinedTokensAreAlwaysParsed) {
  const auto tok = Tokenizer::from_vocabulary(make_vocabulary(chat_vocab()));
  EXPECT_EQ(tok.encode("x<tool>y", false, false), (Ids{'x', 258, 'y'}));
  EXPECT_EQ(tok.token_to_piece(258, false), "<tool>");  // and always printed
}

TEST(SpecialTokens, ControlTokensPrintOnlyWithSpecial) {
  const auto tok = Tokenizer::from_vocabulary(make_vocabulary(chat_vocab()));
  EXPECT_EQ(tok.token_to_piece(256, false), "");
  EXPECT_EQ(tok.token_to_piece(256, true), "<|im_start|>");
  const Ids ids{256, 'h', 'i', 257};
  EXPECT_EQ(tok.decode(ids, false), "hi");
  EXPECT_EQ(tok.decode(ids, true), "<|im_start|>hi<|im_end|>");
}

TEST(SpecialTokens, LongerTokensAreCutOutFirst) {
  // As in llama.cpp, each special token (longest first) cuts the whole text before the next
  // one is looked for, so "bcd" wins over "ab" in "abcd" although "ab" starts earlier.
  const TinyVocab spec{.specials = {{"ab", TokenType::Control}, {"bcd", TokenType::Control}}};
  const auto tok = Tokenizer::from_vocabulary(make_vocabulary(spec));
  EXPECT_EQ(tok.encode("abcd", false, true), (Ids{'a', 257}));
  EXPECT_EQ(tok.encode("abab", false, true), (Ids{256, 256}));
}

TEST(SpecialTokens, EndOfGenerationFollowsLlamaCppNames) {
  VocabularyData data = make_vocabulary(chat_vocab());
  data.eos = 259;
  const auto tok = Tokenizer::from_vocabulary(data);
  EXPECT_TRUE(tok.is_eog(257));      // <|im_end|> by name, even typed as a normal token ...
  EXPECT_TRUE(tok.is_control(257));  // ... which it then becomes a control token
  EXPECT_EQ(tok.encode("<|im_end|>", false, true), Ids{257});
  EXPECT_TRUE(tok.is_eog(259));  // EOS
  EXPECT_TRUE(tok.is_eog(260));  // <reponame>: llama.cpp's FIM repo token ends generation
  EXPECT_FALSE(tok.is_eog(256));
  EXPECT_FALSE(tok.is_eog(261));
  EXPECT_FALSE(tok.is_eog('a'));
}

TEST(SpecialTokens, EndOfMessageIsNotEndOfTurnWhenReturnAndCallExist) {
  const TinyVocab spec{.specials = {{"<|end|>", TokenType::Control},
                                    {"<|return|>", TokenType::Control},
                                    {"<|call|>", TokenType::Control}}};
  const auto tok = Tokenizer::from_vocabulary(make_vocabulary(spec));
  EXPECT_FALSE(tok.is_eog(256));
  EXPECT_TRUE(tok.is_eog(257));
  EXPECT_TRUE(tok.is_eog(258));
  EXPECT_EQ(tok.encode("<|end|>", false, false), Ids{256});  // now a user-defined token

  const TinyVocab phi{.specials = {{"<|end|>", TokenType::Control}}};
  EXPECT_TRUE(Tokenizer::from_vocabulary(make_vocabulary(phi)).is_eog(256));
}

TEST(SpecialTokens, BosAndEosAreAddedAsTheMetadataSays) {
  VocabularyData data = make_vocabulary(chat_vocab());
  data.bos = 256;
  data.eos = 259;
  data.add_bos = true;
  data.add_eos = true;
  const auto tok = Tokenizer::from_vocabulary(data);
  EXPECT_TRUE(tok.add_bos());
  EXPECT_EQ(tok.encode("a", true, false), (Ids{256, 'a', 259}));
  EXPECT_EQ(tok.encode("", true, false), (Ids{256, 259}));
  EXPECT_EQ(tok.encode("a", false, false), Ids{'a'});

  data.add_bos = std::nullopt;  // absent: the gpt-2 family does not add one
  data.add_eos = false;
  EXPECT_EQ(Tokenizer::from_vocabulary(data).encode("a", true, false), Ids{'a'});
  data.pre = "llama-bpe";  // ... the Llama 3 family does
  EXPECT_EQ(Tokenizer::from_vocabulary(data).encode("a", true, false), (Ids{256, 'a'}));
}

TEST(SpecialTokens, EmptyTokenTextsNeverMatch) {
  TinyVocab spec{.specials = {{"", TokenType::Control}}};
  const auto tok = Tokenizer::from_vocabulary(make_vocabulary(spec));
  EXPECT_EQ(tok.text(256), "[EMPTY_256]");
  EXPECT_EQ(tok.encode("ab", false, true), (Ids{'a', 'b'}));
}

}  // namespace
}  // namespace edgelm::test
