// Bad ids and inconsistent vocabularies give edgelm::Error with a useful message.
#include "edgelm/error.hpp"
#include "tokenizer/test_support.hpp"

namespace edgelm::test {
namespace {

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.message();
  }
  return "(no error)";
}

TEST(BadInput, IdsOutsideTheVocabularyAreErrors) {
  const auto tok = Tokenizer::from_vocabulary(make_vocabulary({}));
  const int32_t n = tok.n_vocab();
  EXPECT_THROW(tok.token_to_piece(-1), Error);
  EXPECT_THROW(tok.token_to_piece(n), Error);
  EXPECT_THROW(tok.text(n + 100), Error);
  const std::vector<int32_t> ids{'a', n};
  EXPECT_NE(error_of([&] { tok.decode(ids); }).find("token id 256 is outside the vocabulary"),
            std::string::npos);
  EXPECT_FALSE(tok.is_eog(-1));
  EXPECT_FALSE(tok.is_eog(n));
  EXPECT_FALSE(tok.is_control(n));
  EXPECT_EQ(tok.find("no such token"), std::nullopt);
}

TEST(BadInput, UnknownPreTokenizerIsNamed) {
  VocabularyData data = make_vocabulary({});
  data.pre = "my-new-model";
  const std::string msg = error_of([&] { Tokenizer::from_vocabulary(data); });
  EXPECT_NE(msg.find("unknown pre-tokenizer 'my-new-model'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("smollm"), std::string::npos) << msg;  // lists the known ones
}

TEST(BadInput, InconsistentVocabulariesAreRejected) {
  VocabularyData wordpiece = make_vocabulary({});
  wordpiece.model = "bert";
  EXPECT_NE(
      error_of([&] { Tokenizer::from_vocabulary(wordpiece); }).find("'bert' is not supported"),
      std::string::npos);

  VocabularyData short_types = make_vocabulary({});
  short_types.token_types.resize(10);
  EXPECT_NE(error_of([&] { Tokenizer::from_vocabulary(short_types); }).find("token_type has 10"),
            std::string::npos);

  VocabularyData empty;
  EXPECT_NE(error_of([&] { Tokenizer::from_vocabulary(empty); }).find("no tokens"),
            std::string::npos);

  VocabularyData no_bos = make_vocabulary({});
  no_bos.add_bos = true;
  EXPECT_NE(error_of([&] { Tokenizer::from_vocabulary(no_bos); }).find("BOS"), std::string::npos);
}

TEST(BadInput, OutOfRangeSpecialIdsCountAsAbsent) {
  VocabularyData data = make_vocabulary({});
  data.bos = 1 << 30;
  data.eos = -7;
  const auto tok = Tokenizer::from_vocabulary(data);
  EXPECT_EQ(tok.bos(), -1);
  EXPECT_EQ(tok.eos(), -1);
}

TEST(BadInput, InvalidUtf8IsTokenizedNotRejected) {
  const auto tok = Tokenizer::from_vocabulary(make_vocabulary({}));
  // Each byte that does not start a sequence becomes U+FFFD, as in llama.cpp; values above
  // U+10FFFF (where llama.cpp aborts) too.
  const std::vector<int32_t> fffd{0xEF, 0xBF, 0xBD};
  EXPECT_EQ(tok.encode("\x80", false, false), fffd);
  std::vector<int32_t> four;
  for (int i = 0; i < 4; ++i) four.insert(four.end(), fffd.begin(), fffd.end());
  EXPECT_EQ(tok.encode("\xF4\x90\x80\x80", false, false), four);
}

}  // namespace
}  // namespace edgelm::test
