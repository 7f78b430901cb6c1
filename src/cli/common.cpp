#include "cli/common.hpp"

#include "cli/text_file.hpp"
#include "edgelm/error.hpp"
#include "edgelm/lora.hpp"

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <random>

namespace edgelm::cli {

void add_model_options(CLI::App& cmd, ModelOptions& o) {
  cmd.add_option("-m,--model", o.model, "GGUF file, or a model-cache name (smollm2)")
      ->capture_default_str();
  cmd.add_option("-c,--ctx-size", o.session.n_ctx, "context size in tokens")
      ->check(Range(16, 1 << 20))
      ->capture_default_str();
  cmd.add_option("-t,--threads", o.session.n_threads, "threads (0: all cores)")
      ->check(Range(0, 256))
      ->capture_default_str();
  cmd.add_option("-b,--batch-size", o.session.n_batch, "prompt tokens per forward pass")
      ->check(Range(1, 8192))
      ->capture_default_str();
  add_kv_type_option(cmd, o.session.kv_type);
  cmd.add_option("--lora", o.lora, "LoRA adapter (GGUF, llama.cpp's layout) to apply; repeat for several")
      ->check(CLI::ExistingFile);
  cmd.add_option("--lora-scale", o.lora_scale, "scale of each --lora, in order (default 1)")
      ->check(Range(-100.0f, 100.0f));
}

std::shared_ptr<const Model> load_model(ModelOptions& o) {
  if (o.lora_scale.size() > o.lora.size())
    throw Error("more --lora-scale values (" + std::to_string(o.lora_scale.size()) + ") than --lora adapters (" +
                    std::to_string(o.lora.size()) + ")",
                "give one --lora-scale per --lora, in the same order");
  auto model = Model::load(o.model);
  o.session.lora.clear();
  for (size_t i = 0; i < o.lora.size(); ++i)
    o.session.lora.push_back({LoraAdapter::load(o.lora[i], *model), i < o.lora_scale.size() ? o.lora_scale[i] : 1.0f});
  return model;
}

void add_draft_options(CLI::App& cmd, DraftOptions& o) {
  auto* draft = cmd.add_option("--draft", o.model,
                               "speculative decoding with this draft model (GGUF file or cache name; the model's "
                               "vocabulary, e.g. a student from edgelm distill)");
  auto* exit = cmd.add_option("--draft-exit", o.exit,
                              "speculative decoding drafted by the model's own first K blocks (self-speculation)")
                   ->check(Range(1, 1 << 16));
  auto* lookup = cmd.add_flag("--lookup", o.lookup,
                              "speculative decoding drafted by prompt lookup (text that repeats earlier text)");
  draft->excludes(exit)->excludes(lookup);
  exit->excludes(lookup);
  cmd.add_option("--draft-max", o.spec.draft_max, "most tokens drafted per step")
      ->check(Range(1, 64))
      ->capture_default_str();
  cmd.add_flag("--draft-fixed", [&o](int64_t) { o.spec.adaptive = false; },
               "always draft --draft-max tokens (default: the length that pays, from the measured acceptance)");
}

std::function<std::unique_ptr<Drafter>()> drafter_factory(const DraftOptions& o,
                                                          const std::shared_ptr<const Model>& target,
                                                          const SessionOptions& target_session) {
  ModelDrafterOptions mo{.n_ctx = target_session.n_ctx > 0 ? target_session.n_ctx : target->config().n_ctx_train,
                         .n_threads = target_session.n_threads};
  if (!o.model.empty()) {
    std::shared_ptr<const Model> draft = Model::load(o.model);
    make_model_drafter(draft, *target, mo);  // the vocabulary check, before a server starts
    return [draft, target, mo] { return make_model_drafter(draft, *target, mo); };
  }
  if (o.exit > 0) {
    mo.n_layers = o.exit;
    make_model_drafter(target, *target, mo);  // the block count check
    return [target, mo] { return make_model_drafter(target, *target, mo); };
  }
  if (o.lookup) return [] { return make_lookup_drafter(); };
  return {};
}

std::unique_ptr<Drafter> make_drafter(const DraftOptions& o, const std::shared_ptr<const Model>& target,
                                      const SessionOptions& target_session) {
  const auto make = drafter_factory(o, target, target_session);
  return make ? make() : nullptr;
}

std::string describe_drafts(const SpeculativeStats& st) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "drafts: %lld of %lld kept (%.2f), %.2f per drafting step; draft %.2f s, verification %.2f s",
                static_cast<long long>(st.accepted), static_cast<long long>(st.drafted), st.acceptance_rate(),
                st.mean_accepted(), st.draft_seconds, st.verify_seconds);
  return buf;
}

