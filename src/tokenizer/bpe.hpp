// Byte-pair merging within one word: start from single bytes and repeatedly merge the adjacent
// pair with the lowest merge rank (the leftmost one on a tie) until no listed pair is left.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/byte_level.hpp"
#include "tokenizer/vocabulary.hpp"

namespace edgelm::tokenizer {

struct Merge {
  int32_t rank;
  int32_t result;  // token of the merged bytes, -1 if the vocabulary lacks it
};

// Merge ranks. Pairs of tokens are keyed by their two ids (the fast, usual case); a merge with a
// half that is not itself a token is keyed by the bytes of both halves.
class MergeTable {
 public:
  // `merges` as in tokenizer.ggml.merges: "left right" in byte-level characters, rank = index.
  // A merge whose halves are not byte-level text can never apply to a word and is left out; a
  // repeated pair keeps its first (lowest) rank.
  MergeTable(const std::vector<std::string>& merges, const Vocabulary& vocab,
             const ByteLevelAlphabet& alphabet);

  std::optional<Merge> find(int32_t left, int32_t right) const;
  // For halves that are not tokens; `key` is scratch space so that lookups do not allocate.
  std::optional<Merge> find(std::string_view left, std::string_view right, std::string& key) const;

 private:
  static uint64_t id_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }
  static void make_key(std::string_view left, std::string_view right, std::string& key);
  std::unordered_map<uint64_t, Merge> by_ids_;
  StringMap<Merge> by_bytes_;
};

class BpeEncoder {
 public:
  BpeEncoder(const Vocabulary& vocab, const MergeTable& merges, const ByteLevelAlphabet& alphabet,
             bool ignore_merges)
      : vocab_(vocab), merges_(merges), alphabet_(alphabet), ignore_merges_(ignore_merges) {}

  // Appends the ids for one pre-tokenized word given as raw bytes. A character with a byte that
  // has no token in the vocabulary (SmolLM2 lacks 21 of the 256, 8 of them
  // possible in UTF-8) is encoded as U+FFFD, so that
  // it shows as a replacement character instead of vanishing or leaving the rest of its bytes
  // behind as invalid UTF-8.
  void encode_word(std::string_view word, std::vector<int32_t>& out);

 private:
  struct Symbol {
    uint32_t begin;
    uint32_t size;  // 0 once merged into its left neighbour
    int32_t prev;
    int32_t next;
    int32_t token;  // -1 if these bytes are not a token
  };
  struct Candidate {
    int32_t rank;
    int32_t left;
    int32_t right;
    uint32_t left_size;  // sizes when queued: a pair whose halves changed since is stale
    uint32_t right_size;
    int32_t result;
  };

  void encode_word_known(std::string_view word, std::vector<int32_t>& out);  // every byte has a token
  void queue_pair(std::string_view word, int32_t left, int32_t right);
  void emit(std::string_view bytes, int32_t token, std::vector<int32_t>& out) const;

  const Vocabulary& vocab_;
  const MergeTable& merges_;
  const ByteLevelAlphabet& alphabet_;
  bool ignore_merges_;
  std::vector<Symbol> symbols_;
  std::vector<Candidate> queue_;  // a binary heap, lowest rank then leftmost on top
  std::string key_;
};

}  // namespace edgelm::tokenizer
