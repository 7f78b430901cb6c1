// Grammar states meet a vocabulary. The tokens' byte strings sit in one pre-order trie; the
// allowed set is one walk over it that skips every subtree the grammar rules out after its first
// byte. The walk steps through interned states: each distinct state met gets an id and a row of
// 256 byte transitions filled on first use, so inside a JSON string (where nearly every token is
// allowed) each trie node costs an array read, and a state whose mask was computed before costs
// a hash lookup.
#include <algorithm>
#include <numeric>
#include <unordered_map>

#include "edgelm/error.hpp"
#include "edgelm/grammar.hpp"
#include "edgelm/tokenizer.hpp"

namespace edgelm {
namespace {

constexpr int32_t kDead = -1;
constexpr int32_t kUnknown = -2;
constexpr size_t kMaxCachedStates = 8192;      // 8 MiB of transition rows
constexpr size_t kMaxMaskBytes = size_t{64} << 20;

struct KeyHash {
  size_t operator()(const std::vector<uint32_t>& k) const noexcept {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ k.size();
    for (uint32_t v : k) h = (h ^ v) * 0x100000001B3ull;
    return static_cast<size_t>(h ^ (h >> 29));
  }
};

}  // namespace

// --- TokenTrie --------------------------------------------------------------------------------

std::shared_ptr<const TokenTrie> TokenTrie::build(const Tokenizer& tok) {
  const int32_t n = tok.n_vocab();
  std::vector<std::string> pieces(static_cast<size_t>(n));
  std::vector<int32_t> eog;
  for (int32_t id = 0; id < n; ++id) {
    if (tok.is_eog(id)) {
      eog.push_back(id);
    } else if (!tok.is_control(id)) {
      pieces[static_cast<size_t>(id)] = tok.token_to_piece(id, false);
    }
  }
  return build(std::move(pieces), std::move(eog));
}

std::shared_ptr<const TokenTrie> TokenTrie::build(std::vector<std::string> pieces, std::vector<int32_t> eog) {
  auto t = std::make_shared<TokenTrie>();
  t->pieces_ = std::move(pieces);
  t->eog_ = std::move(eog);
  std::sort(t->eog_.begin(), t->eog_.end());
  std::vector<int32_t> order;
  for (size_t id = 0; id < t->pieces_.size(); ++id) {
    const size_t len = t->pieces_[id].size();
    if (len > 0 && len <= 0xFFFF && !t->is_eog(static_cast<int32_t>(id))) order.push_back(static_cast<int32_t>(id));
  }
  // Sorted pieces put a prefix before its extensions and equal pieces side by side, so each
  // token's node is the newest one when the token is reached.
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return t->pieces_[a] < t->pieces_[b]; });
  std::vector<uint32_t> path;  // node indices from the root down
  std::string_view prev;
  for (int32_t id : order) {
    const std::string_view p = t->pieces_[static_cast<size_t>(id)];
    size_t common = 0;
    while (common < p.size() && common < prev.size() && p[common] == prev[common]) ++common;
    for (; path.size() > common; path.pop_back()) t->nodes_[path.back()].subtree_end = static_cast<uint32_t>(t->nodes_.size());
    for (size_t d = common; d < p.size(); ++d) {
      path.push_back(static_cast<uint32_t>(t->nodes_.size()));
      t->nodes_.push_back({0, static_cast<uint32_t>(t->token_ids_.size()), static_cast<uint16_t>(d + 1),
                           static_cast<uint8_t>(p[d])});
    }
    t->token_ids_.push_back(id);
    t->max_depth_ = std::max(t->max_depth_, p.size());
    prev = p;
  }
  for (; !path.empty(); path.pop_back()) t->nodes_[path.back()].subtree_end = static_cast<uint32_t>(t->nodes_.size());
  t->nodes_.push_back({0, static_cast<uint32_t>(t->token_ids_.size()), 0, 0});  // sentinel
  return t;
}

bool TokenTrie::is_eog(int32_t id) const { return std::binary_search(eog_.begin(), eog_.end(), id); }

// --- GrammarConstraint ------------------------------------------------------------------------

struct GrammarConstraint::Cache {
  std::unordered_map<std::vector<uint32_t>, int32_t, KeyHash> ids;
  std::vector<GrammarState> states;
  std::vector<int32_t> transitions;  // 256 per state: next state id, kDead or kUnknown
  std::unordered_map<int32_t, TokenMask> masks;
  size_t mask_bytes = 0;
  std::vector<uint32_t> key;  // scratch

