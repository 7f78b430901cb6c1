// decode(encode(s)) == s, and streaming decode, over the oracle corpus.
#include "tokenizer/test_support.hpp"
#include "tokenizer/utf8.hpp"

namespace edgelm::test {
namespace {

bool valid_utf8(const std::string& s) {
  for (size_t pos = 0; pos < s.size();) {
    const auto scan = tokenizer::scan_utf8(s, pos);
    if (scan.status != tokenizer::Utf8Status::Complete) return false;
    pos += scan.length;
  }
  return true;
}

std::vector<std::string> corpus_strings() {
  std::vector<std::string> out;
  for (const auto& c : fixture("smollm2.json").at("cases")) {
    if (!c.at("add_special").get<bool>() && !c.at("parse_special").get<bool>()) {
      out.push_back(fixture_text(c, "text"));
    }
  }
  return out;
}

TEST(RoundTrip, DecodeOfEncodeGivesTheTextBack) {
  EDGELM_REQUIRE_SMOLLM2(tok);
  size_t checked = 0;
  for (const std::string& s : corpus_strings()) {
    if (!valid_utf8(s)) continue;
    EXPECT_EQ(tok->decode(tok->encode(s, false, false), false), s) << printable(s);
    EXPECT_EQ(tok->decode(tok->encode(s, false, true), true), s) << printable(s);
    ++checked;
  }
  EXPECT_GE(checked, 200u);
}

TEST(RoundTrip, StreamingGivesTheSameTextInValidPieces) {
  EDGELM_REQUIRE_SMOLLM2(tok);
  for (const std::string& s : corpus_strings()) {
    if (!valid_utf8(s)) continue;
    TokenStreamDecoder stream(*tok);
    std::string joined;
    for (int32_t id : tok->encode(s, false, false)) {
      const std::string piece = stream.push(id);
      ASSERT_TRUE(valid_utf8(piece)) << printable(s);
      joined += piece;
    }
    EXPECT_EQ(stream.flush(), "");
    EXPECT_EQ(joined, s) << printable(s);
  }
}

TEST(RoundTrip, StreamingHoldsBackSplitCharacters) {
  EDGELM_REQUIRE_SMOLLM2(tok);
  // SmolLM2 has no token for these emoji, so each is split into byte tokens.
  const std::string text = "ok 🫠👩🏽‍💻 漢";
  const auto ids = tok->encode(text, false, false);
  size_t split_characters = 0;
  TokenStreamDecoder stream(*tok);
  std::string joined;
  for (int32_t id : ids) {
    const std::string raw = tok->token_to_piece(id);
    const std::string out = stream.push(id);
    if (!valid_utf8(raw)) ++split_characters;
    EXPECT_TRUE(valid_utf8(out));
    joined += out;
  }
  EXPECT_GT(split_characters, 0u) << "the test text no longer exercises split characters";
  EXPECT_EQ(joined, text);
}

}  // namespace
}  // namespace edgelm::test
