// The ChatTemplate API: error kinds and positions, inputs, the GGUF's own template, and the
// limits that stop hostile templates (these are also what the fuzzer exercises).
#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "edgelm/chat_template.hpp"
#include "edgelm/gguf.hpp"
#include "support/test_models.hpp"

namespace edgelm {
namespace {

using json = nlohmann::ordered_json;
using Kind = ChatTemplateError::Kind;

std::string render(std::string_view source, const ChatTemplateInputs& in = {},
                   const ChatTemplateLimits& limits = {}) {
  return ChatTemplate::parse(source).render(in, limits);
}

// Runs `fn`, which must throw ChatTemplateError, and returns the error.
template <typename Fn>
ChatTemplateError error_of(Fn fn) {
  try {
    fn();
  } catch (const ChatTemplateError& e) {
    return e;
  }
  ADD_FAILURE() << "expected a ChatTemplateError";
  return ChatTemplateError(Kind::Runtime, 0, 0, "none");
}

ChatTemplateError parse_error(std::string_view source) {
  return error_of([&] { ChatTemplate::parse(source); });
}

ChatTemplateError render_error(std::string_view source, const ChatTemplateLimits& limits = {}) {
  auto t = ChatTemplate::parse(source);
  return error_of([&] { t.render(ChatTemplateInputs{}, limits); });
}

TEST(ChatTemplateApi, RendersAConversation) {
  auto t = ChatTemplate::parse(
      "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{{ eos_token }}{% endfor %}"
      "{% if add_generation_prompt %}<assistant>{% endif %}");
  EXPECT_EQ(t.render({{"user", "Hi"}, {"assistant", "Hello"}}, true, "<s>", "</s>"),
            "<s><user>Hi</s><assistant>Hello</s><assistant>");
  EXPECT_EQ(t.render({{"user", "Hi"}}, false, "", ""), "<user>Hi");
}

TEST(ChatTemplateApi, ParsedTemplateIsAValueAndKeepsItsSource) {
  const std::string src = "{{ 1 + 1 }}\r\n";
  auto a = ChatTemplate::parse(src);
  ChatTemplate b = a;  // copies share the immutable program
  ChatTemplate c = std::move(a);
  EXPECT_EQ(b.render(ChatTemplateInputs{}), "2");
  EXPECT_EQ(c.render(ChatTemplateInputs{}), "2");
  EXPECT_EQ(b.source(), src);
}

TEST(ChatTemplateApi, ToolsAndDocumentsAreAlwaysDefined) {
  ChatTemplateInputs in;
  EXPECT_EQ(render("{{ tools is defined }} {{ tools is none }} {{ documents is none }}", in),
            "True True True");
  in.tools = json::array({{{"name", "f"}}});
  EXPECT_EQ(render("{{ tools[0].name }} {{ tools|tojson }}", in), "f [{\"name\": \"f\"}]");
}

TEST(ChatTemplateApi, ExtraContextAddsVariablesButNotReservedOnes) {
  ChatTemplateInputs in;
  in.bos_token = "<s>";
  in.extra_context = {{"enable_thinking", false}, {"bos_token", "<override>"}};
  EXPECT_EQ(render("{{ enable_thinking }} {{ bos_token }}", in), "False <override>");
  in.extra_context = {{"messages", json::array()}};
  EXPECT_EQ(error_of([&] { render("x", in); }).kind(), Kind::Runtime);
}

TEST(ChatTemplateApi, KeyOrderOfInputsIsKept) {
  ChatTemplateInputs in;
  in.extra_context = {{"d", {{"zeta", 1}, {"alpha", 2}}}};
  EXPECT_EQ(render("{{ d|tojson }} {% for k, v in d.items() %}{{ k }}{% endfor %}", in),
            "{\"zeta\": 1, \"alpha\": 2} zetaalpha");
}

TEST(ChatTemplateApi, ArbitraryBytesInContentPassThrough) {
  const std::string bytes = "caf\xC3\xA9 \xFF\xFE end";  // not valid UTF-8
  ChatTemplateInputs in;
  in.messages = json::array({{{"role", "user"}, {"content", bytes}}});
  // nlohmann only checks UTF-8 when dumping; the interpreter passes the bytes through.
  EXPECT_EQ(render("[{{ messages[0].content }}]", in), "[" + bytes + "]");
  EXPECT_EQ(render("{{ messages[0].content|length }}", in), "11");  // é: one; bad bytes: one each
  EXPECT_EQ(render("{{ messages[0].content|upper }}", in), "CAF\xC3\x89 \xFF\xFE END");
}

TEST(ChatTemplateApi, StrftimeNowUsesTheGivenOrTheCurrentTime) {
  ChatTemplateInputs in;
  std::tm tm{};
  tm.tm_year = 124;
  tm.tm_mon = 6;
  tm.tm_mday = 26;
  in.now = tm;
  EXPECT_EQ(render("{{ strftime_now('%d %b %Y') }}", in), "26 Jul 2024");
  in.now.reset();
  EXPECT_TRUE(std::regex_match(render("{{ strftime_now('%d %b %Y') }}", in),
                               std::regex("\\d\\d [A-Z][a-z][a-z] \\d{4}")));
}

TEST(ChatTemplateApi, RenderingIsThreadSafe) {
  auto t = ChatTemplate::parse(
      "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + m.content|length %}"
      "{% endfor %}{{ ns.n }}{{ messages|map(attribute='role')|join(',') }}");
  std::vector<ChatTemplate::Message> msgs;
  for (int i = 0; i < 50; ++i) msgs.push_back({i % 2 ? "assistant" : "user", std::string(i, 'x')});
  const std::string expected = t.render(msgs, false, "", "");
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&, k] {
      for (int r = 0; r < 50; ++r) ok[k] += t.render(msgs, false, "", "") == expected;
    });
  }
  for (auto& th : threads) th.join();
  for (int k = 0; k < 4; ++k) EXPECT_EQ(ok[k], 50);
}

