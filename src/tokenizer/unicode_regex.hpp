// A compiled PCRE2 pattern in UTF mode with Unicode properties (UCP), JIT-compiled when the
// library supports it. Immutable after construction, so one instance can serve many threads.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace edgelm::tokenizer {

struct Span {
  size_t begin = 0;
  size_t end = 0;
};

class UnicodeRegex {
 public:
  explicit UnicodeRegex(const std::string& pattern);  // throws edgelm::Error
  UnicodeRegex(UnicodeRegex&&) noexcept;
  UnicodeRegex& operator=(UnicodeRegex&&) noexcept;
  ~UnicodeRegex();

  // Appends the successive non-overlapping matches in `subject` (valid UTF-8), as offsets into
  // it. The pattern sees only `subject`: a look-ahead at its end finds nothing beyond.
  void find_all(std::string_view subject, std::vector<Span>& matches) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgelm::tokenizer
