#include "edgelm/assistant.hpp"

#include "edgelm/error.hpp"

namespace edgelm {

Assistant::Assistant(Session& session, AssistantOptions opts)
    : session_(session), opts_(std::move(opts)),
      format_(make_chat_format(session.model(), opts_.chat_format)), sampler_(opts_.sampling) {
  if (opts_.max_reply_tokens <= 0) throw Error("the reply length must be positive");
  if (opts_.max_reply_tokens >= session_.n_ctx())
    opts_.max_reply_tokens = std::max(1, session_.n_ctx() / 4);
  // With no --system, the model's template decides (SmolLM2's writes its own default); the
  // built-in formats take the default the template carries as a literal.
  std::string system = opts_.system;
  if (system.empty() && format_->name() != "model template") system = template_default_system(session.model());
  if (!system.empty()) messages_.push_back({"system", system});
  if (opts_.grammar)
    sampler_.set_grammar(GrammarConstraint(opts_.grammar, TokenTrie::build(session.model().tokenizer())));
}

std::vector<int32_t> Assistant::render_tokens(bool gen) const {
  const Tokenizer& tok = session_.model().tokenizer();
  return tok.encode(format_->render(messages_, gen), tok.add_bos(), /*parse_special=*/true);
}

void Assistant::reset() {
  const bool has_system = !messages_.empty() && messages_[0].role == "system";
  messages_.resize(has_system ? 1 : 0);
  dropped_total_ = 0;
  stats_ = {};
  sampler_.reset();
}

std::string Assistant::reply(const std::string& user,
                             const std::function<bool(std::string_view)>& on_text) {
  if (user.empty()) throw Error("empty message");
  messages_.push_back({"user", user});
  stats_ = {};
  const size_t first = !messages_.empty() && messages_[0].role == "system" ? 1 : 0;
  const int budget = session_.n_ctx() - opts_.max_reply_tokens;
  std::vector<int32_t> prompt;
  try {
    prompt = render_tokens(true);
  } catch (...) {
    messages_.pop_back();  // a template that rejects the conversation leaves it unchanged
    throw;
  }
  // Drop the oldest exchanges (a user message and the reply after it) until the prompt leaves
  // room for a full reply; the system prompt and the new message always stay.
  while (static_cast<int>(prompt.size()) > budget && messages_.size() - first > 1) {
    const size_t n = messages_.size() - first > 2 && messages_[first + 1].role == "assistant" ? 2 : 1;
    messages_.erase(messages_.begin() + first, messages_.begin() + first + n);
    ++dropped_total_;
    prompt = render_tokens(true);
  }
  if (static_cast<int>(prompt.size()) > budget) {
    messages_.pop_back();
    throw Error("the message needs " + std::to_string(prompt.size()) + " tokens with the system prompt, but only " +
                    std::to_string(budget) + " fit beside the reply",
                "shorten it, or raise the context size with -c");
  }
  stats_.prompt_tokens = static_cast<int>(prompt.size());
  stats_.dropped_exchanges = dropped_total_;
  stats_.reused_tokens = session_.reuse_prefix(0, prompt);

  std::string text;
  if (GrammarConstraint* g = sampler_.grammar()) g->reset();
  TokenStreamDecoder dec(session_.model().tokenizer());
  const std::span<const int32_t> rest(prompt.data() + stats_.reused_tokens,
                                      prompt.size() - stats_.reused_tokens);
  const auto on_token = [&](int32_t t) {
    const std::string piece = dec.push(t);
    text += piece;
    if (!piece.empty() && !on_text(piece)) {
      stats_.stopped = true;
      return false;
    }
    return true;
  };
  stats_.reply_tokens = opts_.drafter ? generate_speculative(session_, sampler_, *opts_.drafter, rest,
                                                             opts_.max_reply_tokens, on_token, opts_.speculative,
                                                             &stats_.drafts)
                                      : generate(session_, sampler_, rest, opts_.max_reply_tokens, on_token);
  const std::string tail = dec.flush();
  if (!tail.empty() && !stats_.stopped) {
    text += tail;
    on_text(tail);
  }
  messages_.push_back({"assistant", text});
  return text;
}

}  // namespace edgelm
