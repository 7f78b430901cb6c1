// SentencePiece-style vocabularies (`tokenizer.ggml.model = llama`: Gemma, Llama 2, Phi-3,
// Mistral): spaces written as "▁" (U+2581), text split into UTF-8 characters, then the adjacent
// pair whose concatenation is the vocabulary entry with the highest score merged first (the
// leftmost on a tie), as llama.cpp's SPM tokenizer does. What is left and is not a token falls
// back to byte tokens (<0xNN>).
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/vocabulary.hpp"

namespace edgelm::tokenizer {

inline constexpr std::string_view kSpmSpace = "\xE2\x96\x81";  // "▁"

// " " -> "▁" (appended to `out`).
void escape_spm_spaces(std::string_view text, std::string& out);
// "▁" -> " ".
std::string unescape_spm_spaces(std::string_view text);

class SpmModel {
 public:
  // `scores` is empty (all 0) or holds one score per token. `unk` (-1 if none) stands in for a
  // byte that has no byte token.
  SpmModel(const Vocabulary& vocab, std::vector<float> scores, int32_t unk);

  float score(int32_t id) const { return scores_.empty() ? 0.0f : scores_[id]; }
  // The token for one byte: "<0xNN>", else the byte itself as a token text, else `unk`; -1 if
  // none of those exist.
  int32_t byte_token(uint8_t byte) const { return byte_tokens_[byte]; }

 private:
  const Vocabulary& vocab_;
  std::vector<float> scores_;
  std::array<int32_t, 256> byte_tokens_;
};

class SpmEncoder {
 public:
  SpmEncoder(const Vocabulary& vocab, const SpmModel& model) : vocab_(vocab), model_(model) {}

  // Appends the ids for `text`, whose spaces are already escaped. Throws edgelm::Error when a
  // byte has neither a byte token nor an unknown token to stand for it.
  void encode(std::string_view text, std::vector<int32_t>& out);

 private:
  struct Symbol {
    uint32_t begin;
    uint32_t size;  // 0 once merged into its left neighbour
    int32_t prev;
    int32_t next;
  };
  struct Candidate {
    float score;
    int32_t left;
    int32_t right;
    uint32_t size;  // bytes of both halves when queued: a stale pair no longer adds up to it
  };

  void queue_pair(std::string_view text, int32_t left, int32_t right);
  void emit(std::string_view piece, std::vector<int32_t>& out) const;

  const Vocabulary& vocab_;
  const SpmModel& model_;
  std::vector<Symbol> symbols_;
  std::vector<Candidate> queue_;  // a binary heap: highest score, then leftmost, on top
};

}  // namespace edgelm::tokenizer
