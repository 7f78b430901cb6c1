// edgelm chat: an interactive (or piped) multi-turn assistant.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include <unistd.h>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "edgelm/assistant.hpp"
#include "edgelm/error.hpp"
#include "edgelm/model.hpp"

namespace edgelm::cli {
namespace {

// Ctrl-C while a reply streams stops that reply; Ctrl-C at the prompt leaves.
std::atomic<bool> g_generating{false};
std::atomic<bool> g_interrupt{false};

extern "C" void on_sigint(int) {
  if (g_generating.load()) {
    g_interrupt.store(true);
  } else {
    const char nl = '\n';
    (void)!write(STDOUT_FILENO, &nl, 1);
    _exit(130);
  }
}

struct ChatArgs {
  ModelOptions mo;
  SamplingOptions so;
  AssistantOptions ao;
  DraftOptions draft;
  bool stats = false;
};

void chat(ChatArgs& a) {
  auto model = load_model(a.mo);
  Session session(model, a.mo.session);
  a.ao.sampling = a.so.params;
  const std::unique_ptr<Drafter> drafter = make_drafter(a.draft, model, a.mo.session);
  a.ao.drafter = drafter.get();
  a.ao.speculative = a.draft.spec;
  a.ao.grammar = a.so.grammar;
  report_drawn_seed(a.so);
  Assistant bot(session, a.ao);
  const bool tty = stdin_is_terminal();
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  if (tty)
    std::fprintf(stderr, "edgelm chat — %s (%s format, %d-token context). /reset clears, /exit leaves, Ctrl-C stops a reply.\n",
                 model->config().name.c_str(), bot.format().name().c_str(), session.n_ctx());
  std::string line;
  int failed = 0, messages = 0;
  for (;;) {
    if (tty) {
      std::fputs("\n> ", stdout);
      std::fflush(stdout);
    }
    if (!std::getline(std::cin, line)) break;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      bot.reset();
      std::fputs(tty ? "(conversation cleared)\n" : "", stdout);
      if (a.stats) std::fprintf(stderr, "[reset]\n");
      continue;
    }
    ++messages;
    g_interrupt.store(false);
    g_generating.store(true);
    try {
      bot.reply(line, [](std::string_view piece) {
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
        return !g_interrupt.load();
      });
    } catch (const Error& e) {
      g_generating.store(false);
      std::fprintf(stderr, "error: %s\n", e.message().c_str());
      ++failed;
      continue;  // one bad message does not end the session
    }
    g_generating.store(false);
    std::fputc('\n', stdout);
    std::fflush(stdout);
    const TurnStats& s = bot.last_turn();
    if (a.stats)
      std::fprintf(stderr, "[turn: prompt=%d reused=%d reply=%d dropped=%d messages=%zu%s%s%s]\n",
                   s.prompt_tokens, s.reused_tokens, s.reply_tokens, s.dropped_exchanges,
                   bot.history().size(), s.stopped ? " stopped" : "", drafter ? " | " : "",
                   drafter ? describe_drafts(s.drafts).c_str() : "");
  }
  // A script that pipes messages in learns from the exit code that some went unanswered.
  if (failed > 0 && !tty)
    throw Error(std::to_string(failed) + " of " + std::to_string(messages) + " messages failed (see the errors above)");
}

}  // namespace

void add_chat_command(CLI::App& app) {
  auto a = std::make_shared<ChatArgs>();
  a->so.params.temp = 0.7f;
  CLI::App* cmd = app.add_subcommand("chat", "talk with the model; reads a pipe when stdin is not a terminal");
  add_model_options(*cmd, a->mo);
  add_sampling_options(*cmd, a->so);
  add_draft_options(*cmd, a->draft);
  cmd->add_option("--system", a->ao.system, "system prompt (default: the chat template's)");
  cmd->add_option("--chat-format", a->ao.chat_format, "override the model's chat format: chatml, llama3, gemma");
  cmd->add_option("-n,--n-predict", a->ao.max_reply_tokens, "longest reply in tokens")->check(Range(1, 1 << 20))->capture_default_str();
  cmd->add_flag("--stats", a->stats, "print per-turn token accounting to stderr");
  cmd->callback([a] { chat(*a); });
}

}  // namespace edgelm::cli
