// Structured output and tool calling in the server's API layer: request parsing, the reply
// grammar, the prompt text, and turning generated text into tool_calls (whole and streamed).
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "server/api.hpp"
#include "server/tools.hpp"

namespace edgelm::server {
namespace {

using nlohmann::json;

const char* kWeatherTools = R"("tools":[
  {"type":"function","function":{"name":"get_weather","description":"Weather in a city",
    "parameters":{"type":"object","properties":{"city":{"type":"string","maxLength":20},
      "unit":{"enum":["c","f"]}},"required":["city"]}}},
  {"type":"function","function":{"name":"add","parameters":{"type":"object",
    "properties":{"a":{"type":"integer"},"b":{"type":"integer"}},"required":["a","b"]}}}])";

std::string chat_body(const std::string& extra) {
  return R"({"messages":[{"role":"user","content":"x"}])" + (extra.empty() ? "" : "," + extra) + "}";
}

ApiError error_of(const std::string& body) {
  try {
    parse_completion_request(body, true);
  } catch (const ApiError& e) {
    return e;
  }
  ADD_FAILURE() << "accepted: " << body;
  return ApiError(0, "");
}

bool accepts(const std::shared_ptr<const Grammar>& g, const std::string& text) {
  GrammarState st(g);
  return st.accept_bytes(text) && st.is_complete();
}

const std::string kCall = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";
const std::string kAddCall = "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}\n</tool_call>";

TEST(StructuredOutput, ResponseFormats) {
  auto text = parse_completion_request(chat_body(R"("response_format":{"type":"text"})"), true);
  EXPECT_FALSE(text.grammar);
  auto obj = parse_completion_request(chat_body(R"("response_format":{"type":"json_object"})"), true);
  ASSERT_TRUE(obj.grammar);
  EXPECT_TRUE(accepts(obj.grammar, R"({"a": [1, true]})"));
  EXPECT_FALSE(accepts(obj.grammar, "[1]"));
  EXPECT_FALSE(accepts(obj.grammar, "hello"));
  auto schema = parse_completion_request(chat_body(R"("response_format":{"type":"json_schema","json_schema":
      {"name":"person","strict":true,"schema":{"type":"object","properties":{"name":{"type":"string"},
      "age":{"type":"integer","minimum":0}},"required":["name","age"],"additionalProperties":false}}})"), true);
  ASSERT_TRUE(schema.grammar);
  EXPECT_TRUE(accepts(schema.grammar, R"({"name": "Ada", "age": 36})"));
  EXPECT_FALSE(accepts(schema.grammar, R"({"name": "Ada", "age": -1})"));
  EXPECT_FALSE(accepts(schema.grammar, R"({"name": "Ada"})"));
  // Completions take response_format too.
  auto completion = parse_completion_request(R"({"prompt":"x","response_format":{"type":"json_object"}})", false);
  EXPECT_TRUE(completion.grammar);
}

TEST(StructuredOutput, BadFormatsAre400NamingTheProblem) {
  ApiError e = error_of(chat_body(R"("response_format":{"type":"json_schema","json_schema":{"name":"t",
      "schema":{"type":"array","uniqueItems":true}}})"));
  EXPECT_EQ(e.status(), 400);
  EXPECT_EQ(e.body()["error"]["param"], "response_format.json_schema.schema");
  EXPECT_NE(std::string(e.what()).find("unsupported keyword 'uniqueItems'"), std::string::npos) << e.what();
  EXPECT_EQ(e.body()["error"]["type"], "invalid_request_error");
  EXPECT_EQ(error_of(chat_body(R"("response_format":{"type":"json_schema"})")).body()["error"]["param"],
            "response_format.json_schema");
  EXPECT_EQ(error_of(chat_body(R"("response_format":{"type":"json_schema","json_schema":{"schema":{}}})"))
                .body()["error"]["param"],
            "response_format.json_schema.name");
  EXPECT_EQ(error_of(chat_body(R"("response_format":"json")")).body()["error"]["param"], "response_format");
}

