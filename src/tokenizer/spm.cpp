#include "tokenizer/spm.hpp"

#include <algorithm>

#include "edgelm/error.hpp"

namespace edgelm::tokenizer {
namespace {

// Bytes in the character a lead byte starts, read from its high four bits only (as llama.cpp
// does): a stray continuation byte counts as one character, and a truncated sequence at the end
// of the text is cut short by the caller.
size_t utf8_length(char lead) {
  static constexpr uint8_t kLength[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLength[static_cast<uint8_t>(lead) >> 4];
}

// std heap functions keep the "largest" on top, so "larger" here means "merge sooner".
struct MergesSooner {
  template <class C>
  bool operator()(const C& a, const C& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

}  // namespace

void escape_spm_spaces(std::string_view text, std::string& out) {
  out.reserve(out.size() + text.size() + text.size() / 4);
  for (char c : text) {
    if (c == ' ') {
      out += kSpmSpace;
    } else {
      out += c;
    }
  }
}

std::string unescape_spm_spaces(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (true) {
    const size_t at = text.find(kSpmSpace, pos);
    if (at == std::string_view::npos) break;
    out.append(text, pos, at - pos);
    out += ' ';
    pos = at + kSpmSpace.size();
  }
  out.append(text, pos);
  return out;
}

SpmModel::SpmModel(const Vocabulary& vocab, std::vector<float> scores, int32_t unk)
    : vocab_(vocab), scores_(std::move(scores)) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    const std::string hex = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>'};
    auto id = vocab_.find_text(hex);
    if (!id) id = vocab_.find_text(std::string(1, static_cast<char>(b)));
    byte_tokens_[b] = id ? *id : (vocab_.contains(unk) ? unk : -1);
  }
}

void SpmEncoder::queue_pair(std::string_view text, int32_t left, int32_t right) {
  if (left < 0 || right < 0) return;
  const Symbol& l = symbols_[left];
  const Symbol& r = symbols_[right];
  const auto id = vocab_.find_text(text.substr(l.begin, l.size + r.size));
  if (!id) return;
  queue_.push_back({model_.score(*id), left, right, l.size + r.size});
  std::push_heap(queue_.begin(), queue_.end(), MergesSooner{});
}

void SpmEncoder::emit(std::string_view piece, std::vector<int32_t>& out) const {
  if (const auto id = vocab_.find_text(piece)) {
    out.push_back(*id);
    return;
  }
  // Only single characters can be left without a token (every merge makes one), so byte
  // fallback spells out one character.
  for (char c : piece) {
    const int32_t id = model_.byte_token(static_cast<uint8_t>(c));
    if (id < 0) {
      throw Error("the vocabulary has no token for byte 0x" +
                      std::string{"0123456789ABCDEF"[static_cast<uint8_t>(c) >> 4],
                                  "0123456789ABCDEF"[c & 15]} +
                      " and no unknown token to stand in for it",
                  "remove that character from the text, or use a model whose vocabulary has "
                  "byte tokens (<0x00>..<0xFF>)");
    }
    out.push_back(id);
  }
}

void SpmEncoder::encode(std::string_view text, std::vector<int32_t>& out) {
  if (text.empty()) return;
  if (text.size() > UINT32_MAX / 2) {
    throw Error("the text is too long to tokenize (" + std::to_string(text.size()) + " bytes)",
                "split it into smaller pieces");
  }
  symbols_.clear();
  queue_.clear();
  for (size_t pos = 0; pos < text.size();) {
    const size_t n = std::min(utf8_length(text[pos]), text.size() - pos);
    const auto index = static_cast<int32_t>(symbols_.size());
    symbols_.push_back({static_cast<uint32_t>(pos), static_cast<uint32_t>(n), index - 1,
                        pos + n == text.size() ? -1 : index + 1});
    pos += n;
  }
  for (int32_t i = 1; i < static_cast<int32_t>(symbols_.size()); ++i) queue_pair(text, i - 1, i);

  while (!queue_.empty()) {
    std::pop_heap(queue_.begin(), queue_.end(), MergesSooner{});
    const Candidate c = queue_.back();
    queue_.pop_back();
    Symbol& left = symbols_[c.left];
    Symbol& right = symbols_[c.right];
    if (left.size == 0 || right.size == 0 || left.size + right.size != c.size) continue;  // stale
    left.size += right.size;
    right.size = 0;
    left.next = right.next;
    if (right.next >= 0) symbols_[right.next].prev = c.left;
    queue_pair(text, left.prev, c.left);
    queue_pair(text, c.left, left.next);
  }

  for (int32_t i = 0; i != -1; i = symbols_[i].next) {
    emit(text.substr(symbols_[i].begin, symbols_[i].size), out);
  }
}

}  // namespace edgelm::tokenizer
