// Python's text forms of values: str(), repr(), float repr, json.dumps (as HF's `tojson`
// calls it), printf-style `%` formatting and str.format().
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "tokenizer/jinja/value.hpp"

namespace edgelm::jinja {

// Python's repr(float): shortest round-trip digits, exponent form outside 1e-4 <= |x| < 1e16.
std::string float_repr(double f);

// Python str(v) / repr(v). Throws TemplateFailure for values that have no stable text
// (functions, generators) and for containers nested deeper than kMaxContainerDepth.
// `max_bytes` bounds the text (a Limit failure beyond it): a list can hold the same huge
// string a million times.
std::string py_str(const Value& v, size_t max_bytes = SIZE_MAX);
std::string py_repr(const Value& v, size_t max_bytes = SIZE_MAX);

// Python repr() of a str.
std::string string_repr(const std::string& s);

struct JsonOptions {
  bool ensure_ascii = false;
  std::optional<std::string> indent;  // nullopt: single line
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool sort_keys = false;
};

// json.dumps(v, ...). Throws TemplateFailure (Runtime) for values JSON cannot represent.
// `max_bytes` bounds the output (Limit failure beyond it).
std::string json_dumps(const Value& v, const JsonOptions& options, size_t max_bytes);

// `format % args` (args: a tuple for positional values, a dict for %(name)s, else one value).
std::string percent_format(const std::string& format, const Value& args, size_t max_bytes);

// str.format(*positional, **keyword).
std::string brace_format(const std::string& format, const CallArgs& args, size_t max_bytes);

}  // namespace edgelm::jinja
