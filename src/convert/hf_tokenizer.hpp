// tokenizer.json + tokenizer_config.json <-> the tokenizer.ggml.* metadata llama.cpp reads.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "edgelm/gguf.hpp"

namespace edgelm::convert {

struct TokenizerSummary {
  std::string model;  // "gpt2" (byte-level BPE) or "llama" (SentencePiece-style)
  std::string pre;    // split patterns of a byte-level BPE ("" for SentencePiece)
};

// Reads dir/tokenizer.json, dir/tokenizer_config.json (and dir/chat_template.jinja when the
// template is kept there) and sets the vocabulary, merges or scores, token types, special ids,
// add_bos/add_eos and the chat template on `w`. Ids from n_tokens up to n_vocab (the embedding's
// rows) become unused "[PAD<id>]" tokens, as llama.cpp's converter writes them. `config` is
// config.json, whose bos/eos ids are the fallback.
TokenizerSummary write_tokenizer_metadata(const std::string& dir, const nlohmann::json& config, int n_vocab,
                                          gguf::Writer& w);

// The inverse for a byte-level BPE vocabulary: tokenizer.json and tokenizer_config.json in dir.
void export_tokenizer(const gguf::File& f, const std::string& dir, std::vector<std::string>& written);

// Writes text to path atomically.
void write_text_file(const std::string& path, const std::string& text);

}  // namespace edgelm::convert
