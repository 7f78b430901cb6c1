// Splits text into the words that BPE merges within, applying the family's patterns in turn.
#pragma once
#include <string_view>
#include <vector>

#include "tokenizer/pretokenizer_config.hpp"
#include "tokenizer/unicode_regex.hpp"

namespace edgelm::tokenizer {

class PreTokenizer {
 public:
  explicit PreTokenizer(const PreTokenizerConfig& config);

  // Word boundaries in `subject` (valid UTF-8), covering it without gaps, in order.
  std::vector<Span> split(std::string_view subject) const;

 private:
  std::vector<UnicodeRegex> patterns_;
};

}  // namespace edgelm::tokenizer
