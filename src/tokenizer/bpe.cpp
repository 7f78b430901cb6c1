#include "tokenizer/bpe.hpp"

#include <algorithm>
#include <string>

#include "tokenizer/utf8.hpp"

namespace edgelm::tokenizer {

MergeTable::MergeTable(const std::vector<std::string>& merges, const Vocabulary& vocab,
                       const ByteLevelAlphabet& alphabet) {
  by_ids_.reserve(merges.size());
  std::string key;
  for (size_t i = 0; i < merges.size(); ++i) {
    const std::string& merge = merges[i];
    // Split at the first space after the first character, as llama.cpp does.
    const size_t space = merge.find(' ', 1);
    if (space == std::string::npos) continue;
    const auto left = alphabet.decode(std::string_view(merge).substr(0, space));
    const auto right = alphabet.decode(std::string_view(merge).substr(space + 1));
    if (!left || !right || left->empty() || right->empty()) continue;
    const Merge m{static_cast<int32_t>(i), vocab.find_bytes(*left + *right).value_or(-1)};
    const auto left_id = vocab.find_bytes(*left);
    const auto right_id = vocab.find_bytes(*right);
    if (left_id && right_id) {
      by_ids_.try_emplace(id_key(*left_id, *right_id), m);
    } else {
      make_key(*left, *right, key);
      by_bytes_.try_emplace(key, m);
    }
  }
}

void MergeTable::make_key(std::string_view left, std::string_view right, std::string& key) {
  // The length of the left half first keeps ("ab","c") and ("a","bc") apart.
  const auto n = static_cast<uint32_t>(left.size());
  key.assign(reinterpret_cast<const char*>(&n), sizeof n);
  key.append(left);
  key.append(right);
}

std::optional<Merge> MergeTable::find(int32_t left, int32_t right) const {
  const auto it = by_ids_.find(id_key(left, right));
  if (it == by_ids_.end()) return std::nullopt;
  return it->second;
}

std::optional<Merge> MergeTable::find(std::string_view left, std::string_view right,
                                      std::string& key) const {
  if (by_bytes_.empty()) return std::nullopt;
  make_key(left, right, key);
  const auto it = by_bytes_.find(std::string_view(key));
  if (it == by_bytes_.end()) return std::nullopt;
  return it->second;
}

namespace {

// std heap functions keep the "largest" on top, so "larger" here means "merge later".
struct MergesLater {
  template <class C>
  bool operator()(const C& a, const C& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

}  // namespace

void BpeEncoder::queue_pair(std::string_view word, int32_t left, int32_t right) {
  if (left < 0 || right < 0) return;
  const Symbol& l = symbols_[left];
  const Symbol& r = symbols_[right];
  const auto merge =
      (l.token >= 0 && r.token >= 0)
          ? merges_.find(l.token, r.token)
          : merges_.find(word.substr(l.begin, l.size), word.substr(r.begin, r.size), key_);
  if (!merge) return;
  queue_.push_back({merge->rank, left, right, l.size, r.size, merge->result});
  std::push_heap(queue_.begin(), queue_.end(), MergesLater{});
}

void BpeEncoder::encode_word(std::string_view word, std::vector<int32_t>& out) {
  if (word.empty()) return;
  const auto missing = [&](char b) { return vocab_.byte_token(static_cast<uint8_t>(b)) < 0; };
  if (std::any_of(word.begin(), word.end(), missing)) {
    std::string fixed;
    for (size_t pos = 0; pos < word.size();) {
      const Utf8Scan sc = scan_utf8(word, pos);
      const size_t len = std::max<size_t>(1, sc.length);
      const std::string_view ch = word.substr(pos, len);
      if (std::any_of(ch.begin(), ch.end(), missing))
        append_utf8(fixed, kReplacementChar);
      else
        fixed.append(ch);
      pos += len;
    }
    // Only a vocabulary without U+FFFD's own bytes has anything left to drop.
    std::erase_if(fixed, missing);
    if (fixed.empty()) return;
    return encode_word_known(fixed, out);
  }
  encode_word_known(word, out);
}

void BpeEncoder::encode_word_known(std::string_view word, std::vector<int32_t>& out) {
  if (ignore_merges_) {
    if (const auto id = vocab_.find_bytes(word)) {
      out.push_back(*id);
      return;
    }
  }
  symbols_.clear();
  queue_.clear();
  const auto n = static_cast<int32_t>(word.size());
  for (int32_t i = 0; i < n; ++i) {
    symbols_.push_back({static_cast<uint32_t>(i), 1, i - 1, i + 1 < n ? i + 1 : -1,
                        vocab_.byte_token(static_cast<uint8_t>(word[i]))});
  }
  for (int32_t i = 1; i < n; ++i) queue_pair(word, i - 1, i);

  while (!queue_.empty()) {
    std::pop_heap(queue_.begin(), queue_.end(), MergesLater{});
    const Candidate c = queue_.back();
    queue_.pop_back();
    Symbol& left = symbols_[c.left];
    Symbol& right = symbols_[c.right];
    if (left.size != c.left_size || right.size != c.right_size || left.next != c.right) continue;
    left.size += right.size;
    left.token = c.result;
    right.size = 0;
    left.next = right.next;
    if (right.next >= 0) symbols_[right.next].prev = c.left;
    queue_pair(word, left.prev, c.left);
    queue_pair(word, c.left, left.next);
  }

  for (int32_t i = 0; i >= 0; i = symbols_[i].next) {
    emit(word.substr(symbols_[i].begin, symbols_[i].size), symbols_[i].token, out);
  }
}

void BpeEncoder::emit(std::string_view bytes, int32_t token, std::vector<int32_t>& out) const {
  if (token >= 0) {
    out.push_back(token);
    return;
  }
  // A merge produced a piece that is not in the vocabulary (a vocabulary/merges mismatch).
  // llama.cpp then looks up each single *char* of the byte-level text as a token; only the
  // printable ASCII ones can be found, the rest are dropped. Reproduced for parity.
  std::string one(1, '\0');
  for (char byte : bytes) {
    for (char c : alphabet_.symbol(static_cast<uint8_t>(byte))) {
      one[0] = c;
      if (const auto id = vocab_.find_text(one)) out.push_back(*id);
    }
  }
}

}  // namespace edgelm::tokenizer
