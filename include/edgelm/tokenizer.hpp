// Tokenizer built from a GGUF vocabulary: byte-level BPE (`tokenizer.ggml.model = gpt2`) or
// SentencePiece-style (`llama`: Gemma, Llama 2, Phi-3, Mistral).
//
//   auto tok = edgelm::Tokenizer::from_gguf(file);
//   auto ids = tok.encode("<|im_start|>user\nHi<|im_end|>", /*add_special=*/false,
//                         /*parse_special=*/true);
//   edgelm::TokenStreamDecoder dec(tok);
//   for (int32_t id : ids) std::cout << dec.push(id);    // never splits a UTF-8 character
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace edgelm {
namespace gguf { class File; }

// Token types as stored in `tokenizer.ggml.token_type` (llama.cpp's numbering).
enum class TokenType : int32_t {
  Undefined = 0, Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6,
};

// Everything the tokenizer is built from, as plain data: what from_gguf reads out of the metadata,
// and what tests build by hand.
struct VocabularyData {
  std::string model = "gpt2";        // tokenizer.ggml.model: "gpt2" (BPE) or "llama" (SPM)
  std::string pre;                   // tokenizer.ggml.pre: the split patterns; "" = "default"
                                     // (BPE only; SentencePiece vocabularies have none)
  std::vector<std::string> tokens;   // tokenizer.ggml.tokens: byte-level symbols (BPE) or
                                     // text with "▁" for spaces (SPM)
  std::vector<int32_t> token_types;  // tokenizer.ggml.token_type (TokenType); empty = all Normal
  std::vector<std::string> merges;   // tokenizer.ggml.merges, "left right"; rank = index (BPE)
  std::vector<float> scores;         // tokenizer.ggml.scores (SPM: highest merges first);
                                     // empty = all 0
  // Special ids from the metadata, -1 when absent (EOT, EOM and the FIM ids are then looked up
  // by their text, as llama.cpp does).
  // from_gguf applies llama.cpp's defaults for SPM vocabularies (bos 1, eos 2, unk 0).
  int32_t bos = -1, eos = -1, eot = -1, eom = -1, unk = -1;
  int32_t fim_pre = -1, fim_suf = -1, fim_mid = -1, fim_pad = -1, fim_rep = -1, fim_sep = -1;
  // tokenizer.ggml.add_bos_token / add_eos_token; absent = the pre-tokenizer's default.
  std::optional<bool> add_bos, add_eos;
  // tokenizer.ggml.add_space_prefix (SPM: a space before text at the start and after a special
  // token); absent = true for SPM, false for BPE.
  std::optional<bool> add_space_prefix;

  // Throws edgelm::Error for a missing or mistyped key.
  static VocabularyData from_gguf(const gguf::File& file);
};

class Tokenizer {
 public:
  static Tokenizer from_gguf(const gguf::File& file);
  // Throws edgelm::Error when the data is inconsistent (unknown model or pre-tokenizer name,
  // token_types of the wrong length, ...).
  static Tokenizer from_vocabulary(VocabularyData data);
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // add_special: prepend BOS / append EOS as the model's metadata asks
  // (tokenizer.ggml.add_bos_token / add_eos_token).
  // parse_special: recognise control/user-defined tokens such as <|im_start|> in the text; when
  // false they are tokenized as plain text.
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;
  // The raw bytes of a token (byte-level symbols mapped back to bytes). Control tokens decode
  // to their text only when `special` is true. Throws edgelm::Error for an id outside the
  // vocabulary.
  std::string token_to_piece(int32_t id, bool special = false) const;
  // The pieces concatenated: decode(encode(s)) == s for any valid UTF-8 `s` (with `special` as
  // parse_special was, add_special false; a SentencePiece vocabulary with a space prefix also
  // puts a space after each special token), except that a SentencePiece "▁" comes back as the
  // space it stands for, and a character with a byte the vocabulary has no token for (byte-level
  // vocabularies without all 256) is encoded as U+FFFD, never dropped. As llama_detokenize
  // (remove_special false), a leading space of the first piece is dropped when the vocabulary
  // adds a space prefix; unlike it, this never cleans up spaces. The result is always valid
  // UTF-8: ids that split a character (a reply cut mid-character, a byte token alone) give
  // U+FFFD in its place, as Hugging Face's decode does; token_to_piece keeps the raw bytes.
  std::string decode(std::span<const int32_t> ids, bool special = false) const;

  int32_t n_vocab() const;
  int32_t bos() const;  // -1 if none
  int32_t eos() const;  // -1 if none
  bool add_bos() const;
  // End of generation: EOS, EOT, <|im_end|>, <|endoftext|> and the like.
  bool is_eog(int32_t id) const;      // false for an id outside the vocabulary
  bool is_control(int32_t id) const;  // false for an id outside the vocabulary
  std::optional<int32_t> find(std::string_view piece) const;  // exact vocabulary entry
  const std::string& text(int32_t id) const;  // vocabulary entry as stored; throws for a bad id
  // Same entries under the same ids: one model's token ids mean the same text in the other
  // (a distillation teacher and its student, a speculative draft and its target).
  bool same_vocabulary(const Tokenizer& other) const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Streams decoded text token by token, holding back an incomplete UTF-8 sequence until the
// bytes that finish it arrive. The output is always valid UTF-8: bytes that can never form a
// character (a stray continuation byte, 0xFF, a lead byte followed by a non-continuation) are
// emitted as U+FFFD.
class TokenStreamDecoder {
 public:
  explicit TokenStreamDecoder(const Tokenizer& tok, bool special = false)
      : tok_(&tok), special_(special) {}
  std::string push(int32_t id);
  std::string flush();  // whatever is pending (an incomplete sequence is emitted as U+FFFD)

 private:
  const Tokenizer* tok_;
  bool special_;
  std::string pending_;
};

}  // namespace edgelm
