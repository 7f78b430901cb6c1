// Finding the real models the oracle fixtures were made from. A test reads only models that
// scripts/fetch-models.sh installs: the script's catalog (name|file|...) is the one list, so a
// file made by hand or by a benchmark can never stand in for a missing step. A missing model is
// a test failure, not a skip: scripts/test.sh fetches it.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace edgelm::test {

inline std::string model_dir() {
  if (const char* d = std::getenv("EDGELM_MODELS"); d && *d) return d;
  return std::string(std::getenv("HOME") ? std::getenv("HOME") : ".") + "/.cache/edgelm/models";
}

// The short name scripts/fetch-models.sh installs `file` under ("smollm2"), or "" when the
// script's catalog does not list it.
inline std::string fetch_name(const std::string& file) {
  std::ifstream script(std::string(EDGELM_SOURCE_DIR) + "/scripts/fetch-models.sh");
  std::string line;
  bool in_catalog = false;
  while (std::getline(script, line)) {
    if (line.find("<<'EOT'") != std::string::npos) { in_catalog = true; continue; }
    if (line == "EOT") in_catalog = false;
    if (!in_catalog) continue;
    std::istringstream fields(line);
    std::string name, listed;
    if (std::getline(fields, name, '|') && std::getline(fields, listed, '|') && listed == file) return name;
  }
  return "";
}

// Path of a model file in the cache, or "" after recording a failure that says which script
// command installs it.
inline std::string require_model(const std::string& file) {
  const std::string name = fetch_name(file);
  if (name.empty()) {
    ADD_FAILURE() << "this test reads model " << file << ", which scripts/fetch-models.sh does not install — "
                  << "read a model from its catalog or add one there";
    return "";
  }
  const std::string p = model_dir() + "/" + file;
  if (!std::filesystem::exists(p)) {
    ADD_FAILURE() << "model " << p << " is missing — run scripts/fetch-models.sh " << name;
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
