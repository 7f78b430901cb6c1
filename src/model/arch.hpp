// The architecture table: which `general.architecture` values edgelm runs and how each one's
// configuration is read from metadata.
#pragma once
#include <string>

#include "edgelm/gguf.hpp"
#include "edgelm/model.hpp"

namespace edgelm {

// Reads and validates the configuration; throws edgelm::Error for an unsupported architecture
// (naming the supported ones) or inconsistent hyper-parameters.
ModelConfig read_config(const gguf::File& f);

// Comma-separated list of supported architectures, for error messages and `edgelm info`.
std::string supported_architectures();

}  // namespace edgelm
