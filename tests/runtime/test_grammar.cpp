// Grammar tests: the corpus in tests/fixtures/grammar/corpus.json (strings each GBNF construct
// and each JSON Schema feature must accept or reject, and the errors bad grammars and schemas
// get), state copies, partial UTF-8, token masks against feeding every token's bytes on real
// vocabularies, and the sampler under a grammar.
#include "edgelm/grammar.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <limits>
#include <random>
#include <string>
#include <vector>

#include "edgelm/error.hpp"
#include "edgelm/gguf.hpp"
#include "edgelm/sampler.hpp"
#include "edgelm/tokenizer.hpp"
#include "support/test_models.hpp"

namespace edgelm {
namespace {

using ojson = nlohmann::ordered_json;

const ojson& corpus() {
  static const ojson c = ojson::parse(test::read_file(test::fixture_path("grammar/corpus.json")));
  return c;
}

bool matches(const std::shared_ptr<const Grammar>& g, const std::string& text) {
  GrammarState s(g);
  return s.accept_bytes(text) && s.is_complete();
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

void check_cases(const std::shared_ptr<const Grammar>& g, const ojson& c, const std::string& what) {
  for (const auto& s : c["accept"]) EXPECT_TRUE(matches(g, s.get<std::string>())) << what << " should accept " << s;
  for (const auto& s : c["reject"]) EXPECT_FALSE(matches(g, s.get<std::string>())) << what << " should reject " << s;
}

TEST(GrammarCorpus, EachConstructAcceptsAndRejectsItsStrings) {
  ASSERT_GE(corpus()["grammars"].size(), 20u);
  for (const auto& c : corpus()["grammars"]) {
    const std::string name = c["name"];
    std::shared_ptr<const Grammar> g;
    ASSERT_NO_THROW(g = Grammar::parse(c["gbnf"].get<std::string>())) << name;
    check_cases(g, c, name);
  }
}

TEST(GrammarCorpus, BadGrammarsGetOneLineErrorsNamingTheProblem) {
  for (const auto& c : corpus()["grammar_errors"]) {
    const std::string msg = error_of([&] { Grammar::parse(c["gbnf"].get<std::string>()); });
    EXPECT_NE(msg.find(c["error"].get<std::string>()), std::string::npos) << c["gbnf"] << " gave: " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(GrammarCorpus, EachSchemaFeatureAcceptsAndRejectsItsDocuments) {
  ASSERT_GE(corpus()["schemas"].size(), 30u);
  for (const auto& c : corpus()["schemas"]) {
    const std::string name = c["name"];
    std::string gbnf;
    ASSERT_NO_THROW(gbnf = json_schema_to_grammar(c["schema"])) << name;
    std::shared_ptr<const Grammar> g;
    ASSERT_NO_THROW(g = Grammar::parse(gbnf)) << name << "\n" << gbnf;
    check_cases(g, c, name + "\n" + gbnf);
  }
}

TEST(GrammarCorpus, UnsupportedSchemaKeywordsAreErrorsNamingKeywordAndPath) {
  for (const auto& c : corpus()["schema_errors"]) {
    const std::string msg = error_of([&] { json_schema_to_grammar(c["schema"]); });
    EXPECT_NE(msg.find(c["error"].get<std::string>()), std::string::npos) << c["schema"] << " gave: " << msg;
  }
}

// Found by tests/fuzz/fuzz_grammar.cpp: a pattern's {m,n} was copied into the GBNF unchecked, so
// {8,4} compiled to a grammar the parser then refused. Bad counts are the schema's error now.
TEST(JsonSchema, PatternRepetitionCountsAreCheckedWhereTheSchemaIs) {
  const auto pattern_error = [](const std::string& pattern) {
    return error_of([&] { json_schema_to_grammar(ojson{{"type", "string"}, {"pattern", pattern}}); });
  };
  EXPECT_NE(pattern_error("^[a-z]{8,4}$").find("{8,4} has n < m"), std::string::npos);
  EXPECT_NE(pattern_error("^a{1,2,3}$").find("only numbers"), std::string::npos);
  EXPECT_NE(pattern_error("^a{1,x}$").find("only numbers"), std::string::npos);
  EXPECT_NE(pattern_error("^a{20000}$").find("above 10000"), std::string::npos);
  const auto g = Grammar::parse(json_schema_to_grammar(ojson{{"type", "string"}, {"pattern", "^a{2,}b{,2}c{3}$"}}));
  EXPECT_TRUE(matches(g, R"("aaabccc")"));
  EXPECT_TRUE(matches(g, R"("aabbccc")"));
  EXPECT_FALSE(matches(g, R"("abccc")"));
  EXPECT_FALSE(matches(g, R"("aabbbccc")"));
}

TEST(JsonSchema, PropertiesFollowTheSchemaOrder) {
  const auto g = Grammar::parse(json_schema_to_grammar(
      ojson::parse(R"({"type":"object","properties":{"z":{"type":"integer"},"a":{"type":"integer"}},"required":["z","a"]})")));
  EXPECT_TRUE(matches(g, R"({"z": 1, "a": 2})"));
  EXPECT_FALSE(matches(g, R"({"a": 2, "z": 1})"));
}

TEST(JsonSchema, AnyObjectGrammarTakesNestedObjectsOnly) {
  const auto g = Grammar::parse(json_object_grammar());
  EXPECT_TRUE(matches(g, R"({"a": {"b": [1, 2, {"c": "d"}]}, "e": -1.5e3})"));
  EXPECT_FALSE(matches(g, "[1]"));
  EXPECT_FALSE(matches(g, "\"x\""));
}

TEST(GrammarState, CopiesBranchWithoutTouchingTheOriginal) {
  const auto g = Grammar::parse(R"(root ::= "ab" ("c" | "d"))");
  GrammarState s(g);
  ASSERT_TRUE(s.accept_bytes("ab"));
  GrammarState branch = s;
  ASSERT_TRUE(branch.accept_bytes("c"));
  EXPECT_TRUE(branch.is_complete());
  EXPECT_FALSE(s.is_complete());
  EXPECT_TRUE(s.accept_bytes("d"));
  EXPECT_FALSE(branch.accepts_bytes("d"));
}

TEST(GrammarState, RefusedBytesLeaveTheStateAsItWas) {
  const auto g = Grammar::parse(R"(root ::= "abc")");
  GrammarState s(g);
  ASSERT_TRUE(s.accept_bytes("a"));
  const GrammarState before = s;
  EXPECT_FALSE(s.accept_bytes("bx"));
  EXPECT_TRUE(s == before);
  EXPECT_TRUE(s.accept_bytes("bc"));
}

TEST(GrammarState, PartialUtf8IsHeldUntilTheCharacterIsWhole) {
  const auto g = Grammar::parse(R"(root ::= "é" | "ü" | [一-龥])");
  GrammarState s(g);
  EXPECT_TRUE(s.accepts_bytes("\xC3"));      // lead byte of é and ü
  EXPECT_FALSE(s.accepts_bytes("\xC4"));     // lead byte of Ā..ſ: nothing here starts with it
  EXPECT_FALSE(s.accepts_bytes("\xC3\xA0")); // à
  EXPECT_FALSE(s.accepts_bytes("\x80"));     // a stray continuation byte
  ASSERT_TRUE(s.accept_bytes("\xC3"));
  EXPECT_FALSE(s.is_complete());
  ASSERT_TRUE(s.accept_bytes("\xA9"));
  EXPECT_TRUE(s.is_complete());
  GrammarState cjk(g);
  EXPECT_TRUE(cjk.accept_bytes("\xE4\xB8"));  // first two bytes of 一 (U+4E00)
  EXPECT_TRUE(cjk.accept_bytes("\x80"));
  EXPECT_TRUE(cjk.is_complete());
  EXPECT_FALSE(GrammarState(g).accepts_bytes("\xC1\xA9"));  // overlong form of 'i'
}

TEST(GrammarState, RunsOfQuantifiersOnOneElementAreOneQuantifier) {
  // x++...+ is x+ (and x+?, x?+, x** are x*, x?? is x?): one parse of a run of x, not 2^n.
  const std::string plus40(40, '+');
  const std::string many(200, ',');
  const std::vector<std::pair<std::string, std::pair<std::string, std::string>>> cases = {
      {"root ::= \"a\" \",\"" + plus40, {"a" + many, "a"}},
      {"root ::= \"a\" \",\"+?+?+?+?", {"a", "ab"}},
      {"root ::= \"a\" \",\"??????", {"a,", "a,,"}},
      {"root ::= \"a\" [0-9]*+*+*+ \"b\"", {"a" + std::string(300, '7') + "b", "a7"}},
  };
  for (const auto& [text, io] : cases) {
    SCOPED_TRACE(text);
    const auto g = Grammar::parse(text);
    GrammarState s(g);
    ASSERT_TRUE(s.accept_bytes(io.first));
    EXPECT_TRUE(s.is_complete());
    GrammarState t(g);
    EXPECT_FALSE(t.accept_bytes(io.second) && t.is_complete());
  }
  GrammarState once(Grammar::parse("root ::= \"a\" \",\"+?+?+?+?"));
  EXPECT_TRUE(once.accept_bytes("a,,,") && once.is_complete());  // +? is *: any run of commas
}

TEST(GrammarState, AStepThatWouldExpandWithoutEndIsRefused) {
  // a24 ::= a23 | a23, ..., a1 ::= "," | ",": one distinct parse, reached in 2^24 ways. The
  // expansions of one step are bounded, and going past the bound is the "too ambiguous" error
  // instead of minutes of work.
  std::string text = "root ::= \"a\" a24\na1 ::= \",\" | \",\"\n";
  for (int k = 2; k <= 24; ++k)
    text += "a" + std::to_string(k) + " ::= a" + std::to_string(k - 1) + " | a" + std::to_string(k - 1) + "\n";
  GrammarState s(Grammar::parse(text));
  try {
    s.accept_bytes("a,");
    FAIL() << "2^24 expansions were made";
  } catch (const edgelm::Error& e) {
    EXPECT_NE(e.message().find("more than 65536 ways to go on"), std::string::npos) << e.message();
    EXPECT_NE(e.message().find("too ambiguous"), std::string::npos) << e.message();
  }
}

// --- token masks ------------------------------------------------------------------------------

// Feeds `prefix` byte by byte through the vocabulary's single-byte tokens.
void feed_bytes(GrammarConstraint& c, const std::string& prefix, const std::vector<int32_t>& byte_token) {
  for (unsigned char b : prefix) {
    ASSERT_GE(byte_token[b], 0) << "no single-byte token for " << int{b};
    c.accept(byte_token[b]);
  }
}

std::vector<int32_t> byte_tokens(const TokenTrie& trie) {
  std::vector<int32_t> out(256, -1);
  for (int32_t id = 0; id < trie.n_vocab(); ++id)
    if (trie.piece(id).size() == 1 && out[static_cast<unsigned char>(trie.piece(id)[0])] < 0)
      out[static_cast<unsigned char>(trie.piece(id)[0])] = id;
  return out;
}

// The mask and the fast check against the definition: a token is allowed when its bytes are.
void expect_mask_is_brute_force(GrammarConstraint& c, const std::string& where) {
  const TokenMask& mask = c.allowed();
  const TokenTrie& trie = c.trie();
  int allowed = 0, mismatches = 0;
  for (int32_t t = 0; t < trie.n_vocab(); ++t) {
    const bool want = trie.is_eog(t) ? c.state().is_complete()
                                     : !trie.piece(t).empty() && c.state().accepts_bytes(trie.piece(t));
    allowed += want;
    if (mask_has(mask, t) != want || c.allows(t) != want) {
      if (++mismatches <= 5) ADD_FAILURE() << where << ": token " << t << " '" << trie.piece(t) << "' expected " << want;
    }
  }
  EXPECT_EQ(mismatches, 0) << where;
  EXPECT_GT(allowed, 0) << where;
}

struct MaskCase {
  std::string prefix;
  const char* what;
};

void check_masks(const std::string& model_file, const std::vector<MaskCase>& cases) {
  const std::string path = test::require_model(model_file);
  if (path.empty()) return;
  const auto tok = Tokenizer::from_gguf(gguf::File::open(path));
  const auto trie = TokenTrie::build(tok);
  const auto schema = ojson::parse(R"({"type":"object","properties":{
      "name":{"type":"string","maxLength":12},"age":{"type":"integer","minimum":0,"maximum":150},
      "tags":{"type":"array","items":{"enum":["a","bé"]},"maxItems":3}},"required":["name"]})");
  const auto g = Grammar::parse(json_schema_to_grammar(schema));
  const auto bytes = byte_tokens(*trie);
  for (const MaskCase& mc : cases) {
    GrammarConstraint c(g, trie);
    feed_bytes(c, mc.prefix, bytes);
    expect_mask_is_brute_force(c, mc.what);
  }
}

TEST(GrammarMask, EqualsFeedingEveryTokenOnSmolLM2) {
  check_masks("SmolLM2-135M-Instruct.Q4_1.gguf",
              {{"", "start"},
               {"{\n  ", "before a key"},
               {"{\"na", "inside a key"},
               {"{\"name\": \"Jo", "inside a string"},
               {"{\"name\": \"\xC3", "inside a UTF-8 character"},
               {"{\"name\": \"abcdefghijk", "one character before maxLength"},
               {"{\"name\": \"x\", \"age\": 1", "inside a bounded integer"},
               {"{\"name\": \"x\", \"tags\": [\"b", "inside an enum"},
               {"{\"name\": \"x\"}", "complete: only the end of text"}});
}

TEST(GrammarMask, EqualsFeedingEveryTokenOnGemma3) {
  check_masks("gemma-3-270m-q4_k_m.gguf", {{"{\"name\": \"Jo", "inside a string"}, {"{\"name\": \"x\", \"age\": 1", "inside a bounded integer"}});
}

TEST(GrammarMask, SyntheticVocabularyTokensSpanningSeveralSymbols) {
  const auto trie = TokenTrie::build({"{\"", "a", "\":", "\": 1}", "1", "}", "", "\xC3", "\xA9", "é}"}, {6});
  const auto g = Grammar::parse(R"(root ::= "{\"" [aé]+ "\": " [0-9] "}")");
  GrammarConstraint c(g, trie);
  expect_mask_is_brute_force(c, "start");
  c.accept(0);  // {"
  EXPECT_TRUE(c.allows(1));
  EXPECT_TRUE(c.allows(7));   // the first byte of é
  EXPECT_FALSE(c.allows(8));  // a continuation byte with no lead
  c.accept(7);
  EXPECT_TRUE(c.allows(8));
  EXPECT_FALSE(c.allows(1));
  c.accept(8);
  EXPECT_TRUE(c.allows(3));   // ": 1} finishes the text in one token
  EXPECT_FALSE(c.allows(6));  // end of text: not yet
  c.accept(3);
  EXPECT_TRUE(c.is_complete());
  EXPECT_TRUE(c.allows(6));
  expect_mask_is_brute_force(c, "complete");
  EXPECT_THROW(c.accept(1), Error);
}

// --- sampler ----------------------------------------------------------------------------------

std::string sample_text(Sampler& s, const TokenTrie& trie, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> logits(static_cast<size_t>(trie.n_vocab()));
  std::string text;
  for (int step = 0; step < 200; ++step) {
    for (float& l : logits) l = normal(rng);
    const int32_t t = s.sample(logits);
    if (trie.is_eog(t)) return text;
    s.accept(t);
    text += trie.piece(t);
  }
  return text + "(unfinished)";
}

TEST(SamplerGrammar, GreedyAndSampledTextFollowTheGrammar) {
  std::vector<std::string> pieces;
  for (const char* p : {"tr", "ue", "true", "fal", "se", "n", "ull", " ", "1", "x", "[", "]", ",", "t", "r", "u", "e", "f", "a", "l", "s"})
    pieces.push_back(p);  // single letters: every prefix of the grammar's words can go on
  pieces.push_back("");  // end of text
  const auto trie = TokenTrie::build(pieces, {static_cast<int32_t>(pieces.size() - 1)});
  const auto g = Grammar::parse(R"(root ::= "[" ( v ( "," v )* )? "]"
v ::= "true" | "false" | "null")");
  for (float temp : {0.0f, 1.0f}) {
    for (uint64_t seed = 1; seed <= 20; ++seed) {
      SamplerParams p;
      p.temp = temp;
      p.seed = seed;
      Sampler s(p);
      s.set_grammar(GrammarConstraint(g, trie));
      const std::string text = sample_text(s, *trie, seed);
      EXPECT_TRUE(matches(g, text)) << "temp " << temp << " seed " << seed << ": " << text;
    }
  }
}

// The constrained sampler's shortcuts (greedy checks its pick, top-k looks for the k best
// allowed tokens) draw exactly what masking the logits first and sampling plainly draws.
TEST(SamplerGrammar, ShortcutsDrawWhatMaskingFirstDraws) {
  std::vector<std::string> pieces;
  for (int c = 0; c < 128; ++c) pieces.push_back(c >= 32 ? std::string(1, static_cast<char>(c)) : "");
  for (const char* p : {"12", "345", "-1", "1.5", "00", "9}", ", \"", "\": "}) pieces.push_back(p);
  const auto trie = TokenTrie::build(pieces, {0});
  const auto g = Grammar::parse(json_schema_to_grammar(ojson::parse(
      R"({"type":"object","properties":{"n":{"type":"integer","minimum":3,"maximum":500},"s":{"type":"string","maxLength":4}},"required":["n","s"]})")));
  for (int top_k : {0, 1, 5, 40}) {
    for (float temp : {0.0f, 0.7f, 1.5f}) {
      SamplerParams p;
      p.temp = temp;
      p.top_k = top_k;
      p.seed = 99;
      Sampler constrained(p), reference(p);
      constrained.set_grammar(GrammarConstraint(g, trie));
      GrammarConstraint shadow(g, trie);
      std::mt19937_64 rng(static_cast<uint64_t>(top_k) * 10 + static_cast<uint64_t>(temp * 10));
      std::normal_distribution<float> normal(0.0f, 2.0f);
      std::vector<float> logits(pieces.size());
      for (int step = 0; step < 40 && !shadow.is_complete(); ++step) {
        for (float& l : logits) l = normal(rng);
        std::vector<float> masked = logits;
        const TokenMask& m = shadow.allowed();
        for (size_t t = 0; t < masked.size(); ++t)
          if (!mask_has(m, static_cast<int32_t>(t))) masked[t] = -std::numeric_limits<float>::infinity();
        const int32_t got = constrained.sample(logits);
        ASSERT_EQ(got, reference.sample(masked)) << "top_k " << top_k << " temp " << temp << " step " << step;
        if (trie->is_eog(got)) break;
        constrained.accept(got);
        reference.accept(got);
        shadow.accept(got);
      }
    }
  }
}

TEST(SamplerGrammar, PromptTokensDoNotAdvanceTheGrammar) {
  const auto trie = TokenTrie::build({"a", "b", ""}, {2});
  Sampler s(SamplerParams{});
  s.set_grammar(GrammarConstraint(Grammar::parse(R"(root ::= "a")"), trie));
  const int32_t prompt[] = {1, 1, 1};
  s.accept_prompt(prompt);
  EXPECT_TRUE(s.grammar()->allows(0));
  EXPECT_THROW(s.accept(1), Error);
  s.accept(0);
  EXPECT_TRUE(s.grammar()->is_complete());
  s.reset();
  EXPECT_FALSE(s.grammar()->is_complete());
}

}  // namespace
}  // namespace edgelm
