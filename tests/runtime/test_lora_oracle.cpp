// LoRA adapters against llama.cpp: an adapter that edgelm trained (tests/fixtures/lora/, from
// tests/oracle/gen_lora_fixtures.py), applied at scales 1 and 0.5 beside the products of
// SmolLM2-135M (an F32 copy of the Q4_1 file, made here as the script made it), gives llama.cpp's
// logits (`--lora`) and its greedy continuation. On a float base neither side rounds the
// activations, so the comparison does not depend on the CPU the fixture was made on.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "edgelm/lora.hpp"
#include "edgelm/model.hpp"
#include "edgelm/quant.hpp"
#include "edgelm/session.hpp"
#include "support/oracle_suite.hpp"

namespace edgelm {
namespace {

using nlohmann::json;
using test::argmax;

// One test over every case: each process would otherwise write and load its own 540 MB copy.
class LoraOracle : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    fixture_ = json::parse(test::read_file(test::fixture_path("lora/smollm2_facts.json")));
    const std::string q4 = test::require_model(fixture_["model_file"].get<std::string>());
    if (q4.empty()) return;
    const auto dir = std::filesystem::path(::testing::TempDir()) / "edgelm_lora_oracle";
    std::filesystem::create_directories(dir);
    // one file per process: ctest runs the cases as parallel processes
    const std::string f32 = (dir / ("smollm2-f32-" + std::to_string(::getpid()) + ".gguf")).string();
    quant::quantize_file(q4, f32, {.file_type = quant::FileType::F32, .n_threads = 2});
    model_ = Model::load(f32);
    std::filesystem::remove(f32);  // the weights stay mapped
  }
  static void TearDownTestSuite() { model_.reset(); }
  static void check_case(const std::shared_ptr<const LoraAdapter>& adapter, int ci);
  static inline json fixture_;
  static inline std::shared_ptr<const Model> model_;
};

// Float32 products summed in another order than ggml's (its tiled GEMM, our GEMM and the
// adapters' two products): logits within 1e-3 of their range (about 30).
constexpr double kLogitTolerance = 1e-3 * 30;

TEST_F(LoraOracle, LogitsAndGreedyMatchLlamaCpp) {
  ASSERT_TRUE(model_) << "model not loaded";
  const auto adapter = LoraAdapter::load(test::fixture_path(fixture_["adapter"]), *model_);
  ASSERT_EQ(fixture_["cases"].size(), 7u);
  for (int ci = 0; ci < 7; ++ci) check_case(adapter, ci);
}

void LoraOracle::check_case(const std::shared_ptr<const LoraAdapter>& adapter, int ci) {
  const json& c = fixture_["cases"][ci];
  const auto tokens = c["tokens"].get<std::vector<int32_t>>();
  for (const auto& [run, want] : c["runs"].items()) {
    SessionOptions so{.n_ctx = 512, .n_threads = 1 + ci % 2};
    if (run != "none") so.lora = {{adapter, std::stof(run)}};
    Session s(model_, so);
    const std::span<const float> last = s.eval(tokens);
    const std::vector<float> row(last.begin(), last.end());
    const auto ids = want["top_ids"].get<std::vector<int32_t>>();
    const auto logits = want["top_logits"].get<std::vector<double>>();
    double max_diff = 0;
    for (size_t k = 0; k < ids.size(); ++k) max_diff = std::max(max_diff, std::fabs(row[ids[k]] - logits[k]));
    EXPECT_EQ(argmax(row), ids[0]) << "case " << ci << ", scale " << run;
    EXPECT_LT(max_diff, kLogitTolerance) << "case " << ci << ", scale " << run;
    std::printf("[ oracle   ] case %d, LoRA scale %-4s: largest top-20 logit difference vs llama.cpp %.5f\n", ci,
                run.c_str(), max_diff);
    // Greedy continuation, token for token: the fixture's first 6.
    auto greedy = want["greedy"].get<std::vector<int32_t>>();
    greedy.resize(std::min<size_t>(greedy.size(), 6));
    std::vector<int32_t> got;
    std::vector<float> cur = row;
    for (size_t i = 0; i < greedy.size(); ++i) {
      const int32_t t = argmax(cur);
      got.push_back(t);
      const auto next = s.eval(std::span<const int32_t>(&t, 1));
      cur.assign(next.begin(), next.end());
    }
    EXPECT_EQ(got, greedy) << "case " << ci << ", scale " << run;
  }
}

}  // namespace
}  // namespace edgelm
