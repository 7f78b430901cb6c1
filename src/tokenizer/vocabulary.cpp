#include "tokenizer/vocabulary.hpp"

#include "edgelm/tokenizer.hpp"

namespace edgelm::tokenizer {
namespace {

uint8_t attrs_of_type(int32_t type) {
  switch (static_cast<TokenType>(type)) {
    case TokenType::Normal:
      return kAttrNormal;
    case TokenType::Unknown:
      return kAttrUnknown;
    case TokenType::Control:
      return kAttrControl;
    case TokenType::UserDefined:
      return kAttrUserDefined;
    case TokenType::Unused:
      return kAttrUnused;
    case TokenType::Byte:
      return kAttrByte;
    default:
      return 0;  // Undefined and anything unknown
  }
}

}  // namespace

Vocabulary::Vocabulary(std::vector<std::string> texts, const std::vector<int32_t>& types,
                       const ByteLevelAlphabet& alphabet, bool byte_level)
    : texts_(std::move(texts)), attrs_(texts_.size(), kAttrNormal) {
  by_text_.reserve(texts_.size());
  if (byte_level) by_bytes_.reserve(texts_.size());
  for (size_t id = 0; id < texts_.size(); ++id) {
    std::string& text = texts_[id];
    if (text.empty()) text = "[EMPTY_" + std::to_string(id) + "]";
    if (!types.empty()) attrs_[id] = attrs_of_type(types[id]);
    by_text_.insert_or_assign(text, static_cast<int32_t>(id));
    if (!byte_level) continue;
    if (auto bytes = alphabet.decode(text)) {
      by_bytes_.insert_or_assign(std::move(*bytes), static_cast<int32_t>(id));
    }
  }
  for (int b = 0; b < 256; ++b) {
    byte_tokens_[b] = find_bytes(std::string(1, static_cast<char>(b))).value_or(-1);
  }
}

std::optional<int32_t> Vocabulary::find_text(std::string_view text) const {
  const auto it = by_text_.find(text);
  if (it == by_text_.end()) return std::nullopt;
  return it->second;
}

std::optional<int32_t> Vocabulary::find_bytes(std::string_view bytes) const {
  const auto it = by_bytes_.find(bytes);
  if (it == by_bytes_.end()) return std::nullopt;
  return it->second;
}

}  // namespace edgelm::tokenizer