  int32_t intern(const GrammarState& s) {
    key.clear();
    s.append_key(key);
    auto [it, fresh] = ids.try_emplace(key, static_cast<int32_t>(states.size()));
    if (fresh) {
      states.push_back(s);
      transitions.resize(transitions.size() + 256, kUnknown);
    }
    return it->second;
  }

  int32_t step(int32_t id, uint8_t byte) {
    const size_t slot = static_cast<size_t>(id) * 256 + byte;
    if (transitions[slot] != kUnknown) return transitions[slot];
    GrammarState next = states[static_cast<size_t>(id)];
    const char c = static_cast<char>(byte);
    const int32_t to = next.accept_bytes(std::string_view(&c, 1)) ? intern(next) : kDead;
    transitions[slot] = to;
    return to;
  }

  void clear() { *this = Cache{}; }
};

GrammarConstraint::GrammarConstraint(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const TokenTrie> trie)
    : grammar_(std::move(grammar)), trie_(std::move(trie)), state_(grammar_), cache_(std::make_unique<Cache>()) {}

GrammarConstraint::GrammarConstraint(const GrammarConstraint& o)
    : grammar_(o.grammar_), trie_(o.trie_), state_(o.state_), cache_(std::make_unique<Cache>()) {}

GrammarConstraint& GrammarConstraint::operator=(const GrammarConstraint& o) {
  if (this != &o) *this = GrammarConstraint(o);
  return *this;
}

GrammarConstraint::GrammarConstraint(GrammarConstraint&&) noexcept = default;
GrammarConstraint& GrammarConstraint::operator=(GrammarConstraint&&) noexcept = default;
GrammarConstraint::~GrammarConstraint() = default;

int32_t GrammarConstraint::current_id() {
  if (cache_->states.size() > kMaxCachedStates || cache_->mask_bytes > kMaxMaskBytes) {
    cache_->clear();
    state_id_ = -1;
  }
  if (state_id_ < 0) state_id_ = cache_->intern(state_);
  return state_id_;
}

bool GrammarConstraint::allows(int32_t token) {
  if (token < 0 || token >= trie_->n_vocab()) return false;
  if (trie_->is_eog(token)) return state_.is_complete();
  const std::string& piece = trie_->piece(token);
  if (piece.empty()) return false;
  int32_t id = current_id();
  for (char c : piece) {
    id = cache_->step(id, static_cast<uint8_t>(c));
    if (id == kDead) return false;
  }
  return true;
}

const TokenMask& GrammarConstraint::allowed() {
  const int32_t start = current_id();
  if (auto it = cache_->masks.find(start); it != cache_->masks.end()) return it->second;
  TokenMask mask((static_cast<size_t>(trie_->n_vocab()) + 63) / 64, 0);
  const auto nodes = trie_->nodes();
  const auto ids = trie_->token_ids();
  std::vector<int32_t> at_depth(trie_->max_depth() + 1);
  at_depth[0] = start;
  for (size_t i = 0; i + 1 < nodes.size();) {
    const TokenTrie::Node& node = nodes[i];
    const int32_t s = cache_->step(at_depth[node.depth - 1u], node.byte);
    if (s == kDead) {
      i = node.subtree_end;
      continue;
    }
    at_depth[node.depth] = s;
    for (uint32_t k = node.first_token; k < nodes[i + 1].first_token; ++k)
      mask[static_cast<size_t>(ids[k]) >> 6] |= uint64_t{1} << (ids[k] & 63);
    ++i;
  }
  if (state_.is_complete())
    for (int32_t t : trie_->eog()) mask[static_cast<size_t>(t) >> 6] |= uint64_t{1} << (t & 63);
  cache_->mask_bytes += mask.size() * sizeof(uint64_t);
  return cache_->masks.emplace(start, std::move(mask)).first->second;
}

void GrammarConstraint::accept(int32_t token) {
  if (!allows(token)) {
    const std::string piece = token >= 0 && token < trie_->n_vocab() ? trie_->piece(token) : "";
    throw Error("grammar: token " + std::to_string(token) + " ('" + piece + "') is not allowed here",
                "sample with the grammar's mask (GrammarConstraint::allowed)");
  }
  if (trie_->is_eog(token)) return;
  int32_t id = current_id();
  for (char c : trie_->piece(token)) id = cache_->step(id, static_cast<uint8_t>(c));
  state_ = cache_->states[static_cast<size_t>(id)];
  state_id_ = id;
}

void GrammarConstraint::reset() {
  state_ = GrammarState(grammar_);
  state_id_ = -1;
}

}  // namespace edgelm
