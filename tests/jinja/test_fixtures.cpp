// Byte-for-byte agreement with Python jinja2 (the oracle, tests/oracle/gen_template_fixtures.py):
//  - every real chat template in tests/fixtures/templates/*.jinja rendered for every stored
//    conversation, with and without the generation prompt (expected.json);
//  - one small template per language feature (language.json).
// Where jinja2 raised, we must raise too; for raise_exception() the message must match.
#include <gtest/gtest.h>

#include <cctype>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "edgelm/chat_template.hpp"

namespace edgelm {
namespace {

using json = nlohmann::ordered_json;

const std::string kFixtureDir = std::string(EDGELM_SOURCE_DIR) + "/tests/fixtures/templates/";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json load(const std::string& name) { return json::parse(read_file(kFixtureDir + name)); }

// The oracle pins strftime_now() to this moment.
std::tm oracle_now() {
  std::tm tm{};
  tm.tm_year = 2025 - 1900;
  tm.tm_mon = 0;
  tm.tm_mday = 15;
  tm.tm_hour = 10;
  tm.tm_wday = 3;   // Wednesday
  tm.tm_yday = 14;
  return tm;
}

struct Case {
  std::string name;
  std::string template_source;
  ChatTemplateInputs inputs;
  bool expect_error = false;
  std::string expected;        // the render, or jinja2's error message
  std::string error_type;      // jinja2's exception class when expect_error
  std::string load_error;      // set when the fixture file could not be read
};

// Fixtures are read while the tests are registered; a broken file becomes one failing case
// instead of an exception at start-up.
template <typename Fn>
std::vector<Case> guarded(Fn fn) {
  try {
    return fn();
  } catch (const std::exception& e) {
    Case c;
    c.name = "fixture_file_error";
    c.load_error = e.what();
    return {c};
  }
}

// What gtest prints for a parameter (the name, not the struct's bytes).
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

std::string sanitize(std::string s) {
  for (char& c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return s;
}

void read_outcome(const json& c, Case& out) {
  if (c.contains("error")) {
    out.expect_error = true;
    out.error_type = c["error"]["type"].get<std::string>();
    out.expected = c["error"]["message"].get<std::string>();
  } else {
    out.expected = c["expected"].get<std::string>();
  }
}

std::vector<Case> template_cases() {
  std::vector<Case> cases;
  json fixture = load("expected.json");
  for (const json& c : fixture["cases"]) {
    Case k;
    std::string tmpl = c["template"].get<std::string>();
    k.template_source = read_file(kFixtureDir + tmpl + ".jinja");
    k.inputs.messages = c["messages"];
    k.inputs.add_generation_prompt = c["add_generation_prompt"].get<bool>();
    k.inputs.bos_token = c["bos_token"].get<std::string>();
    k.inputs.eos_token = c["eos_token"].get<std::string>();
    k.inputs.tools = c["tools"];
    k.inputs.extra_context = c["extra_context"];
    k.inputs.now = oracle_now();
    std::string extra = c["extra_context"].empty() ? "" : "_" + c["extra_context"].dump();
    k.name = sanitize(tmpl + "_" + c["conversation"].get<std::string>() + extra +
                      (k.inputs.add_generation_prompt ? "_gen" : ""));
    read_outcome(c, k);
    cases.push_back(std::move(k));
  }
  return cases;
}

std::vector<Case> language_cases() {
  std::vector<Case> cases;
  json fixture = load("language.json");
  json context = fixture["context"];
  for (const json& c : fixture["cases"]) {
    Case k;
    k.name = sanitize(c["name"].get<std::string>());
    k.template_source = c["template"].get<std::string>();
    k.inputs.messages = context["messages"];
    k.inputs.add_generation_prompt = true;
    k.inputs.bos_token = "<s>";
    k.inputs.eos_token = "</s>";
    k.inputs.now = oracle_now();
    for (const auto& [key, value] : context.items()) {
      if (key != "messages") k.inputs.extra_context[key] = value;
    }
    read_outcome(c, k);
    cases.push_back(std::move(k));
  }
  return cases;
}

void check(const Case& c) {
  ASSERT_TRUE(c.load_error.empty()) << c.load_error;
  std::string rendered;
  try {
    ChatTemplate tmpl = ChatTemplate::parse(c.template_source);
    rendered = tmpl.render(c.inputs);
  } catch (const ChatTemplateError& e) {
    ASSERT_TRUE(c.expect_error) << "jinja2 renders this, but we raised: " << e.message()
                                << "\nexpected: " << c.expected;
    if (c.error_type == "TemplateError") {  // raise_exception(): same message
      EXPECT_EQ(e.kind(), ChatTemplateError::Kind::Raised) << e.message();
      EXPECT_EQ(e.detail(), c.expected);
    } else {
      EXPECT_NE(e.kind(), ChatTemplateError::Kind::Raised) << e.message();
    }
    return;
  }
  ASSERT_FALSE(c.expect_error) << "jinja2 raised " << c.error_type << ": " << c.expected
                               << "\nbut we rendered: " << rendered;
  EXPECT_EQ(rendered, c.expected);
}

class RealTemplates : public ::testing::TestWithParam<Case> {};
TEST_P(RealTemplates, MatchJinja2) { check(GetParam()); }
INSTANTIATE_TEST_SUITE_P(Fixtures, RealTemplates, ::testing::ValuesIn(guarded(template_cases)),
                         [](const auto& info) { return info.param.name; });

class LanguageFeatures : public ::testing::TestWithParam<Case> {};
TEST_P(LanguageFeatures, MatchJinja2) { check(GetParam()); }
INSTANTIATE_TEST_SUITE_P(Fixtures, LanguageFeatures, ::testing::ValuesIn(guarded(language_cases)),
                         [](const auto& info) { return info.param.name; });

// The fixture set must keep covering what the brief asks for.
TEST(FixtureCoverage, AllRequiredTemplatesAndConversations) {
  json fixture = load("expected.json");
  std::set<std::string> templates, conversations;
  for (const json& c : fixture["cases"]) {
    templates.insert(c["template"].get<std::string>());
    conversations.insert(c["conversation"].get<std::string>());
  }
  for (const char* t : {"smollm2", "gemma3", "llama3", "llama3_1", "phi3", "mistral_v0_3", "qwen2_5"}) {
    EXPECT_TRUE(templates.count(t)) << t;
  }
  for (const char* c : {"single_user", "system_user", "multi_turn", "special_characters"}) {
    EXPECT_TRUE(conversations.count(c)) << c;
  }
  EXPECT_GE(fixture["cases"].size(), 200u);
}

}  // namespace
}  // namespace edgelm