// --- errors ---------------------------------------------------------------------------------

TEST(ChatTemplateErrors, SyntaxErrorsNameTheLineAndColumn) {
  auto e = parse_error("line one\n  {{ 1 + }}");
  EXPECT_EQ(e.kind(), Kind::Syntax);
  EXPECT_EQ(e.line(), 2);
  EXPECT_EQ(e.column(), 10);
  EXPECT_NE(std::string(e.what()).find("line 2, column 10"), std::string::npos) << e.what();
  EXPECT_FALSE(e.hint().empty());
}

TEST(ChatTemplateErrors, UnterminatedConstructs) {
  EXPECT_EQ(parse_error("{% if true %}never closed").kind(), Kind::Syntax);
  EXPECT_EQ(parse_error("{% for x in y %}{% if x %}{% endfor %}").kind(), Kind::Syntax);
  EXPECT_EQ(parse_error("{{ 'unterminated }}").kind(), Kind::Syntax);
  EXPECT_EQ(parse_error("{{ x ").kind(), Kind::Syntax);
  EXPECT_EQ(parse_error("{# never closed").kind(), Kind::Syntax);
  EXPECT_EQ(parse_error("{% raw %}no end").kind(), Kind::Syntax);
  EXPECT_EQ(parse_error("{{ [1, 2 }}").kind(), Kind::Syntax);
}

TEST(ChatTemplateErrors, UnknownFilterOrTest) {
  auto e = parse_error("a\n{{ x|shout }}");
  EXPECT_EQ(e.kind(), Kind::Syntax);
  EXPECT_EQ(e.line(), 2);
  EXPECT_NE(e.detail().find("shout"), std::string::npos);
  EXPECT_EQ(parse_error("{{ x is loud }}").kind(), Kind::Syntax);
  // Inside an if-block Jinja only fails when the filter actually runs.
  auto t = ChatTemplate::parse("{% if flag %}{{ x|shout }}{% endif %}done");
  EXPECT_EQ(t.render(ChatTemplateInputs{}), "done");
  ChatTemplateInputs in;
  in.extra_context = {{"flag", true}};
  EXPECT_EQ(error_of([&] { t.render(in); }).kind(), Kind::Runtime);
}

TEST(ChatTemplateErrors, UnsupportedFeaturesSaySo) {
  EXPECT_EQ(parse_error("{% include 'other.jinja' %}").kind(), Kind::Unsupported);
  EXPECT_EQ(parse_error("{% extends 'base' %}").kind(), Kind::Unsupported);
  EXPECT_EQ(parse_error("{% call m() %}x{% endcall %}").kind(), Kind::Unsupported);
  EXPECT_EQ(parse_error("{% for x in y recursive %}{% endfor %}").kind(), Kind::Unsupported);
  EXPECT_EQ(parse_error("{{ f(*args) }}").kind(), Kind::Unsupported);
  EXPECT_EQ(render_error("{{ [1]|groupby('x') }}").kind(), Kind::Unsupported);
  EXPECT_EQ(render_error("{{ 2 ** 70 }}").kind(), Kind::Unsupported);  // ints are 64-bit
}

TEST(ChatTemplateErrors, RaiseExceptionKeepsTheMessage) {
  auto e = render_error("x\n{{ raise_exception('Conversation roles must alternate') }}");
  EXPECT_EQ(e.kind(), Kind::Raised);
  EXPECT_EQ(e.detail(), "Conversation roles must alternate");
  EXPECT_EQ(e.line(), 2);
}

TEST(ChatTemplateErrors, RuntimeErrorsLikeJinja) {
  EXPECT_EQ(render_error("{{ missing.attr }}").detail(), "'missing' is undefined");
  EXPECT_EQ(render_error("{{ 'a' + 1 }}").kind(), Kind::Runtime);
  EXPECT_EQ(render_error("{{ [].append(1) }}").kind(), Kind::Runtime);  // immutable sandbox
  EXPECT_EQ(render_error("{{ range(200000)|length }}").kind(), Kind::Runtime);  // sandbox cap
}

// --- limits: hostile templates end with an error, quickly ------------------------------------

