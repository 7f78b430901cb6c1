// Token-for-token parity with llama.cpp on SmolLM2-135M-Instruct (fixtures written by
// tests/oracle/gen_tokenizer_fixtures.py).
#include <filesystem>

#include "tokenizer/test_support.hpp"

namespace edgelm::test {
namespace {

const nlohmann::json& smollm2_fixture() { return fixture("smollm2.json"); }

TEST(Smollm2Parity, FixtureCoversTheCorpus) {
  const auto& cases = smollm2_fixture().at("cases");
  size_t parse_on = 0, parse_off = 0;
  for (const auto& c : cases) (c.at("parse_special").get<bool>() ? parse_on : parse_off)++;
  EXPECT_GE(parse_off, 200u);
  EXPECT_GE(parse_on, 200u);
}

TEST(Smollm2Parity, EveryFixtureStringEncodesLikeLlamaCpp) {
  EDGELM_REQUIRE_SMOLLM2(tok);
  size_t matched = 0, total = 0;
  for (const auto& c : smollm2_fixture().at("cases")) {
    const std::string text = fixture_text(c, "text");
    const bool add_special = c.at("add_special").get<bool>();
    const bool parse_special = c.at("parse_special").get<bool>();
    const auto expected = c.at("ids").get<std::vector<int32_t>>();
    const auto got = tok->encode(text, add_special, parse_special);
    ++total;
    if (got == expected) {
      ++matched;
      continue;
    }
    ADD_FAILURE() << "text \"" << printable(text) << "\" add_special=" << add_special
                  << " parse_special=" << parse_special << "\n  llama.cpp: " << ids_string(expected)
                  << "\n  edgelm:    " << ids_string(got);
    break;  // the first mismatch is the useful one
  }
  EXPECT_EQ(matched, total);
}

TEST(Smollm2Parity, DecodeMatchesLlamaCppDetokenize) {
  EDGELM_REQUIRE_SMOLLM2(tok);
  for (const auto& c : smollm2_fixture().at("cases")) {
    const auto ids = c.at("ids").get<std::vector<int32_t>>();
    // The fixture leaves the detokenization out where it equals the input.
    const auto expected = [&](const std::string& field) {
      const bool present = c.contains(field) || c.contains(field + "_hex");
      return fixture_text(c, present ? field : "text");
    };
    ASSERT_EQ(tok->decode(ids, false), expected("detok")) << ids_string(ids);
    ASSERT_EQ(tok->decode(ids, true), expected("detok_special")) << ids_string(ids);
  }
}

TEST(Smollm2Parity, TokenPiecesMatchLlamaCpp) {
  EDGELM_REQUIRE_SMOLLM2(tok);
  expect_pieces_match(*tok, smollm2_fixture().at("pieces"));
}

TEST(Smollm2Parity, VocabularyFactsMatchLlamaCpp) {
  EDGELM_REQUIRE_SMOLLM2(tok);
  expect_vocabulary_facts_match(*tok, smollm2_fixture().at("vocab"));
  EXPECT_EQ(tok->find("<|im_start|>"), std::optional<int32_t>(1));
  EXPECT_EQ(tok->text(2), "<|im_end|>");
}

TEST(Smollm2Parity, FixtureWasMadeFromThisModelFile) {
  EDGELM_REQUIRE_SMOLLM2(tok);
  EXPECT_EQ(std::filesystem::file_size(smollm2_path()),
            smollm2_fixture().at("model_bytes").get<uint64_t>())
      << "the model in the cache differs from the one the fixtures were generated from ("
      << smollm2_fixture().at("model_sha256").get<std::string>() << ")";
}

}  // namespace
}  // namespace edgelm::test
