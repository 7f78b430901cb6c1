// The base of a suite checked against an oracle fixture (tests/fixtures/<Suite::kFixture>, written
// by tests/oracle/): the fixture and the real model named by its "model_file" are loaded once per
// suite. A missing model leaves model_ null after recording a failure (see require_model).
//   class SmolLM2Oracle : public test::OracleSuite<SmolLM2Oracle> {
//    public:
//     static constexpr const char* kFixture = "model/smollm2.json";
//   };
#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "edgelm/model.hpp"
#include "support/test_models.hpp"

namespace edgelm::test {

template <typename Suite>
class OracleSuite : public ::testing::TestWithParam<int> {
 protected:
  static void SetUpTestSuite() {
    fixture_ = nlohmann::json::parse(read_file(fixture_path(Suite::kFixture)));
    const std::string path = require_model(fixture_["model_file"].get<std::string>());
    if (!path.empty()) model_ = Model::load(path);
  }
  static void TearDownTestSuite() { model_.reset(); }
  static inline nlohmann::json fixture_;
  static inline std::shared_ptr<const Model> model_;
};

// The token with the largest logit (the first of equal ones).
inline int32_t argmax(std::span<const float> logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

}  // namespace edgelm::test
