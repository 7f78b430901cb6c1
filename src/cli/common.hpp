// Options shared by the model-running subcommands, named as llama.cpp names them.
#pragma once
#include <string>

#include <CLI/CLI.hpp>

#include "edgelm/sampler.hpp"
#include "edgelm/session.hpp"

namespace edgelm::cli {

struct ModelOptions {
  std::string model = "smollm2";
  SessionOptions session{};
};

// --kv-type f16|q8_0
void add_kv_type_option(CLI::App& cmd, DType& kv_type);
void add_model_options(CLI::App& cmd, ModelOptions& o);
void add_sampling_options(CLI::App& cmd, SamplerParams& p);
bool stdout_is_terminal();
bool stdin_is_terminal();

}  // namespace edgelm::cli
