#include <gtest/gtest.h>

#include "server/api.hpp"

namespace edgelm::server {
namespace {

std::string param_of(const std::string& body, bool chat) {
  try {
    parse_completion_request(body, chat);
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400);
    return e.body()["error"]["param"].is_null() ? "" : e.body()["error"]["param"].get<std::string>();
  }
  ADD_FAILURE() << "accepted: " << body;
  return "<accepted>";
}

TEST(ApiParse, ChatRequestFields) {
  auto r = parse_completion_request(R"({"model":"m","messages":[{"role":"developer","content":"Be brief."},
      {"role":"user","content":[{"type":"text","text":"Hi "},{"type":"text","text":"there"}]}],
      "temperature":0,"top_p":0.5,"max_tokens":7,"stop":"\n","seed":-1,"stream":true,
      "stream_options":{"include_usage":true},"presence_penalty":1,"frequency_penalty":-1,"user":"u",
      "n":1,"logit_bias":{},"tools":[],"tool_choice":"none","response_format":{"type":"text"}})", true);
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[1].content, "Hi there");
  EXPECT_EQ(r.sampling.temp, 0.0f);
  EXPECT_FLOAT_EQ(r.sampling.top_p, 0.5f);
  EXPECT_EQ(r.max_tokens, 7);
  EXPECT_EQ(r.stop, std::vector<std::string>{"\n"});
  EXPECT_TRUE(r.seeded);
  EXPECT_EQ(r.sampling.seed, ~uint64_t{0});
  EXPECT_TRUE(r.stream && r.include_usage);
  EXPECT_EQ(r.sampling.presence_penalty, 1.0f);
  EXPECT_EQ(r.sampling.frequency_penalty, -1.0f);
}

TEST(ApiParse, CompletionPromptForms) {
  EXPECT_EQ(parse_completion_request(R"({"prompt":"abc"})", false).prompt, "abc");
  EXPECT_EQ(parse_completion_request(R"({"prompt":["abc"]})", false).prompt, "abc");
  auto ids = parse_completion_request(R"({"prompt":[1,2,3],"max_completion_tokens":4})", false);
  ASSERT_TRUE(ids.prompt_ids.has_value());
  EXPECT_EQ(*ids.prompt_ids, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(ids.max_tokens, 4);
  EXPECT_EQ(parse_completion_request(R"({"prompt":"x"})", false).max_tokens, -1);
}

TEST(ApiParse, BadFieldsNameTheParameter) {
  EXPECT_EQ(param_of("{", true), "");
  EXPECT_EQ(param_of("null", true), "");
  EXPECT_EQ(param_of(R"({"messages":{}})", true), "messages");
  EXPECT_EQ(param_of(R"({"messages":[{"role":"user"},{"role":"function","content":"x"}]})", true), "messages[1].role");
  EXPECT_EQ(param_of(R"({"messages":[{"role":"user","content":"x"}],"top_p":0})", true), "top_p");
  EXPECT_EQ(param_of(R"({"messages":[{"role":"user","content":"x"}],"max_tokens":true})", true), "max_tokens");
  EXPECT_EQ(param_of(R"({"messages":[{"role":"user","content":"x"}],"stop":["a",""]})", true), "stop");
  EXPECT_EQ(param_of(R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"xml"}})", true),
            "response_format.type");
  EXPECT_NE(param_of(R"({"messages":[{"role":"user","content":"x"}],"temperature":1e999})", true), "<accepted>");
  EXPECT_EQ(param_of(R"({"prompt":"x","best_of":2})", false), "best_of");
  EXPECT_EQ(param_of(R"({"prompt":"x","suffix":"y"})", false), "suffix");
  EXPECT_EQ(param_of(R"({"prompt":[1,-2]})", false), "prompt");
  EXPECT_EQ(param_of(R"({"prompt":"x","top_k":-1})", false), "top_k");
  EXPECT_EQ(param_of(R"({"prompt":"x","n":18446744073709551615})", false), "n");
}

TEST(ApiParse, DeepNestingIsRefusedNotRecursedInto) {
  std::string deep = R"({"prompt":"x","a":)" + std::string(10000, '[') + std::string(10000, ']') + "}";
  EXPECT_EQ(param_of(deep, false), "");
}

TEST(ApiParse, InvalidUtf8IsAJsonError) {
  EXPECT_EQ(param_of("{\"prompt\":\"\xff\"}", false), "");
}

TEST(ApiResponse, ChunkAndResponseShapes) {
  CompletionRequest chat;
  chat.chat = true;
  ResponseIds ids{"chatcmpl-1", 123, "m"};
  JobResult r;
  r.finish_reason = "length";
  r.prompt_tokens = 5;
  r.completion_tokens = 2;
  r.cached_tokens = 3;
  auto full = completion_response(chat, ids, "hi", r);
  EXPECT_EQ(full["object"], "chat.completion");
  EXPECT_EQ(full["choices"][0]["message"]["content"], "hi");
  EXPECT_EQ(full["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(full["usage"]["total_tokens"], 7);
  EXPECT_EQ(full["usage"]["prompt_tokens_details"]["cached_tokens"], 3);
  auto first = stream_chunk(chat, ids, "", "", true);
  EXPECT_EQ(first["choices"][0]["delta"], (nlohmann::json{{"role", "assistant"}, {"content", ""}}));
  auto last = stream_chunk(chat, ids, "", "cancelled");
  EXPECT_TRUE(last["choices"][0]["delta"].empty());
  EXPECT_EQ(last["choices"][0]["finish_reason"], "stop");
  CompletionRequest text;
  auto c = stream_chunk(text, {"cmpl-1", 1, "m"}, "abc", "");
  EXPECT_EQ(c["object"], "text_completion");
  EXPECT_EQ(c["choices"][0]["text"], "abc");
  EXPECT_TRUE(c["choices"][0]["finish_reason"].is_null());
}

}  // namespace
}  // namespace edgelm::server
