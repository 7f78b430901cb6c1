// Special tokens: which ids end generation, which tokens count as control tokens, and how text
// is cut around the special tokens written in it.
#pragma once
#include <cstdint>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "tokenizer/vocabulary.hpp"

namespace edgelm {
struct VocabularyData;
}

namespace edgelm::tokenizer {

// Applies llama.cpp's name-based rules (its llama-vocab.cpp, "auto-detect special tokens by
// text"): EOT/EOM/FIM tokens missing from the metadata are found by their text, tokens with an
// end-of-generation name become EOG, and every token so recognised is marked Control. Returns
// the end-of-generation ids; updates the attributes in `vocab`.
std::unordered_set<int32_t> resolve_special_tokens(const VocabularyData& data, Vocabulary& vocab);

// A piece of the input: plain text (offsets into it) or one special token.
struct Fragment {
  int32_t token = -1;  // -1: text
  size_t begin = 0;
  size_t end = 0;
};

class SpecialTokenSplitter {
 public:
  // Takes the tokens that are Control, UserDefined or Unknown after resolve_special_tokens.
  explicit SpecialTokenSplitter(const Vocabulary& vocab);

  // With parse_special false only user-defined tokens are cut out (llama.cpp and Hugging Face
  // both do this); control and unknown tokens stay text.
  std::vector<Fragment> split(std::string_view text, bool parse_special) const;

 private:
  struct Candidate {
    int32_t id;
    bool needs_parse_special;
  };
  const Vocabulary& vocab_;
  std::vector<Candidate> candidates_;  // longest text first
};

}  // namespace edgelm::tokenizer
