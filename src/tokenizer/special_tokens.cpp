#include "tokenizer/special_tokens.hpp"

#include <algorithm>
#include <span>

#include "edgelm/tokenizer.hpp"

namespace edgelm::tokenizer {
namespace {

using Names = std::span<const std::string_view>;

// Token texts llama.cpp looks for when the metadata does not name the token.
constexpr std::string_view kEotNames[] = {
    "<|eot_id|>",        "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
    "<|end_of_text|>",   "<EOT>",      "_<EOT>",  "[EOT]",         "<｜end▁of▁sentence｜>",
    "<end_of_utterance>"};
constexpr std::string_view kEomNames[] = {"<|eom_id|>"};
constexpr std::string_view kFimPreNames[] = {"<|fim_prefix|>",  "<fim-prefix>", "<fim_prefix>",
                                             "<｜fim▁begin｜>", "<PRE>",        "▁<PRE>",
                                             "<|code_prefix|>", "<|prefix|>"};
constexpr std::string_view kFimSufNames[] = {"<|fim_suffix|>",  "<fim-suffix>", "<fim_suffix>",
                                             "<｜fim▁hole｜>",  "<SUF>",        "▁<SUF>",
                                             "<|code_suffix|>", "<|suffix|>"};
constexpr std::string_view kFimMidNames[] = {"<|fim_middle|>",  "<fim-middle>", "<fim_middle>",
                                             "<｜fim▁end｜>",   "<MID>",        "▁<MID>",
                                             "<|code_middle|>", "<|middle|>"};
constexpr std::string_view kFimPadNames[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>",
                                             "[PAD]"};
constexpr std::string_view kFimRepNames[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>",
                                             "<REPO>", "<reponame>"};
constexpr std::string_view kFimSepNames[] = {"<|file_sep|>"};
// Texts that end generation wherever they are in the vocabulary.
constexpr std::string_view kEogNames[] = {"<|eot_id|>",
                                          "<|im_end|>",
                                          "<|end|>",
                                          "<|return|>",
                                          "<|call|>",
                                          "<|flush|>",
                                          "<|calls|>",
                                          "<end_of_turn>",
                                          "<|endoftext|>",
                                          "</s>",
                                          "<|eom_id|>",
                                          "<EOT>",
                                          "_<EOT>",
                                          "[EOT]",
                                          "[EOS]",
                                          "<|end_of_text|>",
                                          "<end_of_utterance>",
                                          "<eos>",
                                          "<turn|>",
                                          "<|tool_response>",
                                          "<｜end▁of▁sentence｜>",
                                          "[e~["};
// gpt-oss chat markers that must always be parsed and printed.
constexpr std::string_view kAlwaysUserDefined[] = {"<|channel|>", "<|message|>", "<|start|>",
                                                   "<|constrain|>"};

bool in(std::string_view text, Names names) {
  return std::find(names.begin(), names.end(), text) != names.end();
}

void mark_control(Vocabulary& vocab, int32_t id) {
  vocab.set_attrs(id, vocab.attrs(id) | kAttrControl);
}

// An id from the metadata if it is valid, else the first token whose text is in `names`
// (which is then marked Control).
int32_t detect(int32_t from_metadata, Names names, Vocabulary& vocab) {
  if (vocab.contains(from_metadata)) return from_metadata;
  for (int32_t id = 0; id < vocab.size(); ++id) {
    if (in(vocab.text(id), names)) {
      mark_control(vocab, id);
      return id;
    }
  }
  return -1;
}

}  // namespace

std::unordered_set<int32_t> resolve_special_tokens(const VocabularyData& data, Vocabulary& vocab) {
  const int32_t eot = detect(data.eot, kEotNames, vocab);
  const int32_t eom = detect(data.eom, kEomNames, vocab);
  detect(data.fim_pre, kFimPreNames, vocab);
  detect(data.fim_suf, kFimSufNames, vocab);
  detect(data.fim_mid, kFimMidNames, vocab);
  const int32_t fim_pad = detect(data.fim_pad, kFimPadNames, vocab);
  const int32_t fim_rep = detect(data.fim_rep, kFimRepNames, vocab);
  const int32_t fim_sep = detect(data.fim_sep, kFimSepNames, vocab);

  std::unordered_set<int32_t> eog;
  for (int32_t id : {fim_pad, fim_rep, fim_sep, eot, eom, data.eos}) {
    if (vocab.contains(id)) eog.insert(id);
  }
  for (int32_t id = 0; id < vocab.size(); ++id) {
    if (in(vocab.text(id), kEogNames)) {
      eog.insert(id);
      mark_control(vocab, id);
    }
    if (in(vocab.text(id), kAlwaysUserDefined)) vocab.set_attrs(id, kAttrUserDefined);
  }

  // gpt-oss (<|return|>, <|call|>) and solar-open (<|calls|>, <|flush|>) end a message with
  // <|end|> without ending the turn: there it is a user-defined token, not EOG.
  bool has_return = false, has_call = false, has_flush = false;
  int32_t end_id = -1;
  for (int32_t id : eog) {
    const std::string& t = vocab.text(id);
    has_return |= t == "<|return|>";
    has_call |= t == "<|call|>" || t == "<|calls|>";
    has_flush |= t == "<|flush|>";
    if (t == "<|end|>") end_id = id;
  }
  if (end_id >= 0 && has_call && (has_return || has_flush)) {
    eog.erase(end_id);
    vocab.set_attrs(end_id, kAttrUserDefined);
  }
  return eog;
}

SpecialTokenSplitter::SpecialTokenSplitter(const Vocabulary& vocab) : vocab_(vocab) {
  for (int32_t id = 0; id < vocab.size(); ++id) {
    const uint8_t a = vocab.attrs(id);
    if (a & (kAttrControl | kAttrUserDefined | kAttrUnknown)) {
      candidates_.push_back({id, (a & (kAttrControl | kAttrUnknown)) != 0});
    }
  }
  // Longest first, so that a token containing another one wins; ties in id order.
  std::stable_sort(candidates_.begin(), candidates_.end(),
                   [&](const Candidate& a, const Candidate& b) {
                     return vocab.text(a.id).size() > vocab.text(b.id).size();
                   });
}

std::vector<Fragment> SpecialTokenSplitter::split(std::string_view text, bool parse_special) const {
  std::vector<Fragment> fragments;
  if (text.empty()) return fragments;
  fragments.push_back({-1, 0, text.size()});
  // Each special token in turn cuts every text fragment still left at each occurrence: the same
  // order of decisions as llama.cpp, which matters when special tokens overlap in the text.
  std::vector<Fragment> next;
  for (const Candidate& c : candidates_) {
    if (c.needs_parse_special && !parse_special) continue;
    const std::string& special = vocab_.text(c.id);
    if (text.find(special) == std::string_view::npos) continue;  // the common case, cheaply
    next.clear();
    bool found_any = false;
    for (const Fragment& f : fragments) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      size_t from = f.begin;
      while (true) {
        const size_t at = text.substr(0, f.end).find(special, from);
        if (at == std::string_view::npos) break;
        found_any = true;
        if (at > from) next.push_back({-1, from, at});
        next.push_back({c.id, at, at + special.size()});
        from = at + special.size();
      }
      if (from < f.end) next.push_back({-1, from, f.end});
    }
    if (found_any) fragments.swap(next);
  }
  return fragments;
}

}  // namespace edgelm::tokenizer
