// Finding the real models the oracle fixtures were made from. A missing model is a test
// failure, not a skip: CI fetches it with scripts/fetch-models.sh.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace edgelm::test {

inline std::string model_dir() {
  if (const char* d = std::getenv("EDGELM_MODELS"); d && *d) return d;
  return std::string(std::getenv("HOME") ? std::getenv("HOME") : ".") + "/.cache/edgelm/models";
}

// Path of a model file in the cache, or "" after recording a failure that says how to fetch it.
inline std::string require_model(const std::string& file) {
  const std::string p = model_dir() + "/" + file;
  if (!std::filesystem::exists(p)) {
    ADD_FAILURE() << "model " << p << " is missing — run scripts/fetch-models.sh";
    return "";
  }
  return p;
}

inline std::string fixture_path(const std::string& rel) {
  return std::string(EDGELM_SOURCE_DIR) + "/tests/fixtures/" + rel;
}

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

}  // namespace edgelm::test
