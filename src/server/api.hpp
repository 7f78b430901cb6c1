// The OpenAI request and response shapes: parsing request bodies into generation settings
// (every field checked for type and range; a field edgelm cannot honour is an error, not
// silently ignored) and building the response and stream-chunk objects.
#pragma once
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "edgelm/assistant.hpp"
#include "edgelm/sampler.hpp"
#include "server/engine.hpp"
#include "server/tools.hpp"

namespace edgelm::server {

// An error answered with an OpenAI-style body: {"error": {"message", "type", "param", "code"}}.
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string message, std::string param = {}, std::string code = {},
           std::string type = {});
  int status() const { return status_; }
  nlohmann::json body() const;

 private:
  int status_;
  std::string param_, code_, type_;
};

nlohmann::json error_body(const std::string& message, const std::string& type,
                          const std::string& param = {}, const std::string& code = {});
// "invalid_request_error" for 4xx, "server_error" for 5xx, as OpenAI names them.
std::string error_type_for_status(int status);

struct LoraScale {
  int64_t id;
  float scale;
};

// A request body as JSON; ApiError (400, invalid_json) when it is not JSON or nests too deep.
nlohmann::json parse_body(const std::string& body);

// A "lora" list ([{"id": i, "scale": s}, ...], as llama.cpp's server takes in a request and at
// POST /lora-adapters). Throws ApiError (400) for anything else; ids are checked by the caller.
std::vector<LoraScale> parse_lora_scales(const nlohmann::json& j);

struct CompletionRequest {
  bool chat = false;
  std::string model;                    // "" when absent
  bool stream = false;
  bool include_usage = false;           // stream_options.include_usage
  std::vector<RequestMessage> messages; // chat
  std::string prompt;                   // completions, as text
  std::optional<std::vector<int32_t>> prompt_ids;  // completions, as token ids
  SamplerParams sampling{};
  bool seeded = false;                  // "seed" was given
  int max_tokens = -1;                  // -1: until the context is full
  std::vector<std::string> stop;
  // llama.cpp-server's per-request adapters: [{"id": i, "scale": s}, ...]; the server's
  // adapters not listed get scale 0. Absent: the server's current scales.
  std::optional<std::vector<LoraScale>> lora;
  ToolsRequest tools;                   // chat: tools, tool_choice, parallel_tool_calls
  std::optional<nlohmann::ordered_json> response_schema;  // response_format (json_object: any object)
  std::shared_ptr<const Grammar> grammar;  // what the reply must follow; null: free text
};

// Throws ApiError (400) naming the offending field. Unknown fields that change nothing edgelm
// does (user, metadata, ...) are accepted.
CompletionRequest parse_completion_request(const std::string& body, bool chat);

struct ResponseIds {
  std::string id;     // "chatcmpl-..." or "cmpl-..."
  int64_t created;    // Unix seconds
  std::string model;
};

nlohmann::json usage_json(const JobResult& r);
// Non-streaming response objects.
nlohmann::json completion_response(const CompletionRequest& req, const ResponseIds& ids,
                                   const std::string& text, const JobResult& r);
// One streamed chunk: a text delta (finish_reason empty), or the closing chunk with the
// finish reason. The chat stream opens with a chunk whose delta carries the role.
nlohmann::json stream_chunk(const CompletionRequest& req, const ResponseIds& ids,
                            const std::string& text, const std::string& finish_reason,
                            bool role_chunk = false);
// The extra final chunk for stream_options.include_usage: no choices, only usage.
nlohmann::json usage_chunk(const CompletionRequest& req, const ResponseIds& ids, const JobResult& r);
// A finish reason OpenAI clients know ("cancelled" never reaches a client; "error" -> "stop";
// "tool_calls" stays).
std::string client_finish_reason(const std::string& reason);
// The finish reason of a reply that made `n_calls` tool calls: "tool_calls" when it ended by itself.
std::string finish_reason_with_calls(const std::string& reason, int n_calls);
// The prefix of the tool-call ids of a response ("call_" and the response id's random part).
std::string call_id_prefix(const ResponseIds& ids);
// A streamed chunk for a tool-call event (OpenAI's delta.tool_calls: the first with index, id,
// type and name and empty arguments, then argument fragments), or a content chunk.
nlohmann::json tool_event_chunk(const CompletionRequest& req, const ResponseIds& ids, const ToolEvent& e);

}  // namespace edgelm::server
