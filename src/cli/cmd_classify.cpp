// edgelm classify: intent and confidence for a text, or for each line of stdin.
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <cstdio>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "edgelm/error.hpp"
#include "edgelm/intent.hpp"
#include "edgelm/model.hpp"

namespace edgelm::cli {
namespace {

struct ClassifyArgs {
  std::string model = "smollm2";
  std::string head;
  std::string text;
  int top = 1;
  bool json = false;
  int threads = 1;
  int batch = 16;
  bool timings = false;
};

void print(const std::string& text, const intent::Prediction& p, const ClassifyArgs& a) {
  if (a.json) {
    nlohmann::json j{{"text", text}, {"intent", p.intent}, {"confidence", p.confidence}, {"oos", p.oos}};
    auto top = nlohmann::json::array();
    for (const auto& r : p.top) top.push_back({{"label", r.label}, {"prob", r.prob}});
    j["top"] = top;
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else if (a.top <= 1) {
    std::printf("%s\t%.3f\n", p.intent.c_str(), p.confidence);
  } else {
    std::printf("%s\t%.3f", p.intent.c_str(), p.confidence);
    for (const auto& r : p.top) std::printf("\t%s:%.3f", r.label.c_str(), r.prob);
    std::printf("\n");
  }
}

void run(const ClassifyArgs& a) {
  if (a.text.empty()) throw Error("no text to classify", "pass TEXT, or - to read one utterance per line from stdin");
  auto model = Model::load(a.model);
  intent::Classifier cls(model, a.head, a.threads, a.batch);
  using clock = std::chrono::steady_clock;
  // CPU time too: on a shared machine wall time measures the neighbours as much as us.
  auto cpu_now = [] {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
  };
  double seconds = 0, cpu_seconds = 0;
  size_t n = 0;
  auto run_batch = [&](const std::vector<std::string>& texts) {
    const auto t0 = clock::now();
    const double c0 = cpu_now();
    const auto preds = cls.classify_batch(texts, a.top);
    seconds += std::chrono::duration<double>(clock::now() - t0).count();
    cpu_seconds += cpu_now() - c0;
    n += texts.size();
    for (size_t i = 0; i < texts.size(); ++i) print(texts[i], preds[i], a);
    std::fflush(stdout);
  };
  if (a.text != "-") {
    run_batch({a.text});
  } else {
    // One prediction a line. On a terminal each line is answered at once; from a pipe lines
    // are classified --batch at a time (packed into shared forward passes).
    const size_t group = isatty(0) ? 1 : static_cast<size_t>(a.batch);
    std::vector<std::string> pending;
    std::string line;
    size_t line_no = 0;
    while (std::getline(std::cin, line)) {
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.find_first_not_of(" \t") == std::string::npos) {
        if (!pending.empty()) run_batch(pending);
        throw Error("stdin line " + std::to_string(line_no) + ": the text is empty", "give one utterance per line");
      }
      pending.push_back(line);
      if (pending.size() >= group) {
        run_batch(pending);
        pending.clear();
      }
    }
    if (!pending.empty()) run_batch(pending);
  }
  if (a.timings && n)
    std::fprintf(stderr,
                 "classified %zu texts in %.3f s: %.2f ms per text, %.1f texts/s (%d threads, batch %d); "
                 "CPU %.2f ms per text\n",
                 n, seconds, 1000 * seconds / n, n / seconds, a.threads, a.batch, 1000 * cpu_seconds / n);
}

}  // namespace

void add_classify_command(CLI::App& app) {
  auto a = std::make_shared<ClassifyArgs>();
  CLI::App* cmd = app.add_subcommand("classify", "intent and confidence of a text (or of each stdin line with -)");
  cmd->add_option("-m,--model", a->model, "backbone GGUF file, or a model-cache name")->capture_default_str();
  cmd->add_option("--head", a->head, "classifier head (GGUF from train-classifier)")->required();
  cmd->add_option("text", a->text, "the utterance, or - for one per stdin line");
  cmd->add_option("--top", a->top, "also show the K most likely labels")->check(Range(1, 100000))->capture_default_str();
  cmd->add_flag("--json", a->json, "one JSON object per input");
  cmd->add_option("-t,--threads", a->threads, "threads (0: all cores)")->check(Range(0, 256))->capture_default_str();
  cmd->add_option("--batch", a->batch, "stdin lines per batched forward pass")->check(Range(1, 64))->capture_default_str();
  cmd->add_flag("--timings", a->timings, "print time per text and texts/s to stderr (model loading excluded)");
  cmd->callback([a] { run(*a); });
}

}  // namespace edgelm::cli
