// edgelm bench --grammar-schema F...: what grammar-constrained decoding costs per generated
// token, as a fraction of a decode step. Each schema drives a real generation (chat prompt,
// greedy and sampled); at every step the same logits go through a constrained sampler and a
// plain one, so the difference of their sample + accept times is the grammar's share alone
// (the first sight of each state, with its full mask, included). The decode step is the forward
// pass of one token.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/bench_grammar.hpp"
#include "cli/common.hpp"
#include "edgelm/assistant.hpp"
#include "edgelm/error.hpp"
#include "edgelm/grammar.hpp"
#include "edgelm/model.hpp"
#include "edgelm/sampler.hpp"
#include "edgelm/session.hpp"

namespace edgelm::cli {
namespace {

using clock_type = std::chrono::steady_clock;

double ms_since(clock_type::time_point t) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t).count();
}

struct GrammarTotals {
  int tokens = 0;
  int evals = 0;
  int unfinished = 0;
  double decode_ms = 0;
  double grammar_ms = 0;      // constrained sample + accept minus plain sample + accept
  double plain_ms = 0;        // plain sample + accept
  double worst_token_ms = 0;  // the largest one token's grammar share
};

// One constrained generation; adds its timings to `t`.
void run_one(Session& s, const std::vector<int32_t>& prompt, const std::shared_ptr<const Grammar>& g,
             const std::shared_ptr<const TokenTrie>& trie, const SamplerParams& p, int n_gen, GrammarTotals& t) {
  Sampler constrained(p), plain(p);
  constrained.set_grammar(GrammarConstraint(g, trie));
  s.truncate(0, 0);
  std::span<const float> logits = s.eval(prompt);
  for (int n = 0; n < n_gen; ++n) {
    auto t0 = clock_type::now();
    const int32_t tok = constrained.sample(logits);
    const bool end = trie->is_eog(tok);
    if (!end) constrained.accept(tok);
    const double with_grammar = ms_since(t0);
    t0 = clock_type::now();
    (void)plain.sample(logits);
    if (!end) plain.accept(tok);
    const double plain_ms = ms_since(t0);
    const double share = with_grammar - plain_ms;
    t.plain_ms += plain_ms;
    t.grammar_ms += share;
    t.worst_token_ms = std::max(t.worst_token_ms, share);
    ++t.tokens;
    if (end) return;
    const int32_t one[1] = {tok};
    t0 = clock_type::now();
    logits = s.eval(one);
    t.decode_ms += ms_since(t0);
    ++t.evals;
  }
  if (!constrained.grammar()->is_complete()) ++t.unfinished;
}

}  // namespace

void bench_grammar(const GrammarBenchArgs& a) {
  const auto t_load = clock_type::now();
  auto model = Model::load(a.model);
  const double load_ms = ms_since(t_load);
  auto t0 = clock_type::now();
  const auto trie = TokenTrie::build(model->tokenizer());
  const double trie_ms = ms_since(t0);
  SessionOptions so;
  so.n_threads = a.threads;
  so.n_ctx = 1024;
  Session s(model, so);
  const auto format = make_chat_format(*model);
  std::printf("model: %s, vocabulary %d tokens, load %.0f ms, token trie %.1f ms (%zu nodes, once per vocabulary), "
              "%d threads\n\n",
              model->config().name.c_str(), trie->n_vocab(), load_ms, trie_ms, trie->nodes().size(), so.n_threads);
  std::printf("| schema | decoding | tokens | decode step ms | sampling us / token, plain | grammar's extra us / token | "
              "share of a step | worst token's extra ms | cold start-state mask ms |\n");
  std::printf("|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
  GrammarTotals all;
  for (const std::string& file : a.schema_files) {
    const auto g = grammar_from_schema_file(file);
    t0 = clock_type::now();
    GrammarConstraint cold(g, trie);
    (void)cold.allowed();
    const double cold_ms = ms_since(t0);
    const std::string request = "Answer in JSON. " + a.request;
    const auto prompt = model->tokenizer().encode(format->render({{"user", request}}, true), model->tokenizer().add_bos(), true);
    for (const bool sampled : {false, true}) {
      SamplerParams p;
      p.temp = sampled ? 0.8f : 0.0f;
      p.seed = 7;
      GrammarTotals t;
      for (int r = 0; r < a.reps; ++r) run_one(s, prompt, g, trie, p, a.n_gen, t);
      const double step = t.decode_ms / std::max(1, t.evals);
      const double per_token = t.grammar_ms / std::max(1, t.tokens);
      std::printf("| %s | %s | %d | %.2f | %.1f | %.1f | %.2f %% | %.2f | %.2f |\n",
                  file.substr(file.find_last_of('/') + 1).c_str(), sampled ? "sampled" : "greedy", t.tokens, step,
                  t.plain_ms / std::max(1, t.tokens) * 1e3, per_token * 1e3, 100.0 * per_token / step,
                  t.worst_token_ms, cold_ms);
      all.tokens += t.tokens;
      all.decode_ms += t.decode_ms;
      all.evals += t.evals;
      all.grammar_ms += t.grammar_ms;
      all.unfinished += t.unfinished;
      all.worst_token_ms = std::max(all.worst_token_ms, t.worst_token_ms);
    }
  }
  const double step = all.decode_ms / std::max(1, all.evals);
  const double per_token = all.grammar_ms / std::max(1, all.tokens);
  std::printf("\nall: %d tokens, decode step %.2f ms, grammar %.1f us per token = %.2f %% of a step, worst token %.2f ms"
              "%s\n",
              all.tokens, step, per_token * 1e3, 100.0 * per_token / step, all.worst_token_ms,
              all.unfinished ? (", " + std::to_string(all.unfinished) + " runs unfinished at -n").c_str() : "");
}

}  // namespace edgelm::cli
