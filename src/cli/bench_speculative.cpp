// edgelm bench --draft M | --draft-exit K | --lookup: speculative against plain decoding on
// the same prompts, same model, same run.
#include "cli/bench_speculative.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "cli/text_file.hpp"
#include "edgelm/bench.hpp"
#include "edgelm/error.hpp"

namespace edgelm::cli {
namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

std::vector<std::string> read_prompts(const std::string& path) {
  const std::string text = read_text_file(path, size_t{16} << 20, "prompt file");
  std::vector<std::string> out;
  size_t line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    const size_t end = std::min(text.find('\n', pos), text.size());
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      throw Error(path + ":" + std::to_string(line_no) + ": not JSON",
                  "write one prompt per line as {\"prompt\": \"...\"} or a JSON string");
    }
    if (j.is_object() && j.contains("prompt") && j["prompt"].is_string()) out.push_back(j["prompt"]);
    else if (j.is_string()) out.push_back(j);
    else throw Error(path + ":" + std::to_string(line_no) + ": no \"prompt\" string", "write {\"prompt\": \"...\"}");
  }
  if (out.empty()) throw Error("the prompt file " + path + " holds no prompts", "write one JSON prompt per line");
  return out;
}

// One generation: its tokens and the seconds from the first new token to the last (the
// prompt's pass and the first token are the same work in both modes).
struct Run {
  std::vector<int32_t> tokens;
  double seconds = 0;
  SpeculativeStats stats;
  double tokens_per_second() const { return tokens.size() > 1 && seconds > 0 ? (tokens.size() - 1) / seconds : 0.0; }
};

Run generate_once(Session& s, const SamplerParams& sp, const std::vector<int32_t>& prompt, int n_gen, Drafter* d,
                  const SpeculativeOptions& so) {
  s.truncate(0, 0);
  Sampler sampler(sp);
  Run r;
  Clock::time_point first{};
  const auto on_token = [&](int32_t t) {
    if (r.tokens.empty()) first = Clock::now();
    r.tokens.push_back(t);
    return true;
  };
  if (d)
    generate_speculative(s, sampler, *d, prompt, n_gen, on_token, so, &r.stats);
  else
    generate(s, sampler, prompt, n_gen, on_token);
  r.seconds = r.tokens.empty() ? 0.0 : seconds(first, Clock::now());
  return r;
}

// Seconds of a verification pass over n tokens after the prompt, n = 1 .. n_max (the fastest
// of 5): what a draft must beat.
std::vector<double> pass_costs(Session& s, const std::vector<int32_t>& prompt, int n_max) {
  std::vector<double> out;
  s.truncate(0, 0);
  s.eval(prompt);
  const int base = s.n_past();
  for (int n = 1; n <= n_max; ++n) {
    const std::vector<int32_t> toks(static_cast<size_t>(n), prompt.back());
    double best = 1e30;
    for (int r = 0; r < 5; ++r) {
      const auto t0 = Clock::now();
      s.eval_as_decoded(toks);
      best = std::min(best, seconds(t0, Clock::now()));
      s.truncate(0, base);
    }
    out.push_back(best);
  }
  return out;
}

}  // namespace

