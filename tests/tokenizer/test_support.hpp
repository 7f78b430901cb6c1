// Shared helpers for the tokenizer tests: the SmolLM2 and Gemma 3 models and their llama.cpp
// fixtures, and small hand-made byte-level vocabularies.
#pragma once
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "edgelm/error.hpp"
#include "edgelm/gguf.hpp"
#include "edgelm/tokenizer.hpp"
#include "tokenizer/byte_level.hpp"
#include "support/test_models.hpp"

namespace edgelm::test {

inline std::filesystem::path smollm2_path() {
  return std::filesystem::path(model_dir()) / "SmolLM2-135M-Instruct.Q4_1.gguf";
}

inline std::string missing_model_message() {
  return smollm2_path().string() + " not found: run scripts/fetch-models.sh " +
         fetch_name(smollm2_path().filename().string());
}

// The model's vocabulary as plain data, read once; nullptr if the model is missing.
inline const VocabularyData* smollm2_vocabulary() {
  static const std::unique_ptr<VocabularyData> data = []() -> std::unique_ptr<VocabularyData> {
    if (!std::filesystem::exists(smollm2_path())) return nullptr;
    const auto file = gguf::File::open(smollm2_path().string());
    return std::make_unique<VocabularyData>(VocabularyData::from_gguf(file));
  }();
  return data.get();
}

inline const Tokenizer* smollm2_tokenizer() {
  static const std::unique_ptr<Tokenizer> tok = []() -> std::unique_ptr<Tokenizer> {
    const VocabularyData* data = smollm2_vocabulary();
    if (data == nullptr) return nullptr;
    return std::make_unique<Tokenizer>(Tokenizer::from_vocabulary(*data));
  }();
  return tok.get();
}

// Fails the current test (rather than skipping it: CI fetches the model) when it is missing.
#define EDGELM_REQUIRE_SMOLLM2(tok)                                     \
  const ::edgelm::Tokenizer* tok = ::edgelm::test::smollm2_tokenizer(); \
  ASSERT_NE(tok, nullptr) << ::edgelm::test::missing_model_message()

inline std::filesystem::path gemma3_path() { return std::filesystem::path(model_dir()) / "gemma-3-270m-q4_k_m.gguf"; }

// Gemma 3 270M's SentencePiece-style vocabulary (262,144 tokens), read once; nullptr if the
// model is missing. The vocabulary is not committed as a fixture: it is big and under Gemma's
// terms, so the tests read it from the model that scripts/fetch-models.sh gemma3 installs.
inline const VocabularyData* gemma3_vocabulary() {
  static const std::unique_ptr<VocabularyData> data = []() -> std::unique_ptr<VocabularyData> {
    if (!std::filesystem::exists(gemma3_path())) return nullptr;
    const auto file = gguf::File::open(gemma3_path().string());
    return std::make_unique<VocabularyData>(VocabularyData::from_gguf(file));
  }();
  return data.get();
}

inline const Tokenizer* gemma3_tokenizer() {
  static const std::unique_ptr<Tokenizer> tok = []() -> std::unique_ptr<Tokenizer> {
    const VocabularyData* data = gemma3_vocabulary();
    if (data == nullptr) return nullptr;
    return std::make_unique<Tokenizer>(Tokenizer::from_vocabulary(*data));
  }();
  return tok.get();
}

// Fails the current test (rather than skipping it: scripts/test.sh fetches the model).
#define EDGELM_REQUIRE_GEMMA3(tok)                                     \
  const ::edgelm::Tokenizer* tok = ::edgelm::test::gemma3_tokenizer(); \
  ASSERT_NE(tok, nullptr) << ::edgelm::test::gemma3_path().string()    \
                          << " not found: run scripts/fetch-models.sh "          \
                          << ::edgelm::test::fetch_name(::edgelm::test::gemma3_path().filename().string())

inline const nlohmann::json& fixture(const std::string& name) {
  static std::map<std::string, nlohmann::json> cache;
  auto it = cache.find(name);
  if (it == cache.end()) {
    const auto path = std::filesystem::path(EDGELM_SOURCE_DIR) / "tests/fixtures/tokenizer" / name;
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open fixture " + path.string());
    it = cache.emplace(name, nlohmann::json::parse(in)).first;
  }
  return it->second;
}

inline std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  }
  return out;
}

