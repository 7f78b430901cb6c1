#include "tokenizer/byte_level.hpp"

#include <cstdio>

#include "tokenizer/utf8.hpp"

namespace edgelm::tokenizer {
namespace {

bool stands_for_itself(unsigned b) {
  return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

}  // namespace

ByteLevelAlphabet::ByteLevelAlphabet() {
  byte_of_symbol_.fill(-1);
  char32_t next_shifted = 0x100;
  for (unsigned b = 0; b < 256; ++b) {
    const char32_t cp = stands_for_itself(b) ? static_cast<char32_t>(b) : next_shifted++;
    append_utf8(symbols_[b], cp);
    byte_of_symbol_[cp] = static_cast<int16_t>(b);
  }
}

std::optional<uint8_t> ByteLevelAlphabet::byte_of(char32_t symbol) const {
  if (symbol > kLastSymbol || byte_of_symbol_[symbol] < 0) return std::nullopt;
  return static_cast<uint8_t>(byte_of_symbol_[symbol]);
}

std::string ByteLevelAlphabet::encode(std::string_view bytes) const {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += symbols_[static_cast<uint8_t>(c)];
  return out;
}

std::optional<std::string> ByteLevelAlphabet::decode(std::string_view symbols) const {
  std::string out;
  out.reserve(symbols.size());
  size_t pos = 0;
  while (pos < symbols.size()) {
    const Utf8Scan scan = scan_utf8(symbols, pos);
    if (scan.status != Utf8Status::Complete) return std::nullopt;
    size_t p = pos;
    const auto byte = byte_of(next_codepoint_lenient(symbols, p));
    if (!byte) return std::nullopt;
    out += static_cast<char>(*byte);
    pos += scan.length;
  }
  return out;
}

std::string ByteLevelAlphabet::decode_lossy(std::string_view symbols) const {
  std::string out;
  size_t pos = 0;
  while (pos < symbols.size()) {
    const char32_t cp = next_codepoint_lenient(symbols, pos);
    if (const auto byte = byte_of(cp)) {
      out += static_cast<char>(*byte);
      continue;
    }
    std::string utf8;
    append_utf8(utf8, cp);
    out += "[UNK_BYTE_0x";
    for (char c : utf8) {
      char hex[3];
      std::snprintf(hex, sizeof hex, "%02x", static_cast<unsigned>(static_cast<uint8_t>(c)));
      out += hex;
    }
    out.append(symbols);
    out += ']';
  }
  return out;
}

}  // namespace edgelm::tokenizer
