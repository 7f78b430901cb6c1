#include "cli/common.hpp"

#include <unistd.h>

namespace edgelm::cli {

void add_model_options(CLI::App& cmd, ModelOptions& o) {
  cmd.add_option("-m,--model", o.model, "GGUF file, or a model-cache name (smollm2)")
      ->capture_default_str();
  cmd.add_option("-c,--ctx-size", o.session.n_ctx, "context size in tokens")
      ->check(CLI::Range(16, 1 << 20))
      ->capture_default_str();
  cmd.add_option("-t,--threads", o.session.n_threads, "threads (0: all cores)")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  cmd.add_option("-b,--batch-size", o.session.n_batch, "prompt tokens per forward pass")
      ->check(CLI::Range(1, 8192))
      ->capture_default_str();
  add_kv_type_option(cmd, o.session.kv_type);
}

void add_kv_type_option(CLI::App& cmd, DType& kv_type) {
  cmd.add_option_function<std::string>(
         "--kv-type", [&kv_type](const std::string& s) { kv_type = parse_kv_type(s); },
         "KV cache storage: f16, or q8_0 (8-bit, about half the memory)")
      ->check(CLI::IsMember({"f16", "q8_0"}, CLI::ignore_case))
      ->default_str("f16");
}

void add_sampling_options(CLI::App& cmd, SamplerParams& p) {
  cmd.add_option("--temp", p.temp, "temperature (0: greedy)")->check(CLI::Range(0.0, 100.0))->capture_default_str();
  cmd.add_option("--top-k", p.top_k, "keep the k most likely tokens (0: off)")->check(CLI::Range(0, 1 << 24))->capture_default_str();
  cmd.add_option("--top-p", p.top_p, "nucleus sampling threshold (1: off)")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  cmd.add_option("--min-p", p.min_p, "drop tokens below min-p x the top probability (0: off)")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  cmd.add_option("--repeat-penalty", p.repeat_penalty, "penalty for repeated tokens (1: off)")->check(CLI::Range(0.0, 10.0))->capture_default_str();
  cmd.add_option("--repeat-last-n", p.repeat_last_n, "tokens the repeat penalty looks back on")->check(CLI::Range(0, 1 << 20))->capture_default_str();
  cmd.add_option("-s,--seed", p.seed, "random seed")->capture_default_str();
}

bool stdout_is_terminal() { return isatty(STDOUT_FILENO) == 1; }
bool stdin_is_terminal() { return isatty(STDIN_FILENO) == 1; }

}  // namespace edgelm::cli
