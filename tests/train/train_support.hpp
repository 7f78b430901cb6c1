// The synthetic family models (tests/support/family_models.hpp), written to a temporary file and
// loaded, for the training tests.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "edgelm/model.hpp"
#include "edgelm/train.hpp"
#include "support/family_models.hpp"
#include "support/test_models.hpp"

namespace edgelm::test {

// A path for a temporary file of this process (ctest runs tests as parallel processes).
inline std::string temp_path(const std::string& name) {
  const auto dir = std::filesystem::path(::testing::TempDir()) / "edgelm_train";
  std::filesystem::create_directories(dir);
  return (dir / (std::to_string(::getpid()) + "-" + name)).string();
}

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

// Sequences of random tokens (longer than the synthetic models' sliding windows, 8), each target
// the next token, the first three positions masked as a chat prompt is.
inline train::TokenBatch make_batch(int n_vocab, std::vector<int> lens, uint64_t seed) {
  SplitMix rng(seed);
  train::TokenBatch b;
  for (int len : lens) {
    std::vector<int32_t> toks(static_cast<size_t>(len)), tg(static_cast<size_t>(len), -1);
    for (auto& t : toks) t = static_cast<int32_t>(rng.next() % static_cast<uint64_t>(n_vocab));
    for (int i = 3; i + 1 < len; ++i) tg[static_cast<size_t>(i)] = toks[static_cast<size_t>(i) + 1];
    b.tokens.push_back(toks);
    b.targets.push_back(tg);
  }
  return b;
}

}  // namespace edgelm::test
