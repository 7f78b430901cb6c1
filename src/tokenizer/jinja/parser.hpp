// Tokens to syntax tree, following Jinja's grammar and operator precedence.
#pragma once
#include <string_view>

#include "tokenizer/jinja/ast.hpp"

namespace edgelm::jinja {

// Lexes and parses. Throws TemplateFailure: Syntax for invalid templates (including unknown
// filters/tests outside if-blocks, which Jinja rejects when compiling), Unsupported for valid
// Jinja this interpreter does not run (extends, include, call blocks, ...), Limit for nesting
// deeper than the interpreter allows.
Template parse_template(std::string_view source);

// Whether a filter / test of this name exists (the parser checks names up front).
bool known_filter(std::string_view name);
bool known_test(std::string_view name);

}  // namespace edgelm::jinja