void bench_speculative(const SpeculativeBenchArgs& a) {
  if (a.prompts_file.empty())
    throw Error("a speculative benchmark needs prompts", "pass --prompts FILE (one {\"prompt\": ...} per line)");
  const std::vector<std::string> texts = read_prompts(a.prompts_file);
  const std::shared_ptr<const Model> model = Model::load(a.model);
  const Tokenizer& tok = model->tokenizer();
  std::vector<std::vector<int32_t>> prompts;
  int longest = 0;
  for (const std::string& t : texts) {
    prompts.push_back(tok.encode(t, tok.add_bos(), true));
    longest = std::max(longest, static_cast<int>(prompts.back().size()));
  }
  const SamplerParams sp{.temp = a.temp, .seed = a.seed};
  if (!a.json)
    std::printf("model %s, %s, %zu prompts, %d new tokens each, %s, %d repetitions\n\n", model->config().name.c_str(),
                a.draft.model.empty() ? "" : ("draft " + a.draft.model).c_str(), prompts.size(), a.n_gen,
                a.temp > 0 ? "sampled" : "greedy", a.reps);
  for (int threads : a.threads) {
    SessionOptions so{.n_ctx = longest + a.n_gen + 8, .n_threads = threads};
    Session s(model, so);
    const std::unique_ptr<Drafter> d = make_drafter(a.draft, model, so);
    const std::vector<double> costs = pass_costs(s, prompts.front(), a.draft.spec.draft_max + 1);
    if (a.json) {
      nlohmann::json j{{"threads", threads}, {"pass_seconds_by_tokens", costs}};
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf("a pass over n tokens, in one-token passes' time (n = 1: %.2f ms):", costs[0] * 1e3);
      for (size_t n = 0; n < costs.size(); ++n) std::printf(" %zu: %.2f", n + 1, costs[n] / costs[0]);
      std::printf("\n\n");
    }
    if (!a.json) {
      std::printf("%s, %d thread%s\n\n", d->describe().c_str(), threads, threads == 1 ? "" : "s");
      std::printf("| prompt | plain t/s | speculative t/s | speed-up | drafted | kept | acceptance | kept per step | same text |\n");
      std::printf("|-------:|----------:|----------------:|---------:|--------:|-----:|-----------:|--------------:|:---------:|\n");
    }
    double plain_tokens = 0, plain_s = 0, spec_tokens = 0, spec_s = 0;
    SpeculativeStats all;
    int same_count = 0;
    for (size_t i = 0; i < prompts.size(); ++i) {
      generate_once(s, sp, prompts[i], std::min(a.n_gen, 8), nullptr, a.draft.spec);  // warm-up
      std::vector<double> plain_ts, spec_ts;
      Run plain, spec;
      for (int r = 0; r < a.reps; ++r) {  // alternate, so that drifts in the machine's speed hit both
        plain = generate_once(s, sp, prompts[i], a.n_gen, nullptr, a.draft.spec);
        spec = generate_once(s, sp, prompts[i], a.n_gen, d.get(), a.draft.spec);
        plain_ts.push_back(plain.tokens_per_second());
        spec_ts.push_back(spec.tokens_per_second());
        plain_tokens += static_cast<double>(plain.tokens.size()) - 1, plain_s += plain.seconds;
        spec_tokens += static_cast<double>(spec.tokens.size()) - 1, spec_s += spec.seconds;
        all.drafted += spec.stats.drafted, all.accepted += spec.stats.accepted;
        all.draft_steps += spec.stats.draft_steps, all.steps += spec.stats.steps;
      }
      const bool same = plain.tokens == spec.tokens;
      same_count += same;
      const double p = sample_stats(plain_ts).median, q = sample_stats(spec_ts).median;
      if (a.json) {
        nlohmann::json j{{"prompt", i}, {"threads", threads}, {"drafter", d->describe()},
                         {"plain_tokens_per_second", p}, {"speculative_tokens_per_second", q},
                         {"speedup", p > 0 ? q / p : 0.0}, {"drafted", spec.stats.drafted},
                         {"accepted", spec.stats.accepted}, {"acceptance_rate", spec.stats.acceptance_rate()},
                         {"mean_accepted", spec.stats.mean_accepted()}, {"same_text", same},
                         {"generated", spec.tokens.size()}};
        std::printf("%s\n", j.dump().c_str());
      } else {
        std::printf("| %6zu | %9.2f | %15.2f | %7.2fx | %7lld | %4lld | %10.2f | %13.2f | %9s |\n", i, p, q,
                    p > 0 ? q / p : 0.0, static_cast<long long>(spec.stats.drafted),
                    static_cast<long long>(spec.stats.accepted), spec.stats.acceptance_rate(),
                    spec.stats.mean_accepted(), same ? "yes" : "no");
      }
    }
    const double p = plain_s > 0 ? plain_tokens / plain_s : 0, q = spec_s > 0 ? spec_tokens / spec_s : 0;
    if (a.json) {
      nlohmann::json j{{"prompt", "all"}, {"threads", threads}, {"drafter", d->describe()},
                       {"plain_tokens_per_second", p}, {"speculative_tokens_per_second", q},
                       {"speedup", p > 0 ? q / p : 0.0}, {"drafted", all.drafted}, {"accepted", all.accepted},
                       {"acceptance_rate", all.acceptance_rate()}, {"mean_accepted", all.mean_accepted()},
                       {"same_text", same_count}, {"prompts", prompts.size()}};
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf("| **all** | **%.2f** | **%.2f** | **%.2fx** | %lld | %lld | %.2f | %.2f | %d of %zu |\n\n", p, q,
                  p > 0 ? q / p : 0.0, static_cast<long long>(all.drafted), static_cast<long long>(all.accepted),
                  all.acceptance_rate(), all.mean_accepted(), same_count, prompts.size());
    }
  }
}

}  // namespace edgelm::cli
