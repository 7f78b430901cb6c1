#include "tokenizer/unicode_regex.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "edgelm/error.hpp"

namespace edgelm::tokenizer {

struct UnicodeRegex::Impl {
  pcre2_code* code = nullptr;
  ~Impl() { pcre2_code_free(code); }
};

UnicodeRegex::UnicodeRegex(const std::string& pattern) : impl_(std::make_unique<Impl>()) {
  int error = 0;
  PCRE2_SIZE error_offset = 0;
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                              PCRE2_UTF | PCRE2_UCP, &error, &error_offset, nullptr);
  if (impl_->code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof message);
    throw Error("pre-tokenizer pattern does not compile at offset " + std::to_string(error_offset) +
                    ": " + reinterpret_cast<const char*>(message),
                "this is a bug in edgelm's pattern table; please report it");
  }
  // JIT is an optimisation only: without it (unsupported CPU, hardened kernel) matching still
  // works through the interpreter.
  (void)pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE);
}

UnicodeRegex::UnicodeRegex(UnicodeRegex&&) noexcept = default;
UnicodeRegex& UnicodeRegex::operator=(UnicodeRegex&&) noexcept = default;
UnicodeRegex::~UnicodeRegex() = default;

void UnicodeRegex::find_all(std::string_view subject, std::vector<Span>& matches) const {
  if (subject.empty()) return;
  using MatchData = std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)>;
  MatchData data(pcre2_match_data_create_from_pattern(impl_->code, nullptr),
                 &pcre2_match_data_free);
  if (!data) throw Error("out of memory while splitting text into words");
  const auto* text = reinterpret_cast<PCRE2_SPTR>(subject.data());
  // UTF validity is checked on the first call only; later calls resume inside the same subject.
  uint32_t options = 0;
  size_t start = 0;
  while (start < subject.size()) {
    const int rc =
        pcre2_match(impl_->code, text, subject.size(), start, options, data.get(), nullptr);
    options = PCRE2_NO_UTF_CHECK;
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(rc, message, sizeof message);
      throw Error(std::string("pre-tokenizer matching failed: ") +
                  reinterpret_cast<const char*>(message));
    }
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data.get());
    const size_t begin = ovector[0], end = ovector[1];
    if (end > begin) {
      matches.push_back({begin, end});
      start = end;
    } else {  // an empty match: step over one character so the loop always advances
      start = begin + 1;
      while (start < subject.size() && (static_cast<unsigned char>(subject[start]) & 0xC0) == 0x80)
        ++start;
    }
  }
}

}  // namespace edgelm::tokenizer
