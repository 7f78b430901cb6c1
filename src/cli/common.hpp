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

void add_model_options(CLI::App& cmd, ModelOptions& o);
void add_sampling_options(CLI::App& cmd, SamplerParams& p);
bool stdout_is_terminal();
bool stdin_is_terminal();

}  // namespace edgelm::cli
