// GPT-2's byte-level alphabet: every byte value has a printable stand-in character, so a
// vocabulary of strings can hold arbitrary bytes. Bytes 0x21-0x7E, 0xA1-0xAC and 0xAE-0xFF stand
// for themselves; the other 68 (control characters, space, DEL, NBSP, soft hyphen, ...) map to
// U+0100, U+0101, ... in increasing byte order (so ' ' is 'Ġ' and '\n' is 'Ċ').
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace edgelm::tokenizer {

class ByteLevelAlphabet {
 public:
  ByteLevelAlphabet();

  // UTF-8 of the character that stands for `byte`.
  std::string_view symbol(uint8_t byte) const { return symbols_[byte]; }
  std::optional<uint8_t> byte_of(char32_t symbol) const;

  std::string encode(std::string_view bytes) const;
  // The bytes behind a string of byte-level characters; nullopt if some character is not one.
  std::optional<std::string> decode(std::string_view symbols) const;
  // llama.cpp's rendering of a normal token: characters outside the alphabet become
  // "[UNK_BYTE_0x<utf8 hex><token text>]" instead of failing.
  std::string decode_lossy(std::string_view symbols) const;

 private:
  static constexpr char32_t kLastSymbol = 0x100 + 68 - 1;
  std::array<std::string, 256> symbols_;
  std::array<int16_t, kLastSymbol + 1> byte_of_symbol_;  // -1: not a byte-level character
};

}  // namespace edgelm::tokenizer
