// The split patterns of other `tokenizer.ggml.pre` names, checked against llama.cpp by giving
// SmolLM2's vocabulary those names (tests/oracle/gen_tokenizer_fixtures.py does the same on its
// side with relabelled vocab-only GGUF copies).
#include "tokenizer/test_support.hpp"

namespace edgelm::test {
namespace {

TEST(PreTokenizerParity, EveryKnownFamilyMatchesLlamaCpp) {
  const VocabularyData* smollm2 = smollm2_vocabulary();
  ASSERT_NE(smollm2, nullptr) << missing_model_message();
  const auto& texts = fixture("smollm2_pretokenizers.json").at("texts");
  const auto& families = fixture("smollm2_pretokenizers.json").at("pre_tokenizers");
  ASSERT_GE(families.size(), 6u);
  for (const auto& [pre, all_ids] : families.items()) {
    VocabularyData data = *smollm2;
    data.pre = pre;
    const Tokenizer tok = Tokenizer::from_vocabulary(data);
    ASSERT_EQ(all_ids.size(), texts.size());
    for (size_t i = 0; i < texts.size(); ++i) {
      const std::string text = fixture_text(texts[i], "text");
      const auto expected = all_ids[i].get<std::vector<int32_t>>();
      const auto got = tok.encode(text, false, true);
      ASSERT_EQ(got, expected) << "pre '" << pre << "', text \"" << printable(text)
                               << "\"\n  llama.cpp: " << ids_string(expected)
                               << "\n  edgelm:    " << ids_string(got);
    }
  }
}

}  // namespace
}  // namespace edgelm::test
