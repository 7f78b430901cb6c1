#include "server/api.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace edgelm::server {

using nlohmann::json;

ApiError::ApiError(int status, std::string message, std::string param, std::string code,
                   std::string type)
    : std::runtime_error(std::move(message)), status_(status), param_(std::move(param)),
      code_(std::move(code)), type_(type.empty() ? error_type_for_status(status) : std::move(type)) {}

json ApiError::body() const { return error_body(what(), type_, param_, code_); }

std::string error_type_for_status(int status) {
  if (status == 401) return "authentication_error";
  if (status == 404) return "not_found_error";
  return status >= 500 ? "server_error" : "invalid_request_error";
}

json error_body(const std::string& message, const std::string& type, const std::string& param,
                const std::string& code) {
  return {{"error",
           {{"message", message},
            {"type", type},
            {"param", param.empty() ? json(nullptr) : json(param)},
            {"code", code.empty() ? json(nullptr) : json(code)}}}};
}

namespace {

constexpr int kMaxDepth = 64;
constexpr size_t kMaxStops = 4;
constexpr size_t kMaxStopBytes = 256;

[[noreturn]] void bad(const std::string& param, const std::string& msg,
                      const std::string& code = "invalid_value") {
  throw ApiError(400, msg, param, code);
}

const json* field(const json& obj, const char* name) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

double number(const json& obj, const char* name, double lo, double hi) {
  const json* v = field(obj, name);
  if (!v) return std::numeric_limits<double>::quiet_NaN();
  if (!v->is_number()) bad(name, std::string("'") + name + "' must be a number", "invalid_type");
  const double d = v->get<double>();
  if (!std::isfinite(d) || d < lo || d > hi)
    bad(name, std::string("'") + name + "' must be between " + json(lo).dump() + " and " + json(hi).dump());
  return d;
}

std::optional<int64_t> integer(const json& obj, const char* name, int64_t lo, int64_t hi) {
  const json* v = field(obj, name);
  if (!v) return std::nullopt;
  if (!v->is_number_integer()) bad(name, std::string("'") + name + "' must be an integer", "invalid_type");
  if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(hi))
    bad(name, std::string("'") + name + "' must be at most " + std::to_string(hi));
  const int64_t i = v->is_number_unsigned() ? static_cast<int64_t>(v->get<uint64_t>()) : v->get<int64_t>();
  if (i < lo || i > hi)
    bad(name, std::string("'") + name + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  return i;
}

bool boolean(const json& obj, const char* name, bool dflt) {
  const json* v = field(obj, name);
  if (!v) return dflt;
  if (!v->is_boolean()) bad(name, std::string("'") + name + "' must be true or false", "invalid_type");
  return v->get<bool>();
}

std::string message_content(const json& m, size_t i) {
  const std::string where = "messages[" + std::to_string(i) + "].content";
  const json* c = field(m, "content");
  if (!c) return "";  // an assistant turn that only called tools; rejected below if it matters
  if (c->is_string()) return c->get<std::string>();
  if (!c->is_array()) bad(where, "'" + where + "' must be a string or an array of text parts", "invalid_type");
  std::string text;
  for (const auto& part : *c) {
    if (!part.is_object()) bad(where, "each part of '" + where + "' must be an object", "invalid_type");
    const json* type = field(part, "type");
    if (!type || !type->is_string()) bad(where, "each part of '" + where + "' needs a string 'type'", "invalid_type");
    if (*type != "text")
      bad(where, "content parts of type '" + type->get<std::string>() + "' are not supported: this model reads text only",
          "unsupported_content");
    const json* t = field(part, "text");
    if (!t || !t->is_string()) bad(where, "a text part of '" + where + "' needs a string 'text'", "invalid_type");
    text += t->get<std::string>();
  }
  return text;
}

std::vector<ToolCall> parse_tool_calls(const json& calls, const std::string& where) {
  const std::string what = "'" + where + "' must be an array of {\"id\", \"type\": \"function\", \"function\": {\"name\", \"arguments\"}} objects";
  if (!calls.is_array()) bad(where, what, "invalid_type");
  std::vector<ToolCall> out;
  for (const json& c : calls) {
    const json* id = c.is_object() ? field(c, "id") : nullptr;
    const json* fn = c.is_object() ? field(c, "function") : nullptr;
    const json* name = fn && fn->is_object() ? field(*fn, "name") : nullptr;
    const json* args = fn && fn->is_object() ? field(*fn, "arguments") : nullptr;
    if (!id || !id->is_string() || !name || !name->is_string() || (args && !args->is_string()) ||
        (field(c, "type") && c["type"] != "function"))
      bad(where, what, "invalid_type");
    out.push_back({id->get<std::string>(), name->get<std::string>(), args ? args->get<std::string>() : "{}"});
  }
  return out;
}

void parse_messages(const json& j, CompletionRequest& r) {
  const json* msgs = field(j, "messages");
  if (!msgs) bad("messages", "'messages' is required", "missing_required_parameter");
  if (!msgs->is_array()) bad("messages", "'messages' must be an array of message objects", "invalid_type");
  if (msgs->empty()) bad("messages", "'messages' must contain at least one message");
  std::vector<std::string> call_ids;  // of the assistant messages so far
  for (size_t i = 0; i < msgs->size(); ++i) {
    const json& m = (*msgs)[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) bad(where, "'" + where + "' must be an object", "invalid_type");
    const json* role = field(m, "role");
    if (!role || !role->is_string()) bad(where + ".role", "'" + where + ".role' must be a string", "invalid_type");
    std::string rs = role->get<std::string>();
    if (rs == "developer") rs = "system";  // OpenAI's newer name for the system role
    if (rs != "system" && rs != "user" && rs != "assistant" && rs != "tool")
      bad(where + ".role", "role '" + rs + "' is not supported: use system, user, assistant or tool");
    if (field(m, "function_call"))
      bad(where + ".function_call", "'function_call' is not supported: use 'tool_calls'", "unsupported_parameter");
    RequestMessage msg;
    msg.role = rs;
    msg.content = message_content(m, i);
    if (const json* tc = field(m, "tool_calls")) {
      if (rs != "assistant") bad(where + ".tool_calls", "only assistant messages carry 'tool_calls'");
      msg.tool_calls = parse_tool_calls(*tc, where + ".tool_calls");
      for (const ToolCall& c : msg.tool_calls) call_ids.push_back(c.id);
    }
    if (rs == "tool") {
      const json* id = field(m, "tool_call_id");
      if (!id || !id->is_string())
        bad(where + ".tool_call_id", "a tool message needs 'tool_call_id', the id of the call it answers", "missing_required_parameter");
      msg.tool_call_id = id->get<std::string>();
      if (std::find(call_ids.begin(), call_ids.end(), msg.tool_call_id) == call_ids.end())
        bad(where + ".tool_call_id", "'" + where + ".tool_call_id' is '" + msg.tool_call_id +
                                         "', which no earlier assistant message's 'tool_calls' has");
    }
    r.messages.push_back(std::move(msg));
  }
}

void parse_prompt(const json& j, CompletionRequest& r) {
  const json* p = field(j, "prompt");
  if (!p) bad("prompt", "'prompt' is required", "missing_required_parameter");
  if (p->is_string()) {
    r.prompt = p->get<std::string>();
  } else if (p->is_array() && !p->empty() && (*p)[0].is_number_integer()) {
    std::vector<int32_t> ids;
    for (const auto& t : *p) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > std::numeric_limits<int32_t>::max())
        bad("prompt", "a token-id prompt must be an array of non-negative integers", "invalid_type");
      ids.push_back(static_cast<int32_t>(t.get<int64_t>()));
    }
    r.prompt_ids = std::move(ids);
  } else if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) {
    r.prompt = (*p)[0].get<std::string>();
  } else if (p->is_array() && p->size() > 1) {
    bad("prompt", "only one prompt per request is supported", "unsupported_parameter");
  } else {
    bad("prompt", "'prompt' must be a string, a one-string array or an array of token ids", "invalid_type");
  }
  if (r.prompt.empty() && !r.prompt_ids) bad("prompt", "'prompt' must not be empty");
}

