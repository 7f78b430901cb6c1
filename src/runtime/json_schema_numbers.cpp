// Number ranges and string formats for the JSON Schema converter. An integer range becomes
// digit patterns per length: [123, 4567] is 12[3-9] | 1[3-9][0-9] | [2-9][0-9]{2} | [1-3][0-9]{3}
// | 4[0-4][0-9]{2} | ..., the way one would write it by hand.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "runtime/json_schema_parts.hpp"

namespace edgelm {
namespace {

constexpr double kMaxBound = 1e15;
constexpr int kMaxDigits = 16;  // as the unbounded integer rule

std::string join(const std::vector<std::string>& alts) {
  if (alts.size() == 1) return alts[0];
  std::string out = "( ";
  for (size_t i = 0; i < alts.size(); ++i) out += (i ? " | " : "") + alts[i];
  return out + " )";
}

std::string digit(char c) { return std::string("\"") + c + "\""; }
std::string digits(char lo, char hi) { return lo == hi ? digit(lo) : std::string("[") + lo + "-" + hi + "]"; }
std::string any_digits(size_t n) { return n == 0 ? "" : n == 1 ? " [0-9]" : " [0-9]{" + std::to_string(n) + "}"; }

int digit_count(int64_t v) { return v < 10 ? 1 : 1 + digit_count(v / 10); }

int64_t pow10(int n) {
  int64_t v = 1;
  while (n-- > 0) v *= 10;
  return v;
}

// Digit strings of one length from x to y (x <= y), leading zeros allowed.
std::string same_length(const std::string& x, const std::string& y) {
  if (x.empty()) return "";
  if (x[0] == y[0]) {
    const std::string rest = same_length(x.substr(1), y.substr(1));
    return digit(x[0]) + (rest.empty() ? "" : " " + rest);
  }
  const size_t n = x.size() - 1;
  const bool low_full = std::all_of(x.begin() + 1, x.end(), [](char c) { return c == '0'; });
  const bool high_full = std::all_of(y.begin() + 1, y.end(), [](char c) { return c == '9'; });
  std::vector<std::string> alts;
  char mid_lo = x[0], mid_hi = y[0];
  if (!low_full) {
    alts.push_back(digit(x[0]) + " " + same_length(x.substr(1), std::string(n, '9')));
    ++mid_lo;
  }
  std::string tail;
  if (!high_full) {
    tail = digit(y[0]) + " " + same_length(std::string(n, '0'), y.substr(1));
    --mid_hi;
  }
  if (mid_lo <= mid_hi) alts.push_back(digits(mid_lo, mid_hi) + any_digits(n));
  if (!tail.empty()) alts.push_back(tail);
  return join(alts);
}

// Natural numbers in [a, b] without leading zeros; b absent: no upper bound.
std::string natural_range(int64_t a, std::optional<int64_t> b) {
  std::vector<std::string> alts;
  const int da = digit_count(a);
  const int db = b ? digit_count(*b) : da;
  for (int d = da; d <= db; ++d) {
    const int64_t lo = std::max(a, d == 1 ? 0 : pow10(d - 1));
    const int64_t hi = b ? std::min(*b, pow10(d) - 1) : pow10(d) - 1;
    alts.push_back(same_length(std::to_string(lo), std::to_string(hi)));
  }
  if (!b && da < kMaxDigits) alts.push_back("[1-9] [0-9]{" + std::to_string(da) + "," + std::to_string(kMaxDigits - 1) + "}");
  return join(alts);
}

std::optional<int64_t> checked(std::optional<double> v) {
  if (!v) return std::nullopt;
  if (std::fabs(*v) > kMaxBound) throw PatternError("bounds beyond +-10^15 are not supported");
  return static_cast<int64_t>(*v);
}

}  // namespace

std::optional<int64_t> NumberBounds::int_lo() const {
  if (!lo) return std::nullopt;
  return checked(lo_exclusive ? std::floor(*lo) + 1 : std::ceil(*lo));
}

std::optional<int64_t> NumberBounds::int_hi() const {
  if (!hi) return std::nullopt;
  return checked(hi_exclusive ? std::ceil(*hi) - 1 : std::floor(*hi));
}

std::string integer_range_gbnf(std::optional<int64_t> lo, std::optional<int64_t> hi) {
  std::vector<std::string> alts;
  if (!lo || *lo < 0) {  // negatives: "-" and a magnitude in [max(1, -hi), -lo]
    const int64_t m_lo = hi ? std::max<int64_t>(1, -*hi) : 1;
    const std::optional<int64_t> m_hi = lo ? std::optional<int64_t>(-*lo) : std::nullopt;
    if (!m_hi || m_lo <= *m_hi) alts.push_back("\"-\" " + natural_range(m_lo, m_hi));
  }
  if (!hi || *hi >= 0) {
    const int64_t a = lo ? std::max<int64_t>(0, *lo) : 0;
    if (!hi || a <= *hi) alts.push_back(natural_range(a, hi));
  }
  return alts.empty() ? "" : join(alts);
}

// i.f (i >= 0) lies in [i, i + 1) and -k.f in (-(k + 1), -k]; keep the i and k whose whole
// interval is within the bounds.
std::string fraction_range_gbnf(const NumberBounds& b) {
  const std::string fraction = " \".\" [0-9]{1,16}";
  std::vector<std::string> alts;
  const std::optional<int64_t> lo = b.int_lo(), hi = b.int_hi();
  const std::optional<int64_t> below_hi = b.hi ? checked(std::floor(*b.hi) - 1) : std::nullopt;
  const std::optional<int64_t> below_neg_lo = b.lo ? checked(std::floor(-*b.lo) - 1) : std::nullopt;
  const int64_t i_lo = lo ? std::max<int64_t>(0, *lo) : 0;
  if (!below_hi || i_lo <= *below_hi) alts.push_back(natural_range(i_lo, below_hi) + fraction);
  const int64_t k_lo = hi ? std::max<int64_t>(0, -*hi) : 0;
  if (!below_neg_lo || k_lo <= *below_neg_lo) alts.push_back("\"-\" " + natural_range(k_lo, below_neg_lo) + fraction);
  return alts.empty() ? "" : join(alts);
}

std::string string_format_gbnf(const std::string& format) {
  // Dates stop at the 28th of February, so no leap-year rule is needed for every one to exist.
  const std::string date =
      R"([0-9]{4} "-" ( ( "0" [13578] | "1" [02] ) "-" ( "0" [1-9] | [12] [0-9] | "3" [01] ) | ( "0" [469] | "11" ) "-" ( "0" [1-9] | [12] [0-9] | "30" ) | "02-" ( "0" [1-9] | "1" [0-9] | "2" [0-8] ) ))";
  const std::string time =
      R"(( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{1,6} )? ( "Z" | [+-] ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ))";
  if (format == "date") return "( " + date + " )";
  if (format == "time") return "( " + time + " )";
  if (format == "date-time") return "( " + date + " \"T\" " + time + " )";
  if (format == "uuid")
    return R"(( [0-9a-f]{8} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{12} ))";
  if (format == "email")
    return R"(( [a-zA-Z0-9_+-]{1,32} ( "." [a-zA-Z0-9_+-]{1,32} )? "@" [a-zA-Z0-9] [a-zA-Z0-9-]{0,30} ( "." [a-zA-Z]{2,10} ){1,2} ))";
  return "";
}

}  // namespace edgelm