void add_kv_type_option(CLI::App& cmd, DType& kv_type) {
  cmd.add_option_function<std::string>(
         "--kv-type", [&kv_type](const std::string& s) { kv_type = parse_kv_type(s); },
         "KV cache storage: f16, or q8_0 (8-bit, about half the memory)")
      ->check(CLI::IsMember({"f16", "q8_0"}, CLI::ignore_case))
      ->default_str("f16");
}

namespace {

std::string read_option_file(const std::string& path, const std::string& flag, const std::string& what) {
  if (!std::filesystem::is_regular_file(path))
    throw Error("cannot open " + what + " '" + path + "'", "check the path given to " + flag);
  return read_text_file(path, size_t{16} << 20, what);
}

std::shared_ptr<const Grammar> grammar_from_file(const std::string& path) {
  const std::string text = read_option_file(path, "--grammar-file", "grammar file");
  try {
    return Grammar::parse(text);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what(), e.hint());
  }
}

void add_grammar_options(CLI::App& cmd, SamplingOptions& o) {
  auto* file = cmd.add_option_function<std::string>(
      "--grammar-file", [&o](const std::string& f) { o.grammar = grammar_from_file(f); },
      "constrain the output to a GBNF grammar (llama.cpp's syntax; start rule: root)");
  auto* schema = cmd.add_option_function<std::string>(
      "--json-schema", [&o](const std::string& f) { o.grammar = grammar_from_schema_file(f); },
      "constrain the output to JSON valid under the JSON Schema in this file");
  auto* any = cmd.add_flag_callback(
      "--json", [&o] { o.grammar = Grammar::parse(json_object_grammar()); }, "constrain the output to a JSON object");
  file->excludes(schema)->excludes(any);
  schema->excludes(any);
}

}  // namespace

std::shared_ptr<const Grammar> grammar_from_schema_file(const std::string& path) {
  const std::string text = read_option_file(path, "--json-schema", "JSON schema file");
  nlohmann::ordered_json schema;
  try {
    schema = nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(path + ": not valid JSON (" + e.what() + ")", "--json-schema takes a file holding one JSON Schema");
  }
  try {
    return Grammar::parse(json_schema_to_grammar(schema));
  } catch (const Error& e) {
    throw Error(path + ": " + e.what(), e.hint());
  }
}

Sampler make_sampler(const SamplingOptions& o, const Tokenizer& tok) {
  Sampler s(o.params);
  if (o.grammar) s.set_grammar(GrammarConstraint(o.grammar, TokenTrie::build(tok)));
  return s;
}

void add_sampling_options(CLI::App& cmd, SamplingOptions& o) {
  SamplerParams& p = o.params;
  cmd.add_option("--temp", p.temp, "temperature (0: greedy)")->check(Range(0.0, 100.0))->capture_default_str();
  cmd.add_option("--top-k", p.top_k, "keep the k most likely tokens (0: off)")->check(Range(0, 1 << 24))->capture_default_str();
  cmd.add_option("--top-p", p.top_p, "nucleus sampling threshold (1: off)")->check(Range(0.0, 1.0))->capture_default_str();
  cmd.add_option("--min-p", p.min_p, "drop tokens below min-p x the top probability (0: off)")->check(Range(0.0, 1.0))->capture_default_str();
  cmd.add_option("--repeat-penalty", p.repeat_penalty, "penalty for repeated tokens (1: off)")->check(Range(0.0, 10.0))->capture_default_str();
  cmd.add_option("--repeat-last-n", p.repeat_last_n, "tokens the repeat penalty looks back on")->check(Range(0, 1 << 20))->capture_default_str();
  p.seed = std::random_device{}();
  cmd.add_option_function<int64_t>(
         "-s,--seed",
         [&o](int64_t seed) {
           o.seed_drawn = seed < 0;
           if (seed >= 0) o.params.seed = static_cast<uint64_t>(seed);
         },
         "random seed (-1: a random one, the default; printed so that a run can be repeated)")
      ->check(Range<int64_t>(-1, std::numeric_limits<int64_t>::max()));
  add_grammar_options(cmd, o);
}

void report_drawn_seed(const SamplingOptions& o) {
  if (o.seed_drawn && o.params.temp > 0)
    std::fprintf(stderr, "seed %llu (pass -s %llu to repeat)\n", static_cast<unsigned long long>(o.params.seed),
                 static_cast<unsigned long long>(o.params.seed));
}

bool stdout_is_terminal() { return isatty(STDOUT_FILENO) == 1; }
bool stdin_is_terminal() { return isatty(STDIN_FILENO) == 1; }

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i <= s.size();) {
    const size_t j = std::min(s.find(',', i), s.size());
    out.push_back(s.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

}  // namespace edgelm::cli
