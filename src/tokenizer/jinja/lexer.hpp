// Template source to tokens, reproducing Jinja's lexer with trim_blocks and lstrip_blocks on
// (the settings transformers renders chat templates with): data between tags, `{{ }}`,
// `{% %}`, `{# #}`, `{% raw %}`, the `-`/`+` whitespace modifiers, and expression tokens.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace edgelm::jinja {

enum class Tok : uint8_t {
  Data, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Integer, Float, Op, Eof,
};

enum class Op : uint8_t {
  Add, Sub, Div, FloorDiv, Mul, Mod, Pow, Tilde, LBracket, RBracket, LParen, RParen, LBrace,
  RBrace, Eq, Ne, Gt, Ge, Lt, Le, Assign, Dot, Colon, Pipe, Comma, Semicolon,
};

struct Token {
  Tok type = Tok::Eof;
  Op op = Op::Add;      // Tok::Op
  uint32_t pos = 0;     // byte offset into the normalized source
  std::string text;     // Data: the text; Name: the identifier; String: the decoded value
  int64_t int_value = 0;
  double float_value = 0;
};

struct LexedTemplate {
  // The source with \r\n and \r turned into \n and one trailing newline dropped, as Jinja
  // does before lexing; token positions refer to it.
  std::string source;
  std::vector<Token> tokens;  // always ends with Tok::Eof
};

// Throws TemplateFailure (Syntax / Unsupported) with the offending position.
LexedTemplate lex(std::string_view source);

// Jinja's preprocessing: \r\n and \r become \n, one trailing newline is dropped.
std::string normalize_newlines(std::string_view source);

// Spelling of an operator, for error messages.
const char* op_text(Op op);

}  // namespace edgelm::jinja
