// Grammar-constrained decoding: llama.cpp's GBNF syntax, compiled once into an immutable
// Grammar; a cheap, copyable GrammarState per sequence; a TokenTrie per vocabulary; and a
// GrammarConstraint that tells which tokens may come next.
//
//   auto g = edgelm::Grammar::parse(R"(root ::= "yes" | "no")");
//   auto trie = edgelm::TokenTrie::build(model->tokenizer());
//   edgelm::GrammarConstraint c(g, trie);
//   if (!c.allows(tok)) { const auto& mask = c.allowed(); /* bit t set: token t may come */ }
//   c.accept(tok);                                  // throws edgelm::Error if not allowed
//
//   auto schema_gbnf = edgelm::json_schema_to_grammar(nlohmann::ordered_json::parse(text));
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace edgelm {

class Tokenizer;
struct GrammarRules;  // the compiled form (src/runtime/grammar_rules.hpp)

// A GBNF grammar compiled into flat rules. Immutable and shareable across threads.
class Grammar {
 public:
  // Throws edgelm::Error naming the line and column of the first syntax error, an undefined
  // rule, a missing start rule, or a left-recursive rule.
  static std::shared_ptr<const Grammar> parse(std::string_view gbnf, std::string_view root = "root");
  explicit Grammar(std::unique_ptr<const GrammarRules> rules);
  ~Grammar();
  const GrammarRules& rules() const { return *rules_; }

 private:
  std::unique_ptr<const GrammarRules> rules_;
};

// Where a sequence is in a grammar: the set of pushdown stacks still alive, plus the bytes of a
// UTF-8 character seen only in part. Copy it to branch (speculative decoding, a server slot).
class GrammarState {
 public:
  explicit GrammarState(std::shared_ptr<const Grammar> grammar);
  // Advances over the bytes if the grammar allows them (a character may be split across calls)
  // and returns true; otherwise returns false and leaves the state as it was.
  bool accept_bytes(std::string_view bytes);
  bool accepts_bytes(std::string_view bytes) const;
  bool is_complete() const;  // the text so far is a whole sentence of the grammar
  bool is_dead() const { return stacks_.empty(); }
  const Grammar& grammar() const { return *grammar_; }

  // The state as a flat key (equal keys: equal states), for caches.
  void append_key(std::vector<uint32_t>& out) const;
  bool operator==(const GrammarState& o) const;

 private:
  bool advance_byte(uint8_t b);
  bool advance_codepoint(uint32_t cp);
  bool partial_can_complete() const;

  std::shared_ptr<const Grammar> grammar_;
  std::vector<std::vector<uint32_t>> stacks_;  // sorted, unique; each top is a character set
  uint32_t partial_ = 0;  // bits of a character whose bytes have not all arrived
  uint8_t partial_left_ = 0;  // continuation bytes still expected
  uint8_t partial_len_ = 0;   // bytes of that character in all
};

// The byte strings of a vocabulary's tokens in a trie, built once per vocabulary: walking it
// with a grammar state finds every allowed token in one pass over the shared prefixes.
class TokenTrie {
 public:
  static std::shared_ptr<const TokenTrie> build(const Tokenizer& tok);
  // The same from raw pieces (tests): eog marks the end-of-generation ids; an empty piece is a
  // token that never matches a grammar.
  static std::shared_ptr<const TokenTrie> build(std::vector<std::string> pieces, std::vector<int32_t> eog);

  struct Node {
    uint32_t subtree_end;  // index past this node's last descendant (pre-order layout)
    uint32_t first_token;  // tokens ending here: token_ids[first_token, next node's first_token)
    uint16_t depth;        // bytes from the root, >= 1
    uint8_t byte;
  };
  int32_t n_vocab() const { return static_cast<int32_t>(pieces_.size()); }
  const std::string& piece(int32_t id) const { return pieces_[static_cast<size_t>(id)]; }
  bool is_eog(int32_t id) const;
  std::span<const int32_t> eog() const { return eog_; }
  std::span<const Node> nodes() const { return nodes_; }
  std::span<const int32_t> token_ids() const { return token_ids_; }
  size_t max_depth() const { return max_depth_; }

 private:
  std::vector<std::string> pieces_;
  std::vector<int32_t> eog_;    // sorted
  std::vector<Node> nodes_;     // pre-order; one sentinel at the end holds the token count
  std::vector<int32_t> token_ids_;
  size_t max_depth_ = 0;
};

// One bit per token id; bit t set means token t may come next.
using TokenMask = std::vector<uint64_t>;
inline bool mask_has(const TokenMask& m, int32_t t) {
  return (m[static_cast<size_t>(t) >> 6] >> (static_cast<unsigned>(t) & 63)) & 1u;
}

// A grammar applied to a vocabulary for one sequence: the current state plus caches of the
// states met so far (interned, with their byte transitions and token masks), so a state seen
// before costs a lookup. Copies start with empty caches; not for use by two threads at once.
class GrammarConstraint {
 public:
  GrammarConstraint(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const TokenTrie> trie);
  GrammarConstraint(const GrammarConstraint& o);
  GrammarConstraint& operator=(const GrammarConstraint& o);
  GrammarConstraint(GrammarConstraint&&) noexcept;
  GrammarConstraint& operator=(GrammarConstraint&&) noexcept;
  ~GrammarConstraint();

  // The fast path: may `token` come next? (An end-of-generation token: only when complete.)
  bool allows(int32_t token);
  // Every token that may come next; cached per state.
  const TokenMask& allowed();
  // Advances over the token; throws edgelm::Error when the grammar does not allow it.
  void accept(int32_t token);
  void reset();  // back to the start of the grammar
  const GrammarState& state() const { return state_; }
  bool is_complete() const { return state_.is_complete(); }
  const TokenTrie& trie() const { return *trie_; }

 private:
  struct Cache;
  int32_t current_id();

  std::shared_ptr<const Grammar> grammar_;
  std::shared_ptr<const TokenTrie> trie_;
  GrammarState state_;
  int32_t state_id_ = -1;  // state_ in cache_, -1 when not looked up yet
  std::unique_ptr<Cache> cache_;
};

// GBNF for the documents a JSON Schema accepts (the keywords docs/grammar.md lists); throws
// edgelm::Error naming an unsupported keyword and where it is ("/properties/age: ...").
// Properties come in the schema's order: parse it as ordered_json to keep the file's order.
std::string json_schema_to_grammar(const nlohmann::ordered_json& schema);
std::string json_schema_to_grammar(const nlohmann::json& schema);
// The rules for several schemas in one grammar, for a choice between documents (e.g. the
// arguments of one of several functions): rule `name` matches a document of its schema, with
// leading whitespace as at a root; building blocks are shared and every other rule name is
// unique. There is no `root`: the caller adds one that uses these rules. Errors as above.
std::string json_schemas_to_rules(const std::vector<std::pair<std::string, nlohmann::ordered_json>>& schemas);
// GBNF for any JSON object.
std::string json_object_grammar();

}  // namespace edgelm
