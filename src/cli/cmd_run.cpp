// edgelm run: complete a prompt, streaming tokens to stdout.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "cli/text_file.hpp"
#include "edgelm/error.hpp"
#include "edgelm/model.hpp"
#include "edgelm/session.hpp"

namespace edgelm::cli {
namespace {

struct RunArgs {
  ModelOptions mo;
  SamplingOptions sp;
  DraftOptions draft;
  std::string prompt;
  std::string prompt_file;
  int n_predict = 128;
  int keep = 0;
  bool no_context_shift = false;
  bool no_special = false;
  bool timings = false;
};

void run(RunArgs& a) {
  using clock = std::chrono::steady_clock;
  std::string prompt = a.prompt;
  // 64 MiB is far more text than the largest context (-c 1048576 tokens) holds.
  if (!a.prompt_file.empty()) prompt += read_text_file(a.prompt_file, size_t{64} << 20, "prompt file");
  if (prompt.empty()) throw Error("the prompt is empty", "pass -p TEXT or -f FILE");
  const auto t0 = clock::now();
  auto model = load_model(a.mo);
  Session session(model, a.mo.session);
  const std::unique_ptr<Drafter> drafter = make_drafter(a.draft, model, a.mo.session);
  const auto t1 = clock::now();
  const Tokenizer& tok = model->tokenizer();
  std::vector<int32_t> ids = tok.encode(prompt, tok.add_bos(), !a.no_special);
  if (ids.empty()) throw Error("the prompt produced no tokens");
  if (static_cast<int>(ids.size()) >= session.n_ctx())
    throw Error("the prompt has " + std::to_string(ids.size()) + " tokens but the context holds " +
                    std::to_string(session.n_ctx()),
                "shorten the prompt or raise -c");
  report_drawn_seed(a.sp);
  Sampler sampler = make_sampler(a.sp, tok);
  TokenStreamDecoder dec(tok);
  std::fwrite(prompt.data(), 1, prompt.size(), stdout);
  std::fflush(stdout);
  clock::time_point t_first{};
  // Context shift keeps the BOS token (if any) and `--keep` prompt tokens (-1: all of them).
  const int bos = tok.add_bos() ? 1 : 0;
  ContextShift shift;
  shift.n_keep = a.keep < 0 ? static_cast<int>(ids.size()) : std::min<int>(bos + a.keep, static_cast<int>(ids.size()));
  shift.on_shift = [&](int dropped) {
    std::fprintf(stderr, "\n[context full: dropped %d tokens after the first %d, continuing]\n", dropped, shift.n_keep);
  };
  const auto on_token = [&](int32_t t) {
    if (t_first == clock::time_point{}) t_first = clock::now();
    const std::string piece = dec.push(t);
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
    return true;
  };
  const ContextShift* shifting = a.no_context_shift ? nullptr : &shift;
  SpeculativeStats stats;
  const int n = drafter ? generate_speculative(session, sampler, *drafter, ids, a.n_predict, on_token, a.draft.spec,
                                               &stats, 0, shifting)
                        : generate(session, sampler, ids, a.n_predict, on_token, 0, shifting);
  const std::string tail = dec.flush();
  std::fwrite(tail.data(), 1, tail.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
  const auto t2 = clock::now();
  if (GrammarConstraint* g = sampler.grammar(); g && !g->is_complete())
    std::fprintf(stderr, "[the grammar's text is unfinished after %d tokens — raise -n]\n", n);
  if (n < a.n_predict && session.n_past() >= session.n_ctx())
    std::fprintf(stderr, "[context full at %d tokens: generation stopped after %d tokens — raise -c%s]\n",
                 session.n_ctx(), n, a.no_context_shift ? ", or leave out --no-context-shift" : " or lower --keep");
  if (a.timings) {
    auto sec = [](auto d) { return std::chrono::duration<double>(d).count(); };
    const double prefill = t_first == clock::time_point{} ? sec(t2 - t1) : sec(t_first - t1);
    const double gen = t_first == clock::time_point{} ? 0.0 : sec(t2 - t_first);
    std::fprintf(stderr,
                 "load %.3f s | prompt %zu tokens in %.3f s (%.1f tok/s) | generated %d tokens, "
                 "%.1f tok/s after the first | %d threads\n",
                 sec(t1 - t0), ids.size(), prefill, ids.size() / prefill, n,
                 n > 1 && gen > 0 ? (n - 1) / gen : 0.0, session.n_threads());
    if (drafter) std::fprintf(stderr, "%s | %s\n", drafter->describe().c_str(), describe_drafts(stats).c_str());
  }
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto a = std::make_shared<RunArgs>();
  a->sp.params.temp = 0.8f;
  CLI::App* cmd = app.add_subcommand("run", "complete a prompt, streaming the tokens");
  add_model_options(*cmd, a->mo);
  add_sampling_options(*cmd, a->sp);
  add_draft_options(*cmd, a->draft);
  cmd->add_option("-p,--prompt", a->prompt, "prompt text");
  cmd->add_option("-f,--file", a->prompt_file, "read the prompt from a file");
  cmd->add_option("-n,--n-predict", a->n_predict, "tokens to generate")->check(Range(0, 1 << 20))->capture_default_str();
  cmd->add_option("--keep", a->keep, "prompt tokens kept when the context fills and shifts (-1: all)")
      ->check(Range(-1, 1 << 20))
      ->capture_default_str();
  cmd->add_flag("--no-context-shift", a->no_context_shift,
                "stop when the context is full instead of dropping the oldest half of the text and going on");
  cmd->add_flag("--no-special", a->no_special, "tokenize special-token text such as <|im_start|> as plain text");
  cmd->add_flag("--timings", a->timings, "print load / prompt / generation speed to stderr");
  cmd->callback([a] { run(*a); });
}

}  // namespace edgelm::cli