TEST(ToolCalling, ToolChoiceForms) {
  auto deflt = parse_completion_request(chat_body(kWeatherTools), true);
  EXPECT_EQ(deflt.tools.choice, ToolChoice::Auto);
  ASSERT_EQ(deflt.tools.functions.size(), 2u);
  EXPECT_EQ(deflt.tools.functions[0].description, "Weather in a city");
  EXPECT_TRUE(deflt.grammar);
  auto none = parse_completion_request(chat_body(std::string(kWeatherTools) + R"(,"tool_choice":"none")"), true);
  EXPECT_FALSE(none.tools.active());
  EXPECT_FALSE(none.grammar);
  auto named = parse_completion_request(
      chat_body(std::string(kWeatherTools) + R"(,"tool_choice":{"type":"function","function":{"name":"add"}})"), true);
  EXPECT_EQ(named.tools.choice, ToolChoice::Named);
  EXPECT_EQ(named.tools.named, "add");
  EXPECT_TRUE(accepts(named.grammar, kAddCall));
  EXPECT_FALSE(accepts(named.grammar, kCall));
}

TEST(ToolCalling, BadToolsAre400) {
  auto param = [](const std::string& extra) {
    return error_of(chat_body(extra)).body()["error"]["param"].get<std::string>();
  };
  EXPECT_EQ(param(std::string(kWeatherTools) + R"(,"tool_choice":{"type":"function","function":{"name":"nope"}})"),
            "tool_choice");
  EXPECT_NE(std::string(error_of(chat_body(std::string(kWeatherTools) +
                                           R"(,"tool_choice":{"type":"function","function":{"name":"nope"}})"))
                            .what())
                .find("'nope'"),
            std::string::npos);
  EXPECT_EQ(param(R"("tool_choice":"required")"), "tool_choice");
  EXPECT_EQ(param(R"("tool_choice":"sometimes","tools":[])"), "tool_choice");
  EXPECT_EQ(param(R"("tools":{"type":"function"})"), "tools");
  EXPECT_EQ(param(R"("tools":[{"type":"retrieval"}])"), "tools[0].type");
  EXPECT_EQ(param(R"("tools":[{"type":"function"}])"), "tools[0].function");
  EXPECT_EQ(param(R"("tools":[{"type":"function","function":{"name":"has space"}}])"), "tools[0].function.name");
  EXPECT_EQ(param(R"("tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object",
      "properties":{"x":{"not":{}}}}}}])"),
            "tools[0].function.parameters");
  EXPECT_EQ(param(R"("tools":[{"type":"function","function":{"name":"f"}},{"type":"function","function":{"name":"f"}}])"),
            "tools[1].function.name");
  EXPECT_EQ(param(R"("functions":[{"name":"f"}])"), "functions");
  EXPECT_EQ(param(R"("parallel_tool_calls":1)"), "parallel_tool_calls");
  // /v1/completions has no tools.
  try {
    parse_completion_request(R"({"prompt":"x","tools":[]})", false);
    ADD_FAILURE() << "accepted tools on completions";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.body()["error"]["param"], "tools");
  }
}

TEST(ToolCalling, GrammarAllowsCallsThatFollowTheSchemas) {
  auto req = parse_completion_request(
      chat_body(std::string(kWeatherTools) + R"(,"tool_choice":"required","parallel_tool_calls":true)"), true);
  const auto& g = req.grammar;
  ASSERT_TRUE(g);
  EXPECT_TRUE(accepts(g, kCall));
  EXPECT_TRUE(accepts(g, kAddCall));
  EXPECT_TRUE(accepts(g, kCall + "\n" + kAddCall));  // parallel calls
  EXPECT_FALSE(accepts(g, "Sunny."));
  EXPECT_FALSE(accepts(g, "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": \"1\", \"b\": 2}}\n</tool_call>"));
  EXPECT_FALSE(accepts(g, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"unit\": \"c\"}}\n</tool_call>"));
  EXPECT_FALSE(accepts(g, "<tool_call>\n{\"name\": \"other\", \"arguments\": {}}\n</tool_call>"));
  std::string eight = kCall;
  for (int i = 1; i < kMaxParallelCalls; ++i) eight += "\n" + kAddCall;
  EXPECT_TRUE(accepts(g, eight));
  EXPECT_FALSE(accepts(g, eight + "\n" + kAddCall));
  // One call only, unless parallel calls are asked for.
  auto single = parse_completion_request(chat_body(std::string(kWeatherTools) + R"(,"tool_choice":"required")"), true);
  EXPECT_TRUE(accepts(single.grammar, kCall));
  EXPECT_FALSE(accepts(single.grammar, kCall + "\n" + kAddCall));
}

