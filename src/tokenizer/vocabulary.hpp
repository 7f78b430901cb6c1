// The token table: texts as stored, attributes, and lookups by text and by the bytes a
// byte-level token stands for.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/byte_level.hpp"

namespace edgelm::tokenizer {

// Attribute bits (a token with none is "undefined"). llama.cpp derives them from token types
// and then adds Control to tokens it recognises by name, so they are bits, not an enum.
enum TokenAttr : uint8_t {
  kAttrNormal = 1 << 0,
  kAttrUnknown = 1 << 1,
  kAttrControl = 1 << 2,
  kAttrUserDefined = 1 << 3,
  kAttrUnused = 1 << 4,
  kAttrByte = 1 << 5,
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
template <class V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

class Vocabulary {
 public:
  // `types` is empty (all normal) or holds at least one entry per token. An empty text becomes
  // "[EMPTY_<id>]", as in llama.cpp, so that no special token matches everywhere. Only a
  // byte-level vocabulary (`byte_level`) gets the lookup by bytes (find_bytes, byte_token).
  Vocabulary(std::vector<std::string> texts, const std::vector<int32_t>& types,
             const ByteLevelAlphabet& alphabet, bool byte_level = true);

  int32_t size() const { return static_cast<int32_t>(texts_.size()); }
  bool contains(int32_t id) const { return id >= 0 && id < size(); }
  const std::string& text(int32_t id) const { return texts_[id]; }
  uint8_t attrs(int32_t id) const { return attrs_[id]; }
  void set_attrs(int32_t id, uint8_t attrs) { attrs_[id] = attrs; }

  // When two entries share a text the later one wins, as in llama.cpp.
  std::optional<int32_t> find_text(std::string_view text) const;
  // The token whose byte-level text stands for exactly `bytes`.
  std::optional<int32_t> find_bytes(std::string_view bytes) const;
  // find_bytes of a single byte, precomputed; -1 if the vocabulary lacks it.
  int32_t byte_token(uint8_t byte) const { return byte_tokens_[byte]; }

 private:
  std::vector<std::string> texts_;
  std::vector<uint8_t> attrs_;
  StringMap<int32_t> by_text_;
  StringMap<int32_t> by_bytes_;
  std::array<int32_t, 256> byte_tokens_;
};

}  // namespace edgelm::tokenizer
