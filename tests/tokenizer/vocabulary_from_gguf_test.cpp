// VocabularyData::from_gguf on small GGUF files written for the test.
#include <unistd.h>

#include "edgelm/error.hpp"
#include "tokenizer/test_support.hpp"

namespace edgelm::test {
namespace {

class TempGguf {
 public:
  explicit TempGguf(const gguf::Writer& w)
      : path_(std::filesystem::temp_directory_path() /
              ("edgelm-tokenizer-test-" + std::to_string(::getpid()) + "-" +
               std::to_string(counter_++) + ".gguf")) {
    w.write(path_.string());
  }
  ~TempGguf() { std::filesystem::remove(path_); }
  gguf::File open() const { return gguf::File::open(path_.string()); }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

void set_tokenizer_metadata(gguf::Writer& w, const VocabularyData& d) {
  w.set_string("general.architecture", "llama");
  w.set_string("tokenizer.ggml.model", d.model);
  w.set_string("tokenizer.ggml.pre", d.pre);
  w.set_string_array("tokenizer.ggml.tokens", d.tokens);
  w.set_i32_array("tokenizer.ggml.token_type", d.token_types);
  w.set_string_array("tokenizer.ggml.merges", d.merges);
}

TEST(VocabularyFromGguf, ReadsEveryTokenizerKey) {
  const VocabularyData spec = make_vocabulary(
      TinyVocab{.extra = {"ab"},
                .merges = {{"a", "b"}},
                .specials = {{"<s>", TokenType::Control}, {"</s>", TokenType::Control}}});
  gguf::Writer w;
  set_tokenizer_metadata(w, spec);
  w.set_u32("tokenizer.ggml.bos_token_id", 257);
  w.set_u32("tokenizer.ggml.eos_token_id", 258);
  w.set_u32("tokenizer.ggml.eot_token_id", 258);
  w.set_u32("tokenizer.ggml.fim_pre_token_id", 1);
  w.set_u32("tokenizer.ggml.prefix_token_id", 2);  // the older key wins, as in llama.cpp
  w.set_bool("tokenizer.ggml.add_bos_token", true);
  const TempGguf file(w);

  const VocabularyData d = VocabularyData::from_gguf(file.open());
  EXPECT_EQ(d.model, "gpt2");
  EXPECT_EQ(d.pre, "gpt-2");
  EXPECT_EQ(d.tokens, spec.tokens);
  EXPECT_EQ(d.token_types, spec.token_types);
  EXPECT_EQ(d.merges, spec.merges);
  EXPECT_EQ(d.bos, 257);
  EXPECT_EQ(d.eos, 258);
  EXPECT_EQ(d.eot, 258);
  EXPECT_EQ(d.eom, -1);
  EXPECT_EQ(d.fim_pre, 2);
  EXPECT_EQ(d.add_bos, std::optional<bool>(true));
  EXPECT_EQ(d.add_eos, std::nullopt);

  const Tokenizer tok = Tokenizer::from_gguf(file.open());
  EXPECT_EQ(tok.encode("ab", true, false), (std::vector<int32_t>{257, 256}));
  EXPECT_TRUE(tok.is_eog(258));
}

TEST(VocabularyFromGguf, ReadsASentencePieceVocabulary) {
  gguf::Writer w;
  w.set_string("general.architecture", "gemma3");
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_string("tokenizer.ggml.pre", "default");
  w.set_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a", "b", "ab", "▁a"});
  w.set_f32_array("tokenizer.ggml.scores", {0, 0, 0, -1, -1, -2, -1});
  w.set_i32_array("tokenizer.ggml.token_type", {2, 3, 3, 1, 1, 1, 1});
  w.set_bool("tokenizer.ggml.add_space_prefix", false);
  const TempGguf file(w);

  const VocabularyData d = VocabularyData::from_gguf(file.open());
  EXPECT_EQ(d.model, "llama");
  EXPECT_EQ(d.scores, (std::vector<float>{0, 0, 0, -1, -1, -2, -1}));
  EXPECT_TRUE(d.merges.empty());  // SentencePiece vocabularies have none
  EXPECT_EQ(d.add_space_prefix, std::optional<bool>(false));
  // Absent ids get llama.cpp's SentencePiece defaults.
  EXPECT_EQ(d.bos, 1);
  EXPECT_EQ(d.eos, 2);
  EXPECT_EQ(d.unk, 0);

  const Tokenizer tok = Tokenizer::from_gguf(file.open());
  EXPECT_TRUE(tok.add_bos());  // the SentencePiece default
  EXPECT_EQ(tok.encode("ab a", true, false), (std::vector<int32_t>{1, 5, 6}));
  EXPECT_EQ(tok.decode(tok.encode("ab a", false, false)), "ab a");
}

TEST(VocabularyFromGguf, OutOfRangeSentencePieceIdsFallBackToTheDefaults) {
  gguf::Writer w;
  w.set_string("general.architecture", "llama");
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a"});
  w.set_u32("tokenizer.ggml.bos_token_id", 99);
  w.set_u32("tokenizer.ggml.eos_token_id", 3);
  const TempGguf file(w);
  const VocabularyData d = VocabularyData::from_gguf(file.open());
  EXPECT_EQ(d.bos, 1);  // as llama.cpp: a bad id keeps the default
  EXPECT_EQ(d.eos, 3);
  EXPECT_TRUE(d.scores.empty());
}

TEST(VocabularyFromGguf, UnsupportedTokenizerModelsAreNamed) {
  VocabularyData spec = make_vocabulary({});
  spec.model = "bert";
  gguf::Writer w;
  set_tokenizer_metadata(w, spec);
  const TempGguf file(w);
  try {
    VocabularyData::from_gguf(file.open());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("tokenizer model 'bert' is not supported"), std::string::npos)
        << e.message();
  }
}

TEST(VocabularyFromGguf, MissingTokensAreAnError) {
  gguf::Writer w;
  w.set_string("general.architecture", "llama");
  w.set_string("tokenizer.ggml.model", "gpt2");
  const TempGguf file(w);
  EXPECT_THROW(VocabularyData::from_gguf(file.open()), Error);
}

}  // namespace
}  // namespace edgelm::test
