// Pieces of the JSON Schema -> GBNF converter that stand alone: integer and decimal ranges,
// string formats and the regular-expression subset of `pattern`. Each returns a GBNF expression.
#pragma once
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

namespace edgelm {

struct NumberBounds {
  std::optional<double> lo, hi;
  bool lo_exclusive = false, hi_exclusive = false;
  std::optional<int64_t> int_lo() const;  // the smallest integer within the bounds
  std::optional<int64_t> int_hi() const;  // the largest
};

// JSON integers (no leading zeros, no "-0") in [lo, hi], either side open when absent; "" when
// the range is empty. Throws PatternError for a bound beyond +-10^15.
std::string integer_range_gbnf(std::optional<int64_t> lo, std::optional<int64_t> hi);
// Decimals with a fraction ("12.5", "-0.25") all of whose values lie within the bounds; "" if none.
std::string fraction_range_gbnf(const NumberBounds& b);
// The text of a string of that format, without quotes; "" for an unknown format.
std::string string_format_gbnf(const std::string& format);

struct PatternError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// The JSON string content (escapes included, no quotes) of strings that match `pattern` whole.
// Matching whole is what an anchored pattern asks and a sufficient case of an unanchored one.
std::string pattern_to_gbnf(const std::string& pattern);

struct ObjectMember {
  std::string gbnf;  // key, colon, value and trailing whitespace
  bool required = false;
};

}  // namespace edgelm