class ChatTemplateLimitsTest : public ::testing::Test {
 protected:
  void expect_limit(std::string_view source, const ChatTemplateLimits& limits = {}) {
    ChatTemplateError e = error_of([&] {
      auto t = ChatTemplate::parse(source);
      t.render(ChatTemplateInputs{}, limits);
    });
    EXPECT_EQ(e.kind(), Kind::Limit) << e.message();
  }
};

TEST_F(ChatTemplateLimitsTest, EndlessLoopsRunOutOfSteps) {
  ChatTemplateLimits small;
  small.max_steps = 2'000'000;
  expect_limit(
      "{% for i in range(100000) %}{% for j in range(100000) %}{{ '' }}{% endfor %}{% endfor %}",
      small);
  // With the default limits too.
  expect_limit("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}");
}

// Copying a list costs a step per element: a loop that copies a growing list spends its budget
// on the copies (quadratic work), not only on its iterations.
TEST_F(ChatTemplateLimitsTest, CopiedElementsCountAsSteps) {
  ChatTemplateLimits small;
  small.max_steps = 100'000;
  const auto grow = [](int n, const char* copy) {
    return "{% set ns = namespace(l=[]) %}{% for i in range(" + std::to_string(n) + ") %}{% set ns.l = " + copy +
           " %}{% endfor %}{{ ns.l|length }}";
  };
  for (const char* copy : {"ns.l + [i]", "ns.l * 1 + [i]", "(ns.l + [i])|list"}) {
    // 100 iterations copy ~5,000 elements: well inside the budget.
    EXPECT_EQ(ChatTemplate::parse(grow(100, copy)).render(ChatTemplateInputs{}, small), "100") << copy;
    // 1,000 iterations copy ~500,000 elements, 5x the budget, in ~6,000 iterations' steps.
    expect_limit(grow(1000, copy), small);
  }
}

TEST_F(ChatTemplateLimitsTest, ExponentialStringsHitTheSizeLimit) {
  expect_limit(
      "{% set ns = namespace(s='ab') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}"
      "{% endfor %}{{ ns.s|length }}");
  expect_limit("{{ 'x' * 10000000000 }}");
  expect_limit("{{ [1] * 10000000000 }}");
  expect_limit("{{ 'abc'|replace('', 'abcdefgh' * 10000000) }}");
  expect_limit("{{ 'x'|indent(10000000000) }}");
  expect_limit("{{ '%99999999999s' % 'x' }}");
}

TEST_F(ChatTemplateLimitsTest, OutputIsCapped) {
  ChatTemplateLimits small;
  small.max_output_bytes = 1 << 20;
  expect_limit("{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}", small);
}

TEST_F(ChatTemplateLimitsTest, DeepNestingIsRefusedNotACrash) {
  std::string parens = "{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}";
  EXPECT_EQ(parse_error(parens).kind(), Kind::Limit);
  std::string ifs;
  for (int i = 0; i < 2000; ++i) ifs += "{% if true %}";
  EXPECT_EQ(parse_error(ifs).kind(), Kind::Limit);
  std::string chain = "{{ 1";
  for (int i = 0; i < 20000; ++i) chain += " + 1";
  EXPECT_EQ(parse_error(chain + " }}").kind(), Kind::Limit);
  EXPECT_EQ(parse_error("{{ " + std::string(100000, '-') + "1 }}").kind(), Kind::Limit);
  EXPECT_EQ(parse_error("{{ " + [] {
                          std::string s;
                          for (int i = 0; i < 3000; ++i) s += "not ";
                          return s;
                        }() + "x }}").kind(),
            Kind::Limit);
}

TEST_F(ChatTemplateLimitsTest, RunawayRecursionStops) {
  expect_limit("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
  expect_limit(
      "{% set ns = namespace(x=[]) %}{% for i in range(1000) %}{% set ns.x = [ns.x] %}"
      "{% endfor %}{{ ns.x }}");
  // A namespace that contains itself cannot be printed (Python raises RecursionError).
  expect_limit("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}");
}

TEST_F(ChatTemplateLimitsTest, DeeplyNestedInputIsRefused) {
  json deep = json::array();
  for (int i = 0; i < 1000; ++i) deep = json::array({deep});
  ChatTemplateInputs in;
  in.extra_context = {{"deep", deep}};
  auto t = ChatTemplate::parse("{{ deep|length }}");
  EXPECT_EQ(error_of([&] { t.render(in); }).kind(), Kind::Limit);
}

// --- the model file's own template ---------------------------------------------------------

TEST(ChatTemplateModel, SmolLM2TemplateFromTheGguf) {
  const std::string path = test::require_model("SmolLM2-135M-Instruct.Q4_1.gguf");
  if (path.empty()) return;
  auto file = gguf::File::open(path);
  const std::string source = file.get_string("tokenizer.chat_template");
  EXPECT_EQ(source, test::read_file(test::fixture_path("templates/smollm2.jinja")));
  auto t = ChatTemplate::parse(source);
  EXPECT_EQ(t.render({{"user", "Hello!"}}, true, "<|im_start|>", "<|im_end|>"),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
            "Face<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n");
}

}  // namespace
}  // namespace edgelm
