// The synthetic family models (tests/support/family_models.hpp), written to a temporary file and
// loaded, for the training tests.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "edgelm/model.hpp"
#include "support/family_models.hpp"
#include "support/test_models.hpp"

namespace edgelm::test {

// Null when the vocabulary's model is not in the cache; `hash` gets the weights hash.
inline std::shared_ptr<const Model> load_family_model(const std::string& name, uint64_t* hash = nullptr) {
  const FamilySpec& spec = family_spec(name);
  const std::string vocab = require_model(spec.vocab_file);
  if (vocab.empty()) return nullptr;
  const auto dir = std::filesystem::path(::testing::TempDir()) / "edgelm_train";
  std::filesystem::create_directories(dir);
  // one file per process: ctest runs tests as parallel processes, each writing and removing its own
  const std::string path = (dir / (name + "-" + std::to_string(::getpid()) + ".gguf")).string();
  const uint64_t h = write_family_model(spec, vocab, path);
  if (hash) *hash = h;
  auto model = Model::load(path);
  std::filesystem::remove(path);  // the weights stay mapped
  return model;
}

}  // namespace edgelm::test
