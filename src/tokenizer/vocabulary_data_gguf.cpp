// Reads the tokenizer's inputs out of GGUF metadata (the keys llama.cpp's converter writes).
#include <limits>

#include "edgelm/error.hpp"
#include "edgelm/gguf.hpp"
#include "edgelm/tokenizer.hpp"

namespace edgelm {
namespace {

// -1 when absent or out of int32 range (later checked against the vocabulary size).
int32_t optional_id(const gguf::File& file, const char* key, int32_t fallback = -1) {
  if (!file.has(key)) return fallback;
  const int64_t v = file.get_i64(key);
  if (v < 0 || v > std::numeric_limits<int32_t>::max()) return -1;
  return static_cast<int32_t>(v);
}

std::optional<bool> optional_bool(const gguf::File& file, const char* key) {
  if (!file.has(key)) return std::nullopt;
  return file.get_bool(key);
}

}  // namespace

VocabularyData VocabularyData::from_gguf(const gguf::File& file) {
  VocabularyData d;
  d.model = file.get_string("tokenizer.ggml.model");
  const bool spm = d.model == "llama";
  if (d.model != "gpt2" && !spm) {
    throw Error(file.path() + ": tokenizer model '" + d.model +
                    "' is not supported (tokenizer.ggml.model)",
                "edgelm reads byte-level BPE ('gpt2') and SentencePiece-style ('llama') "
                "vocabularies");
  }
  d.pre = file.get_string_or("tokenizer.ggml.pre", "");
  d.tokens = file.get_string_array("tokenizer.ggml.tokens");
  if (file.has("tokenizer.ggml.token_type")) {
    d.token_types = file.get_i32_array("tokenizer.ggml.token_type");
  }
  if (spm) {
    if (file.has("tokenizer.ggml.scores")) d.scores = file.get_f32_array("tokenizer.ggml.scores");
  } else {
    d.merges = file.get_string_array("tokenizer.ggml.merges");
  }
  // SentencePiece vocabularies get llama.cpp's defaults (Llama 2's ids) for a key that is absent
  // or names no token.
  const auto n_tokens = static_cast<int64_t>(d.tokens.size());
  const auto spm_id = [&](const char* key, int32_t fallback) {
    const int32_t id = optional_id(file, key, fallback);
    return id >= 0 && id < n_tokens ? id : fallback;
  };
  d.bos = spm ? spm_id("tokenizer.ggml.bos_token_id", 1)
              : optional_id(file, "tokenizer.ggml.bos_token_id");
  d.eos = spm ? spm_id("tokenizer.ggml.eos_token_id", 2)
              : optional_id(file, "tokenizer.ggml.eos_token_id");
  d.unk = spm ? spm_id("tokenizer.ggml.unknown_token_id", 0) : -1;
  d.eot = optional_id(file, "tokenizer.ggml.eot_token_id");
  d.eom = optional_id(file, "tokenizer.ggml.eom_token_id");
  // The older prefix/suffix/middle keys win when both are present, as in llama.cpp.
  d.fim_pre = optional_id(file, "tokenizer.ggml.prefix_token_id",
                          optional_id(file, "tokenizer.ggml.fim_pre_token_id"));
  d.fim_suf = optional_id(file, "tokenizer.ggml.suffix_token_id",
                          optional_id(file, "tokenizer.ggml.fim_suf_token_id"));
  d.fim_mid = optional_id(file, "tokenizer.ggml.middle_token_id",
                          optional_id(file, "tokenizer.ggml.fim_mid_token_id"));
  d.fim_pad = optional_id(file, "tokenizer.ggml.fim_pad_token_id");
  d.fim_rep = optional_id(file, "tokenizer.ggml.fim_rep_token_id");
  d.fim_sep = optional_id(file, "tokenizer.ggml.fim_sep_token_id");
  d.add_bos = optional_bool(file, "tokenizer.ggml.add_bos_token");
  d.add_eos = optional_bool(file, "tokenizer.ggml.add_eos_token");
  d.add_space_prefix = optional_bool(file, "tokenizer.ggml.add_space_prefix");
  return d;
}

}  // namespace edgelm
