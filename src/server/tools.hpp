// Tool calling and structured output for `edgelm serve`: OpenAI's `tools`, `tool_choice` and
// `response_format` turned into a grammar, tool definitions and past calls into prompt text,
// and generated text back into `tool_calls` (docs/server-structured-output.md).
//
// Every tool call is written in the Hermes format (Qwen 2.5 and Hermes models are trained on
// it; a model whose template does not know tools is told about it in the system prompt):
//
//   <tool_call>
//   {"name": "get_weather", "arguments": {"city": "Paris"}}
//   </tool_call>
//
//   ToolCallParser p("call_abc");
//   for (const auto& piece : pieces) for (const ToolEvent& e : p.push(piece)) { ... }
//   p.finish();  // the content held back while it could still have become a call
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "edgelm/assistant.hpp"
#include "edgelm/chat_template.hpp"
#include "edgelm/grammar.hpp"

namespace edgelm::server {

struct ToolFunction {
  std::string name;  // ^[a-zA-Z0-9_-]{1,64}$, as OpenAI requires
  std::string description;
  nlohmann::ordered_json parameters;  // a JSON Schema for the arguments object
};

struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // JSON text, as OpenAI sends it
};

enum class ToolChoice { None, Auto, Required, Named };

struct ToolsRequest {
  std::vector<ToolFunction> functions;
  ToolChoice choice = ToolChoice::None;
  std::string named;     // the function tool_choice names (ToolChoice::Named)
  // parallel_tool_calls: more than one call per reply. Off unless asked for (as in llama.cpp's
  // server): small models given the choice tend to repeat the same call until max_tokens.
  bool parallel = false;
  // The model is told about the tools and may (auto) or must (required, named) call one.
  bool active() const { return choice != ToolChoice::None && !functions.empty(); }
};

// A conversation message with the fields tool calling adds to it.
struct RequestMessage : ChatMessage {
  std::vector<ToolCall> tool_calls;  // assistant messages
  std::string tool_call_id;          // role "tool": the call this is the result of
};

// The most calls one reply may hold when parallel calls are allowed.
constexpr int kMaxParallelCalls = 8;

// `tools`, `tool_choice` and `parallel_tool_calls` of a chat request body. Throws ApiError (400)
// naming the field: malformed tools, a bad name, a parameters schema with a keyword the
// grammar does not support, tool_choice naming a function not in tools. `ordered` is the same
// body with its objects' key order kept: schemas are taken from it, since properties are
// generated in the schema's order.
ToolsRequest parse_tools(const nlohmann::json& body, const nlohmann::ordered_json& ordered);

// The JSON Schema `response_format` asks for ({"type": "object"} for json_object), or nothing
// for text. Throws ApiError (400) for a malformed format or an unsupported keyword.
std::optional<nlohmann::ordered_json> parse_response_format(const nlohmann::json& body,
                                                            const nlohmann::ordered_json& ordered);

// The grammar of the reply, or nullptr when it is free text. With tools active: tool calls
// (auto: or a reply that does not start with a tool call: free text not starting with
// whitespace, or a document of `response_schema`); otherwise a document of the schema.
std::shared_ptr<const Grammar> reply_grammar(const ToolsRequest& tools,
                                             const std::optional<nlohmann::ordered_json>& response_schema);
// The same grammar as GBNF text ("" for free text), for tests and docs.
std::string reply_grammar_gbnf(const ToolsRequest& tools, const std::optional<nlohmann::ordered_json>& response_schema);

// The conversation for a chat format that knows nothing of tools: the tool definitions and the
// call format in the system prompt (when tools are active), assistant calls as their Hermes
// text, tool results as user turns wrapped in <tool_response>.
std::vector<ChatMessage> plain_conversation(const std::vector<RequestMessage>& messages, const ToolsRequest& tools);

// True when a chat template renders `tools` and tool calls in the Hermes format itself.
bool template_writes_hermes_tools(const std::string& template_source);
// The conversation rendered by such a template, in Hugging Face's shape (tool_calls with
// arguments as objects, tool results as role "tool"); tools are passed only when active.
std::string render_with_template(const ChatTemplate& tmpl, const std::string& bos, const std::string& eos,
                                 const std::vector<RequestMessage>& messages, const ToolsRequest& tools);

// What the parser found, in order.
struct ToolEvent {
  enum class Kind { Content, CallStart, Arguments } kind;
  int index = 0;      // the call (CallStart, Arguments)
  std::string text;   // Content: text; CallStart: the function name; Arguments: a fragment
  std::string id;     // CallStart: the call's id
};

// Splits generated text into content and tool calls as it arrives. A reply that starts with
// "<tool_call>" is calls; anything else is content (held back only while it could still
// become "<tool_call>"). The grammar guarantees the calls' shape; text cut short (max_tokens)
// gives what was there.
class ToolCallParser {
 public:
  explicit ToolCallParser(std::string id_prefix) : id_prefix_(std::move(id_prefix)) {}
  std::vector<ToolEvent> push(std::string_view text);
  std::vector<ToolEvent> finish();
  int n_calls() const { return n_calls_; }

  // The whole reply at once: content and complete calls.
  struct Reply {
    std::string content;
    std::vector<ToolCall> calls;
  };
  static Reply parse(std::string_view text, const std::string& id_prefix);

 private:
  enum class State { Start, Text, Header, Name, AfterName, Arguments, AfterCall };
  void step(char c, std::vector<ToolEvent>& out);
  std::string id_prefix_;
  State state_ = State::Start;
  std::string held_;      // Start: bytes that may still become "<tool_call>"
  size_t matched_ = 0;    // bytes of the expected literal seen (Header, AfterName, AfterCall)
  std::string name_;
  int depth_ = 0;
  bool in_string_ = false, escaped_ = false, args_started_ = false;
  int n_calls_ = 0;
};

}  // namespace edgelm::server
