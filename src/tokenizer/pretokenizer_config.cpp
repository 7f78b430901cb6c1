#include "tokenizer/pretokenizer_config.hpp"

#include <array>

#include "edgelm/error.hpp"

namespace edgelm::tokenizer {
namespace {

// The patterns are llama.cpp's (src/llama-vocab.cpp), which in turn come from each model's
// tokenizer.json, with the character classes spelled out so that they mean exactly what they
// mean in llama.cpp's own Unicode tables rather than whatever PCRE2's build thinks:
//  - {WS}: llama.cpp's whitespace set (Unicode White_Space). PCRE2's \s under UCP differs (it
//    matches U+180E and, before 10.43, not U+0085).
//  - {L}, {N}, {P}: \p{L}, \p{N}, \p{P} plus the characters Unicode 15.0/15.1 added to them, which
//    llama.cpp knows and PCRE2 10.42 (Unicode 14) does not. Harmless on a newer PCRE2.
constexpr std::string_view kWhitespace =
    "\\t\\n\\x{0B}\\f\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"
    "\\x{202F}\\x{205F}\\x{3000}";
constexpr std::string_view kLetter =
    "\\p{L}\\x{1123F}-\\x{11240}\\x{11F02}\\x{11F04}-\\x{11F10}\\x{11F12}-\\x{11F33}\\x{1342F}"
    "\\x{13441}-\\x{13446}\\x{1B132}\\x{1B155}\\x{1DF25}-\\x{1DF2A}\\x{1E030}-\\x{1E06D}"
    "\\x{1E4D0}-\\x{1E4EB}\\x{2B739}\\x{2EBF0}-\\x{2EE5D}\\x{31350}-\\x{323AF}";
constexpr std::string_view kNumber =
    "\\p{N}\\x{11F50}-\\x{11F59}\\x{1D2C0}-\\x{1D2D3}\\x{1E4F0}-\\x{1E4F9}";
constexpr std::string_view kPunctuation = "\\p{P}\\x{11B00}-\\x{11B09}\\x{11F43}-\\x{11F4F}";

// GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
// (llama.cpp drops the final |\s+; a lone whitespace character before a non-space is then left
// unmatched, which makes it a piece of its own all the same).
constexpr std::string_view kGpt2 =
    "'s|'t|'re|'ve|'m|'ll|'d| ?[{L}]+| ?[{N}]+| ?[^{WS}{L}{N}]+|[{WS}]+(?![^{WS}])";
// Llama 3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
//          ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// with the case-insensitive group spelled out, as llama.cpp does.
constexpr std::string_view kLlama3 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n{L}{N}]?[{L}]+|[{N}]{1,3}"
    "| ?[^{WS}{L}{N}]+[\\r\\n]*|[{WS}]*[\\r\\n]+|[{WS}]+(?![^{WS}])|[{WS}]+";
// Qwen 2: Llama 3's pattern with single digits.
constexpr std::string_view kQwen2 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n{L}{N}]?[{L}]+|[{N}]"
    "| ?[^{WS}{L}{N}]+[\\r\\n]*|[{WS}]*[\\r\\n]+|[{WS}]+(?![^{WS}])|[{WS}]+";
constexpr std::string_view kEachDigit = "[{N}]";

std::string expand(std::string_view pattern) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 4> kClasses{
      {{"{WS}", kWhitespace}, {"{L}", kLetter}, {"{N}", kNumber}, {"{P}", kPunctuation}}};
  std::string out;
  size_t pos = 0;
  while (pos < pattern.size()) {
    bool replaced = false;
    for (const auto& [name, chars] : kClasses) {
      if (pattern.substr(pos, name.size()) == name) {
        out += chars;
        pos += name.size();
        replaced = true;
        break;
      }
    }
    if (!replaced) out += pattern[pos++];
  }
  return out;
}

PreTokenizerConfig family(std::string name, std::initializer_list<std::string_view> patterns,
                          bool ignore_merges = false, bool add_bos = false) {
  PreTokenizerConfig config;
  config.family = std::move(name);
  for (std::string_view p : patterns) config.patterns.push_back(expand(p));
  config.ignore_merges = ignore_merges;
  config.add_bos = add_bos;
  return config;
}

bool one_of(std::string_view name, std::initializer_list<std::string_view> names) {
  for (std::string_view n : names) {
    if (name == n) return true;
  }
  return false;
}

}  // namespace

PreTokenizerConfig pre_tokenizer_config(std::string_view pre) {
  // Names as llama.cpp spells them in tokenizer.ggml.pre.
  if (one_of(pre, {"", "default"})) {
    return family("default", {"[{P}\\$\\+<=>\\^~\\|]+", kGpt2, "[{N}]+", "[0-9][0-9][0-9]"});
  }
  if (one_of(pre, {"gpt-2", "phi-2", "mpt", "olmo", "jais", "exaone4", "trillion"})) {
    return family("gpt2", {kGpt2});
  }
  if (one_of(pre, {"smollm", "starcoder", "refact", "command-r", "codeshell", "exaone",
                   "minerva-7b", "mellum2"})) {
    return family("digits+gpt2", {kEachDigit, kGpt2});
  }
  if (one_of(pre, {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0",
                   "lfm2"})) {
    return family("llama3", {kLlama3}, /*ignore_merges=*/true, /*add_bos=*/true);
  }
  if (one_of(pre, {"dbrx", "smaug-bpe"})) return family("llama3", {kLlama3});
  if (one_of(pre, {"qwen2", "deepseek-r1-qwen", "kormo", "stablelm2", "megrez", "hunyuan"})) {
    return family("qwen2", {kQwen2});
  }
  if (pre == "falcon") {
    return family("falcon", {"[{P}\\$\\+<=>\\^~\\|`]+", kGpt2, "[0-9][0-9][0-9]"});
  }
  throw Error("unknown pre-tokenizer '" + std::string(pre) + "' (tokenizer.ggml.pre)",
              "edgelm knows default, gpt-2, phi-2, mpt, olmo, jais, exaone4, trillion, smollm, "
              "starcoder, refact, command-r, codeshell, exaone, minerva-7b, mellum2, llama3, "
              "llama-v3, llama-bpe, falcon3, falcon-h1, pixtral, midm-2.0, lfm2, dbrx, smaug-bpe, "
              "qwen2, deepseek-r1-qwen, kormo, stablelm2, megrez, hunyuan and falcon");
}

}  // namespace edgelm::tokenizer
