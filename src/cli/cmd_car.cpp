// edgelm car: the in-car assistant on a simulated vehicle, driven from stdin, or evaluated on a
// slot set (--eval).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "edgelm/car.hpp"
#include "edgelm/error.hpp"
#include "edgelm/intent.hpp"
#include "edgelm/model.hpp"

namespace edgelm::cli {
namespace {

struct CarArgs {
  std::string model = "smollm2";
  std::string head;
  int threads = 1;
  float min_confidence = 0.5f;
  std::string eval;
  bool gold_intent = false;
  bool json = false;
};

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5));
  return v[i];
}

void run_eval(const CarArgs& a, car::CarAssistant& assistant) {
  const auto cases = car::read_slot_cases(a.eval);
  const car::SlotReport r = car::evaluate_slots(assistant, cases, a.gold_intent);
  auto pct = [](size_t k, size_t n) { return n ? 100.0 * static_cast<double>(k) / static_cast<double>(n) : 0.0; };
  nlohmann::ordered_json s{{"file", a.eval},
                           {"intent", a.gold_intent ? "given" : "classifier"},
                           {"cases", r.n},
                           {"commands", r.n_commands},
                           {"exact_match_pct", pct(r.exact, r.n_commands)},
                           {"fallback_cases", r.n_fallback},
                           {"fallback_ok_pct", pct(r.fallback_ok, r.n_fallback)},
                           {"intent_accuracy_pct", pct(r.intent_ok, r.n)},
                           {"ms_median", percentile(r.ms, 0.5)},
                           {"ms_p95", percentile(r.ms, 0.95)},
                           {"cpu_ms_median", percentile(r.cpu_ms, 0.5)},
                           {"cpu_ms_p95", percentile(r.cpu_ms, 0.95)},
                           {"threads", a.threads}};
  if (a.json) {
    for (const auto& row : r.rows) std::printf("%s\n", row.dump().c_str());
    std::printf("%s\n", nlohmann::ordered_json{{"summary", s}}.dump().c_str());
    return;
  }
  for (const auto& row : r.rows)
    if (!row["ok"].get<bool>())
      std::printf("miss: %s\n  expected %s (%s), got %s (%s) %s\n", row["text"].get<std::string>().c_str(),
                  row["expected"].get<std::string>().c_str(), row["expected_intent"].get<std::string>().c_str(),
                  row["got"].get<std::string>().c_str(), row["intent"].get<std::string>().c_str(),
                  row["arguments"].get<std::string>().c_str());
  std::printf("%zu cases, %zu commands: exact-match arguments %.1f %% (%zu), intent %s%.1f %%, fallback where due "
              "%.1f %% of %zu\n",
              r.n, r.n_commands, pct(r.exact, r.n_commands), r.exact, a.gold_intent ? "given, " : "accuracy ",
              pct(r.intent_ok, r.n), pct(r.fallback_ok, r.n_fallback), r.n_fallback);
  std::printf("per command (intent + arguments), %d thread%s: median %.1f ms, p95 %.1f ms wall; median %.1f ms, "
              "p95 %.1f ms CPU\n",
              a.threads, a.threads == 1 ? "" : "s", percentile(r.ms, 0.5), percentile(r.ms, 0.95),
              percentile(r.cpu_ms, 0.5), percentile(r.cpu_ms, 0.95));
}

void run(const CarArgs& a) {
  auto model = Model::load(a.model);
  std::unique_ptr<intent::Classifier> cls;
  if (!a.head.empty()) cls = std::make_unique<intent::Classifier>(model, a.head, a.threads, 1);
  else if (a.eval.empty() || !a.gold_intent)
    throw Error("--head is required", "give the intent classifier head (edgelm train-classifier)");
  car::ArgumentFiller filler(model, a.threads);
  filler.prepare();  // the commands' prompts, once, before the first utterance
  car::CarAssistant assistant(cls.get(), filler, a.min_confidence);
  if (!a.eval.empty()) return run_eval(a, assistant);

  const bool tty = isatty(0) == 1;
  if (tty) std::printf("In-car assistant (simulated vehicle). Speak by typing; Ctrl-D to stop.\n");
  std::string line;
  while (true) {
    if (tty) {
      std::printf("driver> ");
      std::fflush(stdout);
    }
    if (!std::getline(std::cin, line)) break;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    if (!tty) std::printf("driver: %s\n", line.c_str());
    for (const auto& l : assistant.handle(line).lines()) std::printf("%s\n", l.c_str());
    std::fflush(stdout);
  }
  const auto& s = assistant.state();
  std::printf("final state: %s\n", s.to_json().dump().c_str());
}

}  // namespace

void add_car_command(CLI::App& app) {
  auto a = std::make_shared<CarArgs>();
  CLI::App* cmd = app.add_subcommand(
      "car", "in-car assistant: driver utterances on stdin become calls on a simulated vehicle (intent, then "
             "arguments filled by the model under a JSON Schema)");
  cmd->add_option("-m,--model", a->model, "backbone GGUF file, or a model-cache name")->capture_default_str();
  cmd->add_option("--head", a->head, "intent classifier head (GGUF from train-classifier)");
  cmd->add_option("-t,--threads", a->threads, "threads (0: all cores)")->check(Range(0, 256))->capture_default_str();
  cmd->add_option("--min-confidence", a->min_confidence, "below this the assistant falls back politely")->check(Range(0.0, 1.0))->capture_default_str();
  cmd->add_option("--eval", a->eval, "run a slot set (JSONL, tests/fixtures/car/) and report exact-match arguments and latency");
  cmd->add_flag("--gold-intent", a->gold_intent, "with --eval: give the expected intent (the argument filling alone; no --head needed)");
  cmd->add_flag("--json", a->json, "with --eval: one JSON object per case, then a summary object");
  cmd->callback([a] { run(*a); });
}

}  // namespace edgelm::cli
