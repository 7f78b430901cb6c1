// edgelm bench: prompt-processing and generation speed, time to first token, load time and
// memory, measured the way llama-bench measures them so the numbers compare directly:
//   ppN  N random tokens evaluated as one prompt into an empty context
//   tgN  N tokens evaluated one at a time, starting from an empty context
// One warm-up run precedes the repetitions; each row reports the median and the spread.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/bench_grammar.hpp"
#include "cli/commands.hpp"
#include "cli/bench_speculative.hpp"
#include "cli/common.hpp"
#include "edgelm/bench.hpp"
#include "edgelm/energy.hpp"
#include "edgelm/error.hpp"
#include "edgelm/model.hpp"
#include "edgelm/quant.hpp"
#include "edgelm/session.hpp"
#include "kernels/kernels.hpp"

namespace edgelm::cli {
namespace {

using clock_type = std::chrono::steady_clock;

struct BenchArgs {
  std::string model = "smollm2";
  std::vector<int> n_prompt{512};
  std::vector<int> n_gen{128};
  std::vector<int> threads{1, 2};
  int reps = 5;
  int n_batch = 512;
  bool json = false;
  DType kv_type = DType::F16;
  bool energy = false;
  DraftOptions draft;         // with a drafter: the speculative benchmark
  std::string prompts_file;
  float temp = 0;
  double watts_per_core = EnergyOptions{}.watts_per_core;
  std::vector<std::string> grammar_schemas;  // --grammar-schema: measure constrained decoding instead
};

uint64_t peak_rss_bytes() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<uint64_t>(ru.ru_maxrss) * 1024;  // Linux reports KiB
}

// Bytes of the mappings of `path` that the kernel maps with 2 MiB pages (smaps' FilePmdMapped).
// They are there when the page cache holds the file in 2 MiB folios, which moves one-thread
// decode of both engines by 20-30 %, so a benchmark reports it beside its numbers.
uint64_t huge_mapped_bytes(const std::string& model_path) {
  std::error_code ec;
  const std::string path = std::filesystem::weakly_canonical(model_path, ec).string();  // as smaps names it
  std::FILE* f = std::fopen("/proc/self/smaps", "r");
  if (ec || !f) {
    if (f) std::fclose(f);
    return 0;
  }
  uint64_t total = 0;
  bool in_model = false;
  char line[4096];
  while (std::fgets(line, sizeof line, f)) {
    unsigned long long kib = 0, lo = 0, hi = 0;
    if (std::sscanf(line, "FilePmdMapped: %llu kB", &kib) == 1) {
      if (in_model) total += kib * 1024;
    } else if (std::sscanf(line, "%llx-%llx ", &lo, &hi) == 2) {
      // A mapping's header: "start-end perms offset dev inode path".
      std::string l(line);
      while (!l.empty() && (l.back() == '\n' || l.back() == ' ')) l.pop_back();
      in_model = l.size() >= path.size() && l.compare(l.size() - path.size(), path.size(), path) == 0;
    }
  }
  std::fclose(f);
  return total;
}

std::string human_mib(uint64_t b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f MiB", static_cast<double>(b) / (1024.0 * 1024.0));
  return buf;
}

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

void bench(const BenchArgs& a) {
  if (a.draft.any()) {
    const int n_gen = a.n_gen.empty() ? 128 : a.n_gen.front();
    return bench_speculative({.model = a.model, .draft = a.draft, .prompts_file = a.prompts_file,
                              .threads = a.threads, .n_gen = n_gen, .reps = a.reps, .temp = a.temp, .json = a.json});
  }
  if (!a.prompts_file.empty())
    throw Error("--prompts is for the speculative benchmark", "add --draft MODEL, --draft-exit K or --lookup");
  const auto t_load = clock_type::now();
  auto model = Model::load(a.model);
  const double load_ms = seconds_since(t_load) * 1e3;
  const ModelConfig& c = model->config();
  const std::string wtype = weight_type_name(*model);

  std::unique_ptr<EnergyMeter> meter;
  double idle_watts = 0;
  if (a.energy) {
    EnergyOptions eo;
    eo.watts_per_core = a.watts_per_core;
    meter = std::make_unique<EnergyMeter>(eo);
    idle_watts = meter->idle_watts(1.0);  // the machine's draw with this process asleep
  }
  const SpeedReport report = measure_speed(model, {.n_prompt = a.n_prompt, .n_gen = a.n_gen, .threads = a.threads,
                                                   .reps = a.reps, .n_batch = a.n_batch, .kv_type = a.kv_type,
                                                   .meter = meter.get(), .idle_watts = idle_watts});
  const std::vector<SpeedTest>& results = report.tests;
  const int n_ctx = report.n_ctx;
  const uint64_t kv_bytes = report.kv_bytes;
  const double session_ms = report.session_ms;
  const uint64_t rss = peak_rss_bytes();
  const uint64_t huge = huge_mapped_bytes(model->path());
  const std::string simd(kernels::target_name());

  if (a.json) {
    for (const auto& m : results) {
      const SampleStats ts = sample_stats(m.samples_ts);
      const SampleStats ms = sample_stats(m.samples_ms);
      nlohmann::json j = {
          {"tool", "edgelm"},
          {"model", c.name},
          {"model_file", model->path()},
          {"model_type", wtype},
          {"n_params", model->n_params()},
          {"weight_bytes", model->weight_bytes()},
          {"kv_bytes", kv_bytes},
          {"kv_type", std::string(dtype_name(a.kv_type))},
          {"n_ctx", n_ctx},
          {"n_batch", report.n_batch},
          {"simd", simd},
          {"threads", m.threads},
          {"test", m.test},
          {"n_prompt", m.n_prompt},
          {"n_gen", m.n_gen},
          {"reps", a.reps},
          {"samples_ts", m.samples_ts},
          {"median_ts", ts.median},
          {"mean_ts", ts.mean},
          {"stddev_ts", ts.stddev},
          {"min_ts", ts.min},
          {"max_ts", ts.max},
          {"median_ms", ms.median},
          {"load_ms", load_ms},
          {"session_ms", session_ms},
          {"peak_rss_bytes", rss},
          {"weights_2mib_mapped_bytes", huge},
      };
      // Time to first token: the prompt's evaluation (the first new token is sampled from
      // the logits it returns).
      if (m.n_prompt > 0) j["ttft_ms"] = ms.median;
      if (meter) {
        j["energy_source"] = meter->description();
        j["energy_measured"] = meter->measured();
        j["idle_watts"] = idle_watts;
        j["samples_joules_per_token"] = m.samples_jpt;
        j["joules_per_token"] = sample_stats(m.samples_jpt).median;
      }
      std::printf("%s\n", j.dump().c_str());
    }
    return;
  }

  std::printf("model: %s (%s), %.1f M params, weights %s, KV cache %s %s (%d positions), SIMD %s\n",
              c.name.c_str(), wtype.c_str(), model->n_params() / 1e6, human_mib(model->weight_bytes()).c_str(),
              human_mib(kv_bytes).c_str(), std::string(dtype_name(a.kv_type)).c_str(), n_ctx, simd.c_str());
  std::printf("load %.1f ms (+ %.1f ms session), peak RSS %s, %d repetitions\n\n", load_ms, session_ms,
              human_mib(rss).c_str(), a.reps);
  if (meter)
    std::printf("energy: %s%s\n\n", meter->description().c_str(),
                meter->measured() ? (", idle " + std::to_string(idle_watts) + " W subtracted").c_str() : "");
  std::printf("| threads | test | t/s (median) | spread (min .. max) | ms / run | TTFT ms |%s\n",
              meter ? (meter->measured() ? " mJ / token |" : " mJ / token (estimate) |") : "");
  std::printf("|--------:|-----:|-------------:|--------------------:|---------:|--------:|%s\n", meter ? "-----------:|" : "");
  for (const auto& m : results) {
    const SampleStats ts = sample_stats(m.samples_ts);
    const SampleStats ms = sample_stats(m.samples_ms);
    char ttft[32] = "";
    if (m.n_prompt > 0) std::snprintf(ttft, sizeof ttft, "%.1f", ms.median);
    char mj[32] = "";
    if (meter) std::snprintf(mj, sizeof mj, " %10.3f |", sample_stats(m.samples_jpt).median * 1e3);
    std::printf("| %7d | %4s | %12.2f | %8.2f .. %8.2f | %8.1f | %7s |%s\n", m.threads, m.test.c_str(), ts.median,
                ts.min, ts.max, ms.median, ttft, mj);
  }
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand("bench", "measure prompt and generation speed, load time and memory");
  cmd->add_option("-m,--model", a->model, "GGUF file, or a model-cache name (smollm2)")->capture_default_str();
  cmd->add_option("-p,--n-prompt", a->n_prompt, "prompt lengths to test (comma-separated; 0 skips)")
      ->delimiter(',')
      ->check(Range(0, 1 << 16))
      ->capture_default_str();
  cmd->add_option("-n,--n-gen", a->n_gen, "generation lengths to test (comma-separated; 0 skips)")
      ->delimiter(',')
      ->check(Range(0, 1 << 16))
      ->capture_default_str();
  cmd->add_option("-t,--threads", a->threads, "thread counts to test (comma-separated)")
      ->delimiter(',')
      ->check(Range(1, 256))
      ->capture_default_str();
  cmd->add_option("-r,--repetitions", a->reps, "timed repetitions per test")->check(Range(1, 1000))->capture_default_str();
  cmd->add_option("-b,--batch-size", a->n_batch, "prompt tokens per forward pass")->check(Range(1, 8192))->capture_default_str();
  add_kv_type_option(*cmd, a->kv_type);
  cmd->add_flag("--json", a->json, "one JSON object per measurement instead of a Markdown table");
  cmd->add_flag("--energy", a->energy,
                "joules per token from RAPL or perf's energy-pkg counter (idle draw subtracted), or a labelled "
                "estimate from CPU time where neither is readable");
  cmd->add_option("--watts-per-core", a->watts_per_core, "the estimate's power of one busy core")
      ->check(Range(0.1, 1000.0))
      ->capture_default_str();
  add_draft_options(*cmd, a->draft);
  cmd->add_option("--prompts", a->prompts_file,
                  "with a drafter: prompts to generate from, one JSON {\"prompt\": ...} per line; each is decoded "
                  "plainly and speculatively (first -n value new tokens)");
  cmd->add_option("--temp", a->temp, "with a drafter: sampling temperature (0: greedy)")
      ->check(Range(0.0, 100.0))
      ->capture_default_str();
  cmd->add_option("--grammar-schema", a->grammar_schemas,
                  "instead: the cost of decoding constrained by these JSON Schemas, per token and as a share "
                  "of a decode step (first of -t and -n; -r runs each)")
      ->check(CLI::ExistingFile);
  cmd->callback([a] {
    if (a->grammar_schemas.empty()) return bench(*a);
    bench_grammar({a->model, a->grammar_schemas, a->threads.front(), a->n_gen.front(), a->reps});
  });
}

}  // namespace edgelm::cli