TEST(ToolCalling, AutoAllowsTextThatIsNotACall) {
  auto req = parse_completion_request(chat_body(kWeatherTools), true);
  const auto& g = req.grammar;
  EXPECT_TRUE(accepts(g, kCall));
  EXPECT_TRUE(accepts(g, "It is sunny in Paris."));
  EXPECT_TRUE(accepts(g, ""));
  EXPECT_TRUE(accepts(g, "<b>bold</b> <tool_call> later is text"));
  EXPECT_TRUE(accepts(g, "<tool_cal"));
  EXPECT_FALSE(accepts(g, "<tool_call>\n{\"name\": \"nope\"}"));
  EXPECT_FALSE(accepts(g, "<tool_call>anything"));
  EXPECT_FALSE(accepts(g, " leading space"));
  // With a response schema the text alternative is a document of it.
  auto both = parse_completion_request(
      chat_body(std::string(kWeatherTools) + R"(,"response_format":{"type":"json_object"})"), true);
  EXPECT_TRUE(accepts(both.grammar, kCall));
  EXPECT_TRUE(accepts(both.grammar, R"({"answer": 1})"));
  EXPECT_FALSE(accepts(both.grammar, "plain text"));
}

TEST(ToolCalling, SchemasWithTheSameNamesShareOneGrammar) {
  const std::string g = json_schemas_to_rules(
      {{"one", nlohmann::ordered_json::parse(R"({"type":"object","properties":{"x":{"type":"integer"}},"required":["x"]})")},
       {"two", nlohmann::ordered_json::parse(R"({"type":"object","properties":{"x":{"type":"string"}},"required":["x"]})")}});
  auto grammar = Grammar::parse(g + "root ::= \"1\" one | \"2\" two\n");
  EXPECT_TRUE(accepts(grammar, R"(1{"x": 5})"));
  EXPECT_FALSE(accepts(grammar, R"(1{"x": "5"})"));
  EXPECT_TRUE(accepts(grammar, R"(2{"x": "5"})"));
  EXPECT_FALSE(accepts(grammar, R"(2{"x": 5})"));
}

TEST(ToolCalling, ParserSplitsCallsWholeAndStreamed) {
  const std::string text = kCall + "\n" + kAddCall;
  auto reply = ToolCallParser::parse(text, "call_x_");
  EXPECT_EQ(reply.content, "");
  ASSERT_EQ(reply.calls.size(), 2u);
  EXPECT_EQ(reply.calls[0].id, "call_x_0");
  EXPECT_EQ(reply.calls[0].name, "get_weather");
  EXPECT_EQ(reply.calls[0].arguments, R"({"city": "Paris"})");
  EXPECT_EQ(reply.calls[1].name, "add");
  EXPECT_EQ(json::parse(reply.calls[1].arguments), (json{{"a", 1}, {"b", 2}}));
  // Byte by byte: the same calls, the name before any argument, the arguments in pieces.
  ToolCallParser p("c");
  std::vector<ToolEvent> events;
  for (char c : text)
    for (auto& e : p.push(std::string_view(&c, 1))) events.push_back(e);
  for (auto& e : p.finish()) events.push_back(e);
  std::string args0;
  int starts = 0;
  for (const auto& e : events) {
    EXPECT_NE(e.kind, ToolEvent::Kind::Content);
    if (e.kind == ToolEvent::Kind::CallStart) {
      EXPECT_EQ(e.index, starts++);
    } else if (e.index == 0) {
      args0 += e.text;
    }
  }
  EXPECT_EQ(starts, 2);
  EXPECT_EQ(args0, R"({"city": "Paris"})");
  EXPECT_EQ(p.n_calls(), 2);
  // Braces inside strings do not end the arguments.
  auto tricky = ToolCallParser::parse(
      "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"s\": \"}{\\\"]\"}}\n</tool_call>", "c");
  ASSERT_EQ(tricky.calls.size(), 1u);
  EXPECT_EQ(json::parse(tricky.calls[0].arguments)["s"], "}{\"]");
}

