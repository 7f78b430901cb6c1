// Which split patterns a byte-level BPE vocabulary uses, by its `tokenizer.ggml.pre` name, and
// the per-family switches llama.cpp attaches to that name.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace edgelm::tokenizer {

struct PreTokenizerConfig {
  std::string family;  // e.g. "gpt2", "digits+gpt2", "llama3", "qwen2"
  // PCRE2 patterns applied one after another: each splits every piece the previous one left
  // (matches and the gaps between them both become pieces).
  std::vector<std::string> patterns;
  bool ignore_merges = false;  // a word that is itself a token is not merged (Llama 3)
  bool add_bos = false;        // default when tokenizer.ggml.add_bos_token is absent
};

// Throws edgelm::Error naming the supported names for one it does not know.
PreTokenizerConfig pre_tokenizer_config(std::string_view pre);

}  // namespace edgelm::tokenizer
