// Options shared by the model-running subcommands, named as llama.cpp names them.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>
#include <type_traits>

#include <CLI/CLI.hpp>

#include "edgelm/grammar.hpp"
#include "edgelm/model.hpp"
#include "edgelm/sampler.hpp"
#include "edgelm/session.hpp"
#include "edgelm/speculative.hpp"

namespace edgelm::cli {

struct ModelOptions {
  std::string model = "smollm2";
  SessionOptions session{};
  std::vector<std::string> lora;   // --lora FILE ...
  std::vector<float> lora_scale;   // --lora-scale S ..., one per --lora in order (default 1)
};

// CLI::Range's check, with a message that tells a malformed number ("--temp: 'abc' is not a
// number") from one out of range ("--temp: 200 is outside [0, 100]").
template <class T>
CLI::Validator Range(T lo, T hi) {
  const std::string bounds = "[" + CLI::detail::to_string(lo) + ", " + CLI::detail::to_string(hi) + "]";
  return CLI::Validator(
      [lo, hi, bounds](std::string& text) -> std::string {
        T v{};
        if (!CLI::detail::lexical_cast(text, v))
          return "'" + text + (std::is_integral_v<T> ? "' is not a whole number" : "' is not a number");
        if (v < lo || v > hi) return text + " is outside " + bounds;
        return {};
      },
      bounds, "RANGE");
}

// --kv-type f16|q8_0
void add_kv_type_option(CLI::App& cmd, DType& kv_type);
void add_model_options(CLI::App& cmd, ModelOptions& o);
// The model of -m with the adapters of --lora loaded into o.session (checked against it).
std::shared_ptr<const Model> load_model(ModelOptions& o);
// Sampling options; the seed is a random one unless -s gives one (-1 also asks for a random
// seed, as in llama.cpp).
struct SamplingOptions {
  SamplerParams params;
  bool seed_drawn = true;  // no -s N: the seed was drawn at random
  std::shared_ptr<const Grammar> grammar;  // --grammar-file / --json-schema / --json
};
// Also --grammar-file F, --json-schema F and --json, which constrain the output; their files are
// read and compiled while the arguments are parsed, so a bad one fails before the model loads.
void add_sampling_options(CLI::App& cmd, SamplingOptions& o);
// The grammar of the JSON Schema in a file (--json-schema); errors name the file.
std::shared_ptr<const Grammar> grammar_from_schema_file(const std::string& path);
// A sampler with the options' parameters and grammar (applied to `tok`'s vocabulary).
Sampler make_sampler(const SamplingOptions& o, const Tokenizer& tok);
// Prints the seed a sampled run drew at random to stderr, so that `-s N` can repeat the run.
void report_drawn_seed(const SamplingOptions& o);
// Speculative decoding: --draft MODEL | --draft-exit K | --lookup, --draft-max N, --draft-fixed.
struct DraftOptions {
  std::string model;     // a draft model (GGUF file or cache name) with the target's vocabulary
  int exit = 0;          // self-speculation: the target's first `exit` blocks
  bool lookup = false;   // prompt lookup
  SpeculativeOptions spec{};
  bool any() const { return !model.empty() || exit > 0 || lookup; }
};
void add_draft_options(CLI::App& cmd, DraftOptions& o);
// Makes the drafters the options ask for (empty: none), each with a session sized like the
// target's; a draft model is loaded once, here, and shared by all of them.
std::function<std::unique_ptr<Drafter>()> drafter_factory(const DraftOptions& o,
                                                          const std::shared_ptr<const Model>& target,
                                                          const SessionOptions& target_session);
// One drafter from drafter_factory (nullptr: none asked for).
std::unique_ptr<Drafter> make_drafter(const DraftOptions& o, const std::shared_ptr<const Model>& target,
                                      const SessionOptions& target_session);
// "drafts: 412 of 530 kept (0.78), 3.1 per step; draft 0.41 s, verification 1.90 s"
std::string describe_drafts(const SpeculativeStats& st);
bool stdout_is_terminal();
bool stdin_is_terminal();
// "q,k,v" -> {"q", "k", "v"} (an empty item stays, for the caller's check to name).
std::vector<std::string> split_commas(const std::string& s);

}  // namespace edgelm::cli
