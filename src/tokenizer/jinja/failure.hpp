// The exception the lexer, parser and interpreter throw; ChatTemplate turns it into a
// ChatTemplateError with a line and column computed from the byte offset.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "edgelm/chat_template.hpp"

namespace edgelm::jinja {

using FailKind = ChatTemplateError::Kind;

// Offset into the (newline-normalized) template source; kNoPos when not tied to a place.
inline constexpr uint32_t kNoPos = UINT32_MAX;

struct TemplateFailure {
  FailKind kind;
  uint32_t pos;
  std::string message;
};

// 'text' for messages (appended piecewise: GCC 12 misreports "'" + std::string chains).
inline std::string in_quotes(std::string_view text) {
  std::string q;
  q.reserve(text.size() + 2);
  q += '\'';
  q.append(text);
  q += '\'';
  return q;
}

[[noreturn]] inline void fail(FailKind kind, uint32_t pos, std::string message) {
  throw TemplateFailure{kind, pos, std::move(message)};
}
[[noreturn]] inline void fail_runtime(uint32_t pos, std::string message) {
  fail(FailKind::Runtime, pos, std::move(message));
}
[[noreturn]] inline void fail_unsupported(uint32_t pos, std::string message) {
  fail(FailKind::Unsupported, pos, std::move(message));
}

}  // namespace edgelm::jinja
