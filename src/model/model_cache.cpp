// Finding a model by path or by its name in the model cache. scripts/fetch-models.sh places
// each model there and links its alias (smollm2.gguf -> SmolLM2-135M-Instruct.Q4_1.gguf), so
// aliases need no table in the code.
#include <cstdlib>
#include <filesystem>

#include "edgelm/error.hpp"
#include "edgelm/model.hpp"

namespace edgelm {

std::string model_cache_dir() {
  if (const char* d = std::getenv("EDGELM_MODELS"); d && *d) return d;
  if (const char* home = std::getenv("HOME"); home && *home)
    return std::string(home) + "/.cache/edgelm/models";
  return ".cache/edgelm/models";
}

std::string resolve_model_path(const std::string& name) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (name.empty()) throw Error("no model given", "pass -m PATH.gguf or a cached name such as smollm2");
  if (fs::is_regular_file(name, ec)) return name;
  if (fs::exists(name, ec)) throw Error("model path '" + name + "' is not a regular file");
  const fs::path dir = model_cache_dir();
  for (const fs::path& cand : {dir / name, dir / (name + ".gguf")}) {
    if (fs::is_regular_file(cand, ec)) return fs::canonical(cand, ec).string();
  }
  const bool looks_like_path = name.find('/') != std::string::npos || name.ends_with(".gguf");
  throw Error(looks_like_path ? "model file '" + name + "' does not exist"
                              : "model '" + name + "' is not in the model cache (" + dir.string() + ")",
              "run scripts/fetch-models.sh to download the known models, or pass a .gguf path");
}

}  // namespace edgelm
