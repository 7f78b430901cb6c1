// Tokenizer built from a GGUF vocabulary (byte-level BPE, `tokenizer.ggml.model = gpt2`).
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

class Tokenizer {
 public:
  static Tokenizer from_gguf(const gguf::File& file);
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // add_special: prepend BOS / append EOS as the model's metadata asks
  // (tokenizer.ggml.add_bos_token / add_eos_token).
  // parse_special: recognise control/user-defined tokens such as <|im_start|> in the text; when
  // false they are tokenized as plain text.
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;
  // The raw bytes of a token (byte-level symbols mapped back to bytes). Control tokens decode
  // to their text only when `special` is true.
  std::string token_to_piece(int32_t id, bool special = false) const;
  std::string decode(std::span<const int32_t> ids, bool special = false) const;

  int32_t n_vocab() const;
  int32_t bos() const;  // -1 if none
  int32_t eos() const;  // -1 if none
  bool add_bos() const;
  // End of generation: EOS, EOT, <|im_end|>, <|endoftext|> and the like.
  bool is_eog(int32_t id) const;
  bool is_control(int32_t id) const;
  std::optional<int32_t> find(std::string_view piece) const;  // exact vocabulary entry
  const std::string& text(int32_t id) const;                   // vocabulary entry as stored

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Streams decoded text token by token, holding back an incomplete UTF-8 sequence until the
// bytes that finish it arrive.
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
