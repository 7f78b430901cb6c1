#include "server/tools.hpp"

#include <algorithm>

#include "edgelm/error.hpp"
#include "server/api.hpp"

namespace edgelm::server {

using nlohmann::json;
using nlohmann::ordered_json;

namespace {

constexpr std::string_view kCallOpen = "<tool_call>";
constexpr std::string_view kCallHeader = "<tool_call>\n{\"name\": \"";
constexpr std::string_view kAfterName = "\", \"arguments\": ";
constexpr std::string_view kCallClose = "}\n</tool_call>";
constexpr size_t kMaxTools = 128;

[[noreturn]] void bad(const std::string& param, const std::string& msg, const std::string& code = "invalid_value") {
  throw ApiError(400, msg, param, code);
}

const json* field(const json& obj, const char* name) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

bool valid_name(const std::string& n) {
  if (n.empty() || n.size() > 64) return false;
  return std::all_of(n.begin(), n.end(), [](unsigned char c) { return std::isalnum(c) || c == '_' || c == '-'; });
}

// The converter's error for a schema, or "" when it converts.
std::string schema_error(const ordered_json& schema) {
  try {
    json_schema_to_grammar(schema);
    return "";
  } catch (const Error& e) {
    return e.what();
  }
}

// A GBNF string literal.
std::string lit(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// Free text that does not start with whitespace or with "<tool_call>": each step either ends,
// leaves the literal with a different character (then anything may follow), or matches one
// more of its characters; the last step cannot complete it.
std::string free_text_rules() {
  std::string out = "tc-text ::= \"\" | [^<\\x09\\x0A\\x0D\\x20] .* | \"<\" tc-text-1\n";
  for (size_t k = 1; k < kCallOpen.size(); ++k) {
    const char c = kCallOpen[k];
    out += "tc-text-" + std::to_string(k) + " ::= \"\" | [^" + std::string(1, c) + "] .*";
    if (k + 1 < kCallOpen.size()) out += " | " + lit(std::string(1, c)) + " tc-text-" + std::to_string(k + 1);
    out += "\n";
  }
  return out;
}

// The Hermes text of one call, as the grammar generates it.
std::string call_text(const ToolCall& c) {
  // Arguments that are not JSON are kept as a string value.
  const std::string args = json::accept(c.arguments) ? c.arguments : json(c.arguments).dump();
  return std::string(kCallHeader) + c.name + std::string(kAfterName) + args + std::string(kCallClose);
}

ordered_json tools_json(const ToolsRequest& t) {
  ordered_json a = ordered_json::array();
  for (const ToolFunction& f : t.functions) {
    ordered_json fn = {{"name", f.name}};
    if (!f.description.empty()) fn["description"] = f.description;
    fn["parameters"] = f.parameters;
    a.push_back({{"type", "function"}, {"function", fn}});
  }
  return a;
}

std::string tools_system_prompt(const ToolsRequest& t) {
  std::string s = "You can call these functions (each with a JSON Schema of its arguments):\n<tools>\n";
  for (const auto& tool : tools_json(t)) s += tool.dump() + "\n";
  s += "</tools>\nTo call a function, answer with nothing but:\n<tool_call>\n"
       "{\"name\": \"<function name>\", \"arguments\": <the arguments as a JSON object>}\n</tool_call>\n";
  if (t.choice == ToolChoice::Auto) s += "If no function is needed, answer the user directly.";
  if (t.choice == ToolChoice::Required) s += "Call a function now.";
  if (t.choice == ToolChoice::Named) s += "Call the function " + t.named + " now.";
  return s;
}

}  // namespace

ToolsRequest parse_tools(const json& body, const ordered_json& ordered) {
  ToolsRequest r;
  if (field(body, "functions") || field(body, "function_call"))
    bad(field(body, "functions") ? "functions" : "function_call",
        "the legacy 'functions' and 'function_call' fields are not supported: use 'tools' and 'tool_choice'",
        "unsupported_parameter");
  if (const json* tools = field(body, "tools")) {
    if (!tools->is_array()) bad("tools", "'tools' must be an array of {\"type\": \"function\", \"function\": {...}} objects", "invalid_type");
    if (tools->size() > kMaxTools) bad("tools", "'tools' may list at most " + std::to_string(kMaxTools) + " functions");
    for (size_t i = 0; i < tools->size(); ++i) {
      const json& t = (*tools)[i];
      const std::string where = "tools[" + std::to_string(i) + "]";
      if (!t.is_object()) bad(where, "'" + where + "' must be an object", "invalid_type");
      const json* type = field(t, "type");
      if (!type || *type != "function")
        bad(where + ".type", "'" + where + ".type' must be \"function\" (the only tool type this server runs)");
      const json* fn = field(t, "function");
      if (!fn || !fn->is_object()) bad(where + ".function", "'" + where + ".function' must be an object", "invalid_type");
      ToolFunction f;
      const json* name = field(*fn, "name");
      if (!name || !name->is_string() || !valid_name(name->get<std::string>()))
        bad(where + ".function.name",
            "'" + where + ".function.name' must be 1 to 64 letters, digits, underscores or dashes");
      f.name = name->get<std::string>();
      for (const ToolFunction& other : r.functions)
        if (other.name == f.name) bad(where + ".function.name", "the function '" + f.name + "' is defined twice in 'tools'");
      if (const json* d = field(*fn, "description")) {
        if (!d->is_string()) bad(where + ".function.description", "'" + where + ".function.description' must be a string", "invalid_type");
        f.description = d->get<std::string>();
      }
      if (const json* s = field(*fn, "strict"); s && !s->is_boolean())
        bad(where + ".function.strict", "'" + where + ".function.strict' must be true or false", "invalid_type");
      if (const json* p = field(*fn, "parameters")) {
        if (!p->is_object()) bad(where + ".function.parameters", "'" + where + ".function.parameters' must be a JSON Schema object", "invalid_type");
        f.parameters = ordered["tools"][i]["function"]["parameters"];
        if (const json* pt = field(*p, "type"); pt && *pt != "object")
          bad(where + ".function.parameters", "'" + where + ".function.parameters' must describe an object (\"type\": \"object\")");
      } else {
        f.parameters = {{"type", "object"}, {"properties", ordered_json::object()}};  // no arguments
      }
      if (const std::string e = schema_error(f.parameters); !e.empty())
        bad(where + ".function.parameters", "'" + where + ".function.parameters': " + e, "unsupported_schema");
      r.functions.push_back(std::move(f));
    }
  }
  r.choice = r.functions.empty() ? ToolChoice::None : ToolChoice::Auto;  // OpenAI's defaults
  if (const json* tc = field(body, "tool_choice")) {
    if (tc->is_string()) {
      const std::string c = tc->get<std::string>();
      if (c == "none") r.choice = ToolChoice::None;
      else if (c == "auto") r.choice = ToolChoice::Auto;
      else if (c == "required") r.choice = ToolChoice::Required;
      else bad("tool_choice", "'tool_choice' must be \"none\", \"auto\", \"required\" or {\"type\": \"function\", \"function\": {\"name\": ...}}");
    } else if (tc->is_object()) {
      const json* fn = field(*tc, "function");
      const json* name = fn && fn->is_object() ? field(*fn, "name") : nullptr;
      if (!field(*tc, "type") || (*tc)["type"] != "function" || !name || !name->is_string())
        bad("tool_choice", "a named 'tool_choice' must be {\"type\": \"function\", \"function\": {\"name\": ...}}", "invalid_type");
      r.choice = ToolChoice::Named;
      r.named = name->get<std::string>();
      const bool known = std::any_of(r.functions.begin(), r.functions.end(), [&](const ToolFunction& f) { return f.name == r.named; });
      if (!known) bad("tool_choice", "'tool_choice' names the function '" + r.named + "', which is not in 'tools'");
    } else {
      bad("tool_choice", "'tool_choice' must be a string or an object", "invalid_type");
    }
    if (r.choice != ToolChoice::None && r.functions.empty())
      bad("tool_choice", "'tool_choice' asks for a tool call but 'tools' lists no function");
  }
  if (const json* p = field(body, "parallel_tool_calls")) {
    if (!p->is_boolean()) bad("parallel_tool_calls", "'parallel_tool_calls' must be true or false", "invalid_type");
    r.parallel = p->get<bool>();
  }
  return r;
}

std::optional<ordered_json> parse_response_format(const json& body, const ordered_json& ordered) {
  const json* rf = field(body, "response_format");
  if (!rf) return std::nullopt;
  const char* shape = "'response_format' must be {\"type\": \"text\"}, {\"type\": \"json_object\"} or "
                      "{\"type\": \"json_schema\", \"json_schema\": {\"name\": ..., \"schema\": {...}}}";
  const json* type = rf->is_object() ? field(*rf, "type") : nullptr;
  if (!type || !type->is_string()) bad("response_format", shape, "invalid_type");
  if (*type == "text") return std::nullopt;
  if (*type == "json_object") return ordered_json{{"type", "object"}};
  if (*type != "json_schema") bad("response_format.type", std::string(shape) + ", not type " + type->dump());
  const json* js = field(*rf, "json_schema");
  if (!js || !js->is_object()) bad("response_format.json_schema", shape, "invalid_type");
  const json* name = field(*js, "name");
  if (!name || !name->is_string() || !valid_name(name->get<std::string>()))
    bad("response_format.json_schema.name", "'response_format.json_schema.name' must be 1 to 64 letters, digits, underscores or dashes");
  if (const json* s = field(*js, "strict"); s && !s->is_boolean())
    bad("response_format.json_schema.strict", "'response_format.json_schema.strict' must be true or false", "invalid_type");
  const json* schema = field(*js, "schema");
  if (!schema || !(schema->is_object() || schema->is_boolean()))
    bad("response_format.json_schema.schema", "'response_format.json_schema.schema' must be a JSON Schema object", "invalid_type");
  const ordered_json& s = ordered["response_format"]["json_schema"]["schema"];
  if (const std::string e = schema_error(s); !e.empty())
    bad("response_format.json_schema.schema", "'response_format.json_schema.schema': " + e, "unsupported_schema");
  return s;
}

std::string reply_grammar_gbnf(const ToolsRequest& tools, const std::optional<ordered_json>& response_schema) {
  if (!tools.active()) return response_schema ? json_schema_to_grammar(*response_schema) : "";
  std::vector<std::pair<std::string, ordered_json>> schemas;
  std::string alts;
  std::string fns;
  for (size_t i = 0; i < tools.functions.size(); ++i) {
    const ToolFunction& f = tools.functions[i];
    if (tools.choice == ToolChoice::Named && f.name != tools.named) continue;
    const std::string args = "args-" + std::to_string(i), fn = "tc-fn-" + std::to_string(i);
    schemas.emplace_back(args, f.parameters);
    fns += fn + " ::= " + lit(f.name + std::string(kAfterName)) + " " + args + "\n";
    alts += (alts.empty() ? "" : " | ") + fn;
  }
  std::string g;
  const bool text_too = tools.choice == ToolChoice::Auto;
  if (text_too && response_schema) schemas.emplace_back("reply", *response_schema);
  g += "root ::= tc-calls" + std::string(text_too ? (response_schema ? " | reply" : " | tc-text") : "") + "\n";
  g += "tc-calls ::= tc-call" +
       (tools.parallel ? " ( \"\\n\" tc-call ){0," + std::to_string(kMaxParallelCalls - 1) + "}" : std::string()) + "\n";
  g += "tc-call ::= " + lit(kCallHeader) + " ( " + alts + " ) " + lit(kCallClose) + "\n";
  g += fns;
  if (text_too && !response_schema) g += free_text_rules();
  g += json_schemas_to_rules(schemas);
  return g;
}

std::shared_ptr<const Grammar> reply_grammar(const ToolsRequest& tools, const std::optional<ordered_json>& response_schema) {
  const std::string g = reply_grammar_gbnf(tools, response_schema);
  if (g.empty()) return nullptr;
  try {
    return Grammar::parse(g);
  } catch (const Error& e) {
    throw ApiError(400, std::string("the reply's grammar could not be built: ") + e.what(), "", "unsupported_schema");
  }
}

std::vector<ChatMessage> plain_conversation(const std::vector<RequestMessage>& messages, const ToolsRequest& tools) {
  std::vector<ChatMessage> out;
  if (tools.active()) {
    const std::string desc = tools_system_prompt(tools);
    if (!messages.empty() && messages[0].role == "system") {
      out.push_back({"system", messages[0].content + "\n\n" + desc});
    } else {
      out.push_back({"system", desc});
    }
  }
  bool previous_tool = false;
  for (size_t i = 0; i < messages.size(); ++i) {
    const RequestMessage& m = messages[i];
    if (i == 0 && m.role == "system" && tools.active()) continue;  // merged above
    if (m.role == "tool") {
      const std::string result = "<tool_response>\n" + m.content + "\n</tool_response>";
      if (previous_tool) {
        out.back().content += "\n" + result;
      } else {
        out.push_back({"user", result});
      }
      previous_tool = true;
      continue;
    }
    previous_tool = false;
    std::string content = m.content;
    for (const ToolCall& c : m.tool_calls) {
      if (!content.empty()) content += '\n';
      content += call_text(c);
    }
    out.push_back({m.role, content});
  }
  return out;
}

bool template_writes_hermes_tools(const std::string& src) {
  return src.find("tools") != std::string::npos && src.find("<tool_call>") != std::string::npos &&
         src.find("tool_calls") != std::string::npos;
}

std::string render_with_template(const ChatTemplate& tmpl, const std::string& bos, const std::string& eos,
                                 const std::vector<RequestMessage>& messages, const ToolsRequest& tools) {
  ChatTemplateInputs in;
  for (const RequestMessage& m : messages) {
    ordered_json j = {{"role", m.role}, {"content", m.content}};
    if (!m.tool_calls.empty()) {
      ordered_json calls = ordered_json::array();
      for (const ToolCall& c : m.tool_calls) {
        ordered_json args;
        try {
          args = ordered_json::parse(c.arguments);
        } catch (const json::exception&) {
          args = c.arguments;
        }
        calls.push_back({{"id", c.id}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", args}}}});
      }
      j["tool_calls"] = calls;
    }
    if (m.role == "tool") j["tool_call_id"] = m.tool_call_id;
    in.messages.push_back(std::move(j));
  }
  if (tools.active()) in.tools = tools_json(tools);
  in.add_generation_prompt = true;
  in.bos_token = bos;
  in.eos_token = eos;
  return tmpl.render(in);
}

// ---- parsing the reply -------------------------------------------------------------------------

void ToolCallParser::step(char c, std::vector<ToolEvent>& out) {
  auto content = [&](std::string_view s) {
    if (s.empty()) return;
    if (!out.empty() && out.back().kind == ToolEvent::Kind::Content) {
      out.back().text += s;
    } else {
      out.push_back({ToolEvent::Kind::Content, 0, std::string(s), {}});
    }
  };
  auto args = [&](char ch) {
    if (!out.empty() && out.back().kind == ToolEvent::Kind::Arguments && out.back().index == n_calls_ - 1) {
      out.back().text += ch;
    } else {
      out.push_back({ToolEvent::Kind::Arguments, n_calls_ - 1, std::string(1, ch), {}});
    }
  };
  switch (state_) {
    case State::Start:
      held_ += c;
      if (held_.size() <= kCallOpen.size() && kCallOpen.substr(0, held_.size()) == held_) {
        if (held_.size() == kCallOpen.size()) {
          state_ = State::Header;
          matched_ = held_.size();
          held_.clear();
        }
      } else {
        state_ = State::Text;
        content(held_);
        held_.clear();
      }
      return;
    case State::Text:
      content(std::string_view(&c, 1));
      return;
    case State::Header:
      // The grammar makes the text match; anything else (text without a grammar) is skipped.
      if (c == kCallHeader[matched_]) ++matched_;
      if (matched_ == kCallHeader.size()) {
        state_ = State::Name;
        name_.clear();
      }
      return;
    case State::Name:
      if (c != '"') {
        name_ += c;
        return;
      }
      out.push_back({ToolEvent::Kind::CallStart, n_calls_, name_, id_prefix_ + std::to_string(n_calls_)});
      ++n_calls_;
      state_ = State::AfterName;
      matched_ = 1;  // the quote
      return;
    case State::AfterName:
      if (c == kAfterName[matched_]) ++matched_;
      if (matched_ == kAfterName.size()) {
        state_ = State::Arguments;
        depth_ = 0;
        in_string_ = escaped_ = args_started_ = false;
      }
      return;
    case State::Arguments:
      if (!args_started_ && (c == ' ' || c == '\t' || c == '\n' || c == '\r')) return;
      args_started_ = true;
      if (in_string_) {
        if (escaped_) escaped_ = false;
        else if (c == '\\') escaped_ = true;
        else if (c == '"') in_string_ = false;
      } else if (c == '"') {
        in_string_ = true;
      } else if (c == '{' || c == '[') {
        ++depth_;
      } else if (c == '}' || c == ']') {
        if (depth_ == 0) {  // the wrapper's brace: the arguments are complete
          state_ = State::AfterCall;
          matched_ = 1;
          return;
        }
        --depth_;
      }
      args(c);
      return;
    case State::AfterCall:
      // "}\n</tool_call>", then "\n<tool_call>..." for the next call.
      if (matched_ < kCallClose.size()) {
        if (c == kCallClose[matched_]) ++matched_;
        return;
      }
      if (c == '<') {
        state_ = State::Header;
        matched_ = 1;
      }
      return;
  }
}

std::vector<ToolEvent> ToolCallParser::push(std::string_view text) {
  std::vector<ToolEvent> out;
  for (char c : text) step(c, out);
  return out;
}

std::vector<ToolEvent> ToolCallParser::finish() {
  std::vector<ToolEvent> out;
  if (state_ == State::Start && !held_.empty()) out.push_back({ToolEvent::Kind::Content, 0, held_, {}});
  held_.clear();
  return out;
}

ToolCallParser::Reply ToolCallParser::parse(std::string_view text, const std::string& id_prefix) {
  ToolCallParser p(id_prefix);
  Reply r;
  auto take = [&](std::vector<ToolEvent> events) {
    for (ToolEvent& e : events) {
      if (e.kind == ToolEvent::Kind::Content) r.content += e.text;
      else if (e.kind == ToolEvent::Kind::CallStart) r.calls.push_back({e.id, e.text, ""});
      else r.calls[static_cast<size_t>(e.index)].arguments += e.text;
    }
  };
  take(p.push(text));
  take(p.finish());
  return r;
}

}  // namespace edgelm::server
