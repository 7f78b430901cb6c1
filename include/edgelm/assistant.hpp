// A multi-turn chat assistant on top of a Session: keeps the conversation, renders it with the
// model's chat format, trims the oldest exchanges to fit the context (the system prompt always
// stays), reuses the KV cache for the unchanged prefix and streams the reply.
//
//   edgelm::Session session(model, {.n_ctx = 2048});
//   edgelm::Assistant bot(session, {.system = "You are terse."});
//   bot.reply("Hi!", [](std::string_view piece) { std::cout << piece << std::flush; return true; });
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "edgelm/sampler.hpp"
#include "edgelm/session.hpp"
#include "edgelm/speculative.hpp"

namespace edgelm {

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

// Turns messages into the prompt text a model was trained on.
class ChatFormat {
 public:
  virtual ~ChatFormat() = default;
  virtual std::string name() const = 0;
  virtual std::string render(const std::vector<ChatMessage>& messages,
                             bool add_generation_prompt) const = 0;
};

// The format named explicitly ("chatml", "llama3", "gemma"), or, when `name` is empty, the one
// the model's tokenizer.chat_template describes. Throws edgelm::Error if it is not recognised.
std::unique_ptr<ChatFormat> make_chat_format(const Model& model, const std::string& name = "");
// The default system prompt a chat template writes when the conversation has none ("" if none).
std::string template_default_system(const Model& model);

struct AssistantOptions {
  std::string system;          // empty: the template's default system prompt, if any
  std::string chat_format;     // empty: from the model
  int max_reply_tokens = 512;  // also the room kept free for the reply when trimming
  SamplerParams sampling{};
  // Speculative decoding of the replies (not owned; it must outlive the assistant).
  Drafter* drafter = nullptr;
  SpeculativeOptions speculative{};
  std::shared_ptr<const Grammar> grammar;  // when set, every reply follows it from its start
};

struct TurnStats {
  int prompt_tokens = 0;      // tokens of the rendered conversation for this turn
  int reused_tokens = 0;      // of those, already in the KV cache
  int dropped_exchanges = 0;  // oldest user/assistant pairs trimmed to fit so far
  int reply_tokens = 0;
  bool stopped = false;       // the caller's callback stopped the reply
  SpeculativeStats drafts{};  // with a drafter
};

class Assistant {
 public:
  Assistant(Session& session, AssistantOptions opts);
  // Adds the user's message, generates the reply calling on_text with each decoded piece
  // (return false to stop early: the partial reply is kept), and returns the whole reply.
  std::string reply(const std::string& user, const std::function<bool(std::string_view)>& on_text);
  void reset();  // forgets the conversation (keeps the system prompt)
  const std::vector<ChatMessage>& history() const { return messages_; }
  const TurnStats& last_turn() const { return stats_; }
  const ChatFormat& format() const { return *format_; }

 private:
  std::vector<int32_t> render_tokens(bool add_generation_prompt) const;
  Session& session_;
  AssistantOptions opts_;
  std::unique_ptr<ChatFormat> format_;
  Sampler sampler_;
  std::vector<ChatMessage> messages_;  // messages_[0] is the system prompt when present
  TurnStats stats_;
  int dropped_total_ = 0;
};

}  // namespace edgelm