// A fixture string stored readable under `field` or as hex under `field_hex`.
inline std::string fixture_text(const nlohmann::json& c, const std::string& field) {
  if (c.contains(field)) return c[field].get<std::string>();
  return from_hex(c.at(field + "_hex").get<std::string>());
}

inline std::string printable(const std::string& s) {
  std::ostringstream out;
  for (unsigned char c : s) {
    if (c == '\n')
      out << "\\n";
    else if (c == '\t')
      out << "\\t";
    else if (c == '\r')
      out << "\\r";
    else if (c < 0x20 || c == 0x7F)
      out << "\\x" << std::hex << int(c) << std::dec;
    else
      out << c;
  }
  return out.str();
}

inline std::string ids_string(const std::vector<int32_t>& ids) {
  std::ostringstream out;
  out << '[';
  for (size_t i = 0; i < ids.size(); ++i) out << (i ? ", " : "") << ids[i];
  out << ']';
  return out.str();
}

// A byte-level vocabulary: ids 0..255 are the single-byte tokens (id == byte value), followed by
// `extra` tokens given as raw text (mapped to byte-level characters), then the `specials` with
// their types. Merges are given as pairs of raw texts.
struct TinyVocab {
  std::vector<std::string> extra = {};
  std::vector<std::pair<std::string, std::string>> merges = {};
  std::vector<std::pair<std::string, TokenType>> specials = {};
  std::string pre = "gpt-2";
};

inline VocabularyData make_vocabulary(const TinyVocab& spec) {
  const tokenizer::ByteLevelAlphabet alphabet;
  VocabularyData d;
  d.pre = spec.pre;
  for (int b = 0; b < 256; ++b) d.tokens.emplace_back(alphabet.symbol(static_cast<uint8_t>(b)));
  for (const auto& t : spec.extra) d.tokens.push_back(alphabet.encode(t));
  d.token_types.assign(d.tokens.size(), static_cast<int32_t>(TokenType::Normal));
  for (const auto& [text, type] : spec.specials) {
    d.tokens.push_back(text);
    d.token_types.push_back(static_cast<int32_t>(type));
  }
  for (const auto& [l, r] : spec.merges) {
    d.merges.push_back(alphabet.encode(l) + " " + alphabet.encode(r));
  }
  return d;
}

// Every token's piece (plain and with specials rendered) equals llama.cpp's `pieces` fixture.
inline void expect_pieces_match(const Tokenizer& tok, const nlohmann::json& pieces) {
  ASSERT_GT(pieces.size(), 1000u);
  for (const auto& [id_text, piece] : pieces.items()) {
    const int32_t id = std::stoi(id_text);
    ASSERT_EQ(tok.token_to_piece(id, false), from_hex(piece.at("plain_hex"))) << "id " << id;
    ASSERT_EQ(tok.token_to_piece(id, true), from_hex(piece.at("special_hex"))) << "id " << id;
  }
}

// Vocabulary size, BOS/EOS, add_bos and the end-of-generation and control token ids equal
// llama.cpp's `vocab` fixture.
inline void expect_vocabulary_facts_match(const Tokenizer& tok, const nlohmann::json& v) {
  EXPECT_EQ(tok.n_vocab(), v.at("n_vocab").get<int32_t>());
  EXPECT_EQ(tok.bos(), v.at("bos").get<int32_t>());
  EXPECT_EQ(tok.eos(), v.at("eos").get<int32_t>());
  EXPECT_EQ(tok.add_bos(), v.at("add_bos").get<bool>());
  std::vector<int32_t> eog, control;
  for (int32_t id = 0; id < tok.n_vocab(); ++id) {
    if (tok.is_eog(id)) eog.push_back(id);
    if (tok.is_control(id)) control.push_back(id);
  }
  EXPECT_EQ(eog, v.at("eog_ids").get<std::vector<int32_t>>());
  EXPECT_EQ(control, v.at("control_ids").get<std::vector<int32_t>>());
}

}  // namespace edgelm::test