TEST(ToolCalling, ParserPassesTextThrough) {
  auto text = ToolCallParser::parse("<b>hi</b>", "c");
  EXPECT_EQ(text.content, "<b>hi</b>");
  EXPECT_TRUE(text.calls.empty());
  ToolCallParser p("c");
  EXPECT_TRUE(p.push("<tool").empty());  // held: it may still become a call
  auto ev = p.push("s>");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].text, "<tools>");
  ToolCallParser q("c");
  EXPECT_TRUE(q.push("<too").empty());
  auto tail = q.finish();
  ASSERT_EQ(tail.size(), 1u);
  EXPECT_EQ(tail[0].text, "<too");
}

TEST(ToolCalling, ConversationWithCallsAndResults) {
  const std::string body = std::string(R"({"messages":[
      {"role":"system","content":"Be brief."},
      {"role":"user","content":"Weather in Paris?"},
      {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function",
        "function":{"name":"get_weather","arguments":"{\"city\": \"Paris\"}"}}]},
      {"role":"tool","tool_call_id":"call_1","content":"{\"temp\": 21}"}],)") +
                           kWeatherTools + "}";
  auto r = parse_completion_request(body, true);
  ASSERT_EQ(r.messages.size(), 4u);
  ASSERT_EQ(r.messages[2].tool_calls.size(), 1u);
  EXPECT_EQ(r.messages[2].tool_calls[0].arguments, R"({"city": "Paris"})");
  EXPECT_EQ(r.messages[3].tool_call_id, "call_1");

  const auto plain = plain_conversation(r.messages, r.tools);
  ASSERT_EQ(plain.size(), 4u);
  EXPECT_EQ(plain[0].role, "system");
  EXPECT_EQ(plain[0].content.rfind("Be brief.\n\n", 0), 0u);
  EXPECT_NE(plain[0].content.find(R"({"type":"function","function":{"name":"get_weather")"), std::string::npos);
  EXPECT_NE(plain[0].content.find("<tool_call>"), std::string::npos);
  EXPECT_EQ(plain[2].content, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>");
  EXPECT_EQ(plain[3].role, "user");
  EXPECT_EQ(plain[3].content, "<tool_response>\n{\"temp\": 21}\n</tool_response>");

  // Without active tools nothing is added to the system prompt.
  ToolsRequest none;
  EXPECT_EQ(plain_conversation(r.messages, none)[0].content, "Be brief.");

  // A result for a call nobody made, a tool message without an id: 400.
  auto param = [](const std::string& b) { return error_of(b).body()["error"]["param"].get<std::string>(); };
  EXPECT_EQ(param(R"({"messages":[{"role":"tool","tool_call_id":"x","content":"1"}]})"), "messages[0].tool_call_id");
  EXPECT_EQ(param(R"({"messages":[{"role":"tool","content":"1"}]})"), "messages[0].tool_call_id");
  EXPECT_EQ(param(R"({"messages":[{"role":"user","content":"x","tool_calls":[]}]})"), "messages[0].tool_calls");
  EXPECT_EQ(param(R"({"messages":[{"role":"assistant","tool_calls":[{"id":1}]}]})"), "messages[0].tool_calls");
}