void reject_if_set(const json& j, const char* name, const std::string& why) {
  if (field(j, name)) bad(name, std::string("'") + name + "' is not supported: " + why, "unsupported_parameter");
}

}  // namespace

json parse_body(const std::string& body) {
  try {
    return json::parse(body, [](int depth, json::parse_event_t, json&) {
      if (depth > kMaxDepth) throw ApiError(400, "the request body nests deeper than " + std::to_string(kMaxDepth) + " levels");
      return true;
    });
  } catch (const json::exception& e) {  // parse errors and out-of-range numbers (1e999)
    std::string what = e.what();
    const auto p = what.find("] ");
    throw ApiError(400, "the request body is not valid JSON: " + (p == std::string::npos ? what : what.substr(p + 2)),
                   "", "invalid_json");
  }
}

CompletionRequest parse_completion_request(const std::string& body, bool chat) {
  const json j = parse_body(body);
  if (!j.is_object()) throw ApiError(400, "the request body must be a JSON object", "", "invalid_type");

  // Schemas keep their key order (properties are generated in it): read them from an ordered
  // copy of the body, parsed only when there are any.
  nlohmann::ordered_json ordered;
  if (field(j, "tools") || field(j, "response_format")) ordered = nlohmann::ordered_json::parse(body);

  CompletionRequest r;
  r.chat = chat;
  if (const json* m = field(j, "model")) {
    if (!m->is_string()) bad("model", "'model' must be a string", "invalid_type");
    r.model = m->get<std::string>();
  }
  if (chat) parse_messages(j, r); else parse_prompt(j, r);

  r.stream = boolean(j, "stream", false);
  if (const json* so = field(j, "stream_options")) {
    if (!so->is_object()) bad("stream_options", "'stream_options' must be an object", "invalid_type");
    if (!r.stream) bad("stream_options", "'stream_options' is only allowed when 'stream' is true");
    r.include_usage = boolean(*so, "include_usage", false);
  }

  SamplerParams& sp = r.sampling;  // defaults: those of `edgelm run` (llama.cpp's)
  if (double t = number(j, "temperature", 0, 2); !std::isnan(t)) sp.temp = static_cast<float>(t);
  if (double t = number(j, "top_p", 0, 1); !std::isnan(t)) {
    if (t <= 0) bad("top_p", "'top_p' must be greater than 0");
    sp.top_p = static_cast<float>(t);
  }
  if (double t = number(j, "presence_penalty", -2, 2); !std::isnan(t)) sp.presence_penalty = static_cast<float>(t);
  if (double t = number(j, "frequency_penalty", -2, 2); !std::isnan(t)) sp.frequency_penalty = static_cast<float>(t);
  // llama.cpp-server extensions.
  if (auto k = integer(j, "top_k", 0, 1 << 24)) sp.top_k = static_cast<int>(*k);
  if (double t = number(j, "min_p", 0, 1); !std::isnan(t)) sp.min_p = static_cast<float>(t);
  if (double t = number(j, "repeat_penalty", 0, 10); !std::isnan(t)) {
    if (t <= 0) bad("repeat_penalty", "'repeat_penalty' must be greater than 0");
    sp.repeat_penalty = static_cast<float>(t);
  }
  if (auto k = integer(j, "repeat_last_n", 0, 1 << 20)) sp.repeat_last_n = static_cast<int>(*k);
  if (auto s = integer(j, "seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max())) {
    sp.seed = static_cast<uint64_t>(*s);
    r.seeded = true;
  }

  auto mt = integer(j, "max_completion_tokens", 1, 1 << 20);
  if (!mt) mt = integer(j, "max_tokens", 1, 1 << 20);
  if (mt) r.max_tokens = static_cast<int>(*mt);

  if (const json* s = field(j, "stop")) {
    std::vector<std::string> stops;
    if (s->is_string()) {
      stops.push_back(s->get<std::string>());
    } else if (s->is_array()) {
      for (const auto& x : *s) {
        if (!x.is_string()) bad("stop", "'stop' must be a string or an array of strings", "invalid_type");
        stops.push_back(x.get<std::string>());
      }
    } else {
      bad("stop", "'stop' must be a string or an array of strings", "invalid_type");
    }
    if (stops.size() > kMaxStops) bad("stop", "'stop' may list at most 4 strings");
    for (const auto& x : stops) {
      if (x.empty()) bad("stop", "stop strings must not be empty");
      if (x.size() > kMaxStopBytes) bad("stop", "stop strings must be at most 256 bytes");
    }
    r.stop = std::move(stops);
  }

  if (const json* l = field(j, "lora")) r.lora = parse_lora_scales(*l);

  // Fields that would change the answer in ways this server does not implement.
  if (auto n = integer(j, "n", 1, 128); n && *n != 1) bad("n", "only 'n': 1 is supported", "unsupported_parameter");
  if (const json* lb = field(j, "logit_bias"); lb && !(lb->is_object() && lb->empty()))
    bad("logit_bias", "'logit_bias' is not supported", "unsupported_parameter");
  if (chat) {
    if (const json* lp = field(j, "logprobs"); lp && !(lp->is_boolean() && !lp->get<bool>()))
      bad("logprobs", "'logprobs' is not supported", "unsupported_parameter");
    reject_if_set(j, "top_logprobs", "log-probabilities are not returned");
    r.tools = parse_tools(j, ordered);
  } else {
    for (const char* f : {"tools", "tool_choice", "functions"})
      reject_if_set(j, f, "tool calling needs /v1/chat/completions");
    reject_if_set(j, "logprobs", "log-probabilities are not returned");
    reject_if_set(j, "suffix", "fill-in-the-middle is not supported");
    if (boolean(j, "echo", false)) bad("echo", "'echo' is not supported", "unsupported_parameter");
    if (auto b = integer(j, "best_of", 1, 128); b && *b != 1)
      bad("best_of", "only 'best_of': 1 is supported", "unsupported_parameter");
  }
  r.response_schema = parse_response_format(j, ordered);
  r.grammar = reply_grammar(r.tools, r.response_schema);
  return r;
}

std::vector<LoraScale> parse_lora_scales(const json& j) {
  const char* what = "'lora' must be an array of {\"id\": adapter index, \"scale\": number} objects";
  if (!j.is_array()) bad("lora", what, "invalid_type");
  std::vector<LoraScale> out;
  for (const json& e : j) {
    if (!e.is_object()) bad("lora", what, "invalid_type");
    const json* id = field(e, "id");
    const json* sc = field(e, "scale");
    if (!id || !id->is_number_integer() || !sc || !sc->is_number()) bad("lora", what, "invalid_type");
    const double v = sc->get<double>();
    if (!std::isfinite(v) || std::abs(v) > 100) bad("lora", "a LoRA scale must be a number between -100 and 100");
    out.push_back({id->get<int64_t>(), static_cast<float>(v)});
  }
  return out;
}

std::string client_finish_reason(const std::string& reason) {
  return reason == "length" || reason == "tool_calls" ? reason : "stop";
}

std::string finish_reason_with_calls(const std::string& reason, int n_calls) {
  return n_calls > 0 && reason == "stop" ? "tool_calls" : reason;
}

std::string call_id_prefix(const ResponseIds& ids) {
  const auto dash = ids.id.find('-');
  return "call_" + (dash == std::string::npos ? ids.id : ids.id.substr(dash + 1)) + "_";
}

json usage_json(const JobResult& r) {
  return {{"prompt_tokens", r.prompt_tokens},
          {"completion_tokens", r.completion_tokens},
          {"total_tokens", r.prompt_tokens + r.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", r.cached_tokens}}}};
}

json completion_response(const CompletionRequest& req, const ResponseIds& ids, const std::string& text,
                         const JobResult& r) {
  json choice;
  if (req.chat && req.tools.active()) {
    const ToolCallParser::Reply reply = ToolCallParser::parse(text, call_id_prefix(ids));
    json message = {{"role", "assistant"}, {"content", reply.calls.empty() ? json(reply.content) : json(nullptr)}};
    if (!reply.calls.empty()) {
      json calls = json::array();
      for (const ToolCall& c : reply.calls)
        calls.push_back({{"id", c.id}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
      message["tool_calls"] = calls;
    }
    choice = {{"index", 0},
              {"message", message},
              {"logprobs", nullptr},
              {"finish_reason", client_finish_reason(finish_reason_with_calls(r.finish_reason, static_cast<int>(reply.calls.size())))}};
  } else if (req.chat) {
    choice = {{"index", 0},
              {"message", {{"role", "assistant"}, {"content", text}}},
              {"logprobs", nullptr},
              {"finish_reason", client_finish_reason(r.finish_reason)}};
  } else {
    choice = {{"index", 0},
              {"text", text},
              {"logprobs", nullptr},
              {"finish_reason", client_finish_reason(r.finish_reason)}};
  }
  return {{"id", ids.id},
          {"object", req.chat ? "chat.completion" : "text_completion"},
          {"created", ids.created},
          {"model", ids.model},
          {"system_fingerprint", "edgelm"},
          {"choices", json::array({choice})},
          {"usage", usage_json(r)}};
}

json stream_chunk(const CompletionRequest& req, const ResponseIds& ids, const std::string& text,
                  const std::string& finish_reason, bool role_chunk) {
  const json fr = finish_reason.empty() ? json(nullptr) : json(client_finish_reason(finish_reason));
  json choice;
  if (req.chat) {
    json delta = json::object();
    if (role_chunk) delta["role"] = "assistant";
    if (role_chunk || !text.empty()) delta["content"] = text;
    choice = {{"index", 0}, {"delta", delta}, {"logprobs", nullptr}, {"finish_reason", fr}};
  } else {
    choice = {{"index", 0}, {"text", text}, {"logprobs", nullptr}, {"finish_reason", fr}};
  }
  json c = {{"id", ids.id},
            {"object", req.chat ? "chat.completion.chunk" : "text_completion"},
            {"created", ids.created},
            {"model", ids.model},
            {"system_fingerprint", "edgelm"},
            {"choices", json::array({choice})}};
  if (req.include_usage) c["usage"] = nullptr;
  return c;
}

json tool_event_chunk(const CompletionRequest& req, const ResponseIds& ids, const ToolEvent& e) {
  if (e.kind == ToolEvent::Kind::Content) return stream_chunk(req, ids, e.text, "");
  json call = {{"index", e.index}};
  if (e.kind == ToolEvent::Kind::CallStart) {
    call["id"] = e.id;
    call["type"] = "function";
    call["function"] = {{"name", e.text}, {"arguments", ""}};
  } else {
    call["function"] = {{"arguments", e.text}};
  }
  json c = stream_chunk(req, ids, "", "");
  c["choices"][0]["delta"] = {{"tool_calls", json::array({call})}};
  return c;
}

json usage_chunk(const CompletionRequest& req, const ResponseIds& ids, const JobResult& r) {
  return {{"id", ids.id},
          {"object", req.chat ? "chat.completion.chunk" : "text_completion"},
          {"created", ids.created},
          {"model", ids.model},
          {"system_fingerprint", "edgelm"},
          {"choices", json::array()},
          {"usage", usage_json(r)}};
}

}  // namespace edgelm::server
