// Token-for-token parity with llama.cpp on SmolLM2-135M-Instruct (fixtures written by
// tests/oracle/gen_tokenizer_fixtures.py).
#include <filesystem>

#include "tokenizer/test_support.hpp"
#include "tokenizer/utf8.hpp"

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

// SmolLM2's byte-level vocabulary has no token for 8 bytes that UTF-8 text can hold (the
// controls 0x04, 0x06, 0x13, 0x14, 0x16, 0x1D, and 0xF1 and 0xF2, lead bytes of U+40000..U+BFFFF). A character that needs one is encoded as U+FFFD:
// it shows as a replacement character instead of vanishing, and decode() never returns invalid
// UTF-8. Every other character round-trips.
TEST(Smollm2Parity, CharactersWithoutTokensBecomeReplacementCharacters) {
  EDGELM_REQUIRE_SMOLLM2(tok);
  const std::string replacement = "\xEF\xBF\xBD";
  EXPECT_EQ(tok->decode(tok->encode("a\x13" "b", false, false)), "a" + replacement + "b");
  std::string plane4;
  tokenizer::append_utf8(plane4, 0x40000);
  EXPECT_EQ(tok->decode(tok->encode("x" + plane4 + "y", false, false)), "x" + replacement + "y");
  size_t replaced = 0, total = 0;
  for (char32_t cp = 1; cp < 0x110000; cp += (cp < 0x800 ? 1 : 13)) {
    if (cp >= 0xD800 && cp < 0xE000) continue;
    std::string s;
    tokenizer::append_utf8(s, cp);
    const std::string back = tok->decode(tok->encode(s, false, false));
    ++total;
    if (back == s) continue;
    ASSERT_EQ(back, replacement) << "U+" << std::hex << static_cast<uint32_t>(cp);
    ++replaced;
  }
  EXPECT_GT(replaced, 0u);
  EXPECT_LT(replaced, total / 2);
}

TEST(Smollm2Parity, DecodeMatchesLlamaCppDetokenize) {
  EDGELM_REQUIRE_SMOLLM2(tok);
  for (const auto& c : smollm2_fixture().at("cases")) {
    const auto ids = c.at("ids").get<std::vector<int32_t>>();
    // The fixture leaves the detokenization out where it equals the input. llama_detokenize
    // returns raw bytes; decode() is that with ill-formed UTF-8 replaced by U+FFFD.
    const auto expected = [&](const std::string& field) {
      const bool present = c.contains(field) || c.contains(field + "_hex");
      return tokenizer::to_valid_utf8(fixture_text(c, present ? field : "text"));
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