TEST(ToolCalling, HermesTemplateRendersToolsItself) {
  std::ifstream f(std::string(EDGELM_SOURCE_DIR) + "/tests/fixtures/templates/qwen2_5.jinja");
  ASSERT_TRUE(f) << "missing fixture";
  std::stringstream ss;
  ss << f.rdbuf();
  ASSERT_TRUE(template_writes_hermes_tools(ss.str()));
  const auto tmpl = ChatTemplate::parse(ss.str());
  auto r = parse_completion_request(std::string(R"({"messages":[
      {"role":"user","content":"Weather in Paris?"},
      {"role":"assistant","content":"","tool_calls":[{"id":"call_1","type":"function",
        "function":{"name":"get_weather","arguments":"{\"city\": \"Paris\"}"}}]},
      {"role":"tool","tool_call_id":"call_1","content":"21 C"}],)") + kWeatherTools + "}",
                                    true);
  const std::string text = render_with_template(tmpl, "", "<|im_end|>", r.messages, r.tools);
  EXPECT_NE(text.find("<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_weather\""), std::string::npos) << text;
  EXPECT_NE(text.find("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"),
            std::string::npos) << text;
  EXPECT_NE(text.find("<|im_start|>user\n<tool_response>\n21 C\n</tool_response><|im_end|>"), std::string::npos) << text;
  EXPECT_EQ(text.substr(text.size() - 22), "<|im_start|>assistant\n");
  std::ifstream smol(std::string(EDGELM_SOURCE_DIR) + "/tests/fixtures/templates/smollm2.jinja");
  std::stringstream s2;
  s2 << smol.rdbuf();
  EXPECT_FALSE(template_writes_hermes_tools(s2.str()));
}

TEST(ToolCalling, ResponseAndChunkShapes) {
  auto req = parse_completion_request(chat_body(std::string(kWeatherTools) + R"(,"tool_choice":"required")"), true);
  ResponseIds ids{"chatcmpl-abc", 1, "m"};
  JobResult r;
  r.finish_reason = "stop";
  auto full = completion_response(req, ids, kCall, r);
  const auto& msg = full["choices"][0]["message"];
  EXPECT_TRUE(msg["content"].is_null());
  ASSERT_EQ(msg["tool_calls"].size(), 1u);
  EXPECT_EQ(msg["tool_calls"][0]["id"], "call_abc_0");
  EXPECT_EQ(msg["tool_calls"][0]["type"], "function");
  EXPECT_EQ(msg["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(json::parse(msg["tool_calls"][0]["function"]["arguments"].get<std::string>()), (json{{"city", "Paris"}}));
  EXPECT_EQ(full["choices"][0]["finish_reason"], "tool_calls");
  r.finish_reason = "length";
  EXPECT_EQ(completion_response(req, ids, kCall.substr(0, 40), r)["choices"][0]["finish_reason"], "length");
  // Auto and a text answer: content, no tool_calls.
  auto autoreq = parse_completion_request(chat_body(kWeatherTools), true);
  r.finish_reason = "stop";
  auto textual = completion_response(autoreq, ids, "Sunny.", r);
  EXPECT_EQ(textual["choices"][0]["message"]["content"], "Sunny.");
  EXPECT_FALSE(textual["choices"][0]["message"].contains("tool_calls"));
  EXPECT_EQ(textual["choices"][0]["finish_reason"], "stop");

  auto start = tool_event_chunk(req, ids, {ToolEvent::Kind::CallStart, 0, "get_weather", "call_abc_0"});
  EXPECT_EQ(start["choices"][0]["delta"]["tool_calls"][0],
            (json{{"index", 0}, {"id", "call_abc_0"}, {"type", "function"},
                  {"function", {{"name", "get_weather"}, {"arguments", ""}}}}));
  auto frag = tool_event_chunk(req, ids, {ToolEvent::Kind::Arguments, 1, "{\"a\"", ""});
  EXPECT_EQ(frag["choices"][0]["delta"]["tool_calls"][0], (json{{"index", 1}, {"function", {{"arguments", "{\"a\""}}}}));
  EXPECT_TRUE(frag["choices"][0]["finish_reason"].is_null());
  auto last = stream_chunk(req, ids, "", finish_reason_with_calls("stop", 1));
  EXPECT_EQ(last["choices"][0]["finish_reason"], "tool_calls");
}

}  // namespace
}  // namespace edgelm::server
