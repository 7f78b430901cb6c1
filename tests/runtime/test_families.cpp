// Every supported architecture family against llama.cpp on a synthetic model: a few random F32
// layers with the family's metadata and tensor names and a real vocabulary
// (tests/support/family_models.hpp), recreated here from its seed and checked against the
// weights hash the fixtures were made from (tests/oracle/gen_family_fixtures.py). Each prompt
// goes through in one batch and again one token at a time; at every position the logits at the
// fixture's vocabulary ids must be within kMaxRelError of llama.cpp's, relative to the row's
// largest |logit|. The longest prompt is longer than the sliding windows (8) of gemma2/gemma3.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "edgelm/error.hpp"
#include "edgelm/model.hpp"
#include "edgelm/session.hpp"
#include "support/family_models.hpp"
#include "support/test_models.hpp"

namespace edgelm {
namespace {

using nlohmann::json;

constexpr double kMaxRelError = 1e-3;

const json& fixtures() {
  static const json j = json::parse(test::read_file(test::fixture_path("model/families.json")));
  return j["families"];
}

std::string temp_model_path(const std::string& name) {
  const auto dir = std::filesystem::path(::testing::TempDir()) / "edgelm_families";
  std::filesystem::create_directories(dir);
  return (dir / (name + ".gguf")).string();
}

// Largest |ours - llama.cpp| / max |llama.cpp logit| over the fixture ids of one position.
double rel_error(std::span<const float> row, const json& want) {
  const auto ids = want["ids"].get<std::vector<int64_t>>();
  const auto logits = want["logits"].get<std::vector<double>>();
  const double scale = std::max(1e-6, want["absmax"].get<double>());
  double worst = 0;
  for (size_t i = 0; i < ids.size(); ++i)
    worst = std::max(worst, std::abs(static_cast<double>(row[static_cast<size_t>(ids[i])]) - logits[i]) / scale);
  return worst;
}

class Families : public ::testing::TestWithParam<std::string> {};

TEST_P(Families, LogitsMatchLlamaCppInBatchAndTokenByToken) {
  const std::string name = GetParam();
  ASSERT_TRUE(fixtures().contains(name)) << "no fixture for " << name << "; run tests/oracle/gen_family_fixtures.py";
  const json& fx = fixtures()[name];
  const test::FamilySpec& spec = test::family_spec(name);
  const std::string vocab = test::require_model(spec.vocab_file);
  ASSERT_FALSE(vocab.empty());
  const std::string path = temp_model_path(name);
  char hash[32];
  std::snprintf(hash, sizeof hash, "%016llx",
                static_cast<unsigned long long>(test::write_family_model(spec, vocab, path)));
  ASSERT_EQ(std::string(hash), fx["weights_hash"].get<std::string>())
      << "the synthetic " << name << " model differs from the one the fixtures were made from";
  const auto model = Model::load(path);
  std::filesystem::remove(path);  // the weights stay mapped
  ASSERT_EQ(model->config().arch, fx["arch"].get<std::string>());
  ASSERT_EQ(model->config().n_vocab, fx["n_vocab"].get<int>());
  const size_t V = static_cast<size_t>(model->config().n_vocab);

  double worst_batch = 0, worst_single = 0;
  int index = 0;
  for (const json& pr : fx["prompts"]) {
    const auto toks = pr["tokens"].get<std::vector<int32_t>>();
    const json& rows = pr["rows"];
    {  // one batch (threads alternate: splitting rows must not change the result)
      Session s(model, {.n_ctx = 64, .n_threads = 1 + index % 2, .n_batch = 64});
      std::span<const float> all = s.eval_all(toks);
      for (size_t p = 0; p < toks.size(); ++p) {
        const double e = rel_error(all.subspan(p * V, V), rows[p]);
        worst_batch = std::max(worst_batch, e);
        EXPECT_LT(e, kMaxRelError) << name << " batch, prompt " << index << ", position " << p;
      }
    }
    {  // one token at a time
      Session s(model, {.n_ctx = 64, .n_threads = 2 - index % 2, .n_batch = 64});
      for (size_t p = 0; p < toks.size(); ++p) {
        std::span<const float> row = s.eval(std::span<const int32_t>(&toks[p], 1));
        const double e = rel_error(row, rows[p]);
        worst_single = std::max(worst_single, e);
        EXPECT_LT(e, kMaxRelError) << name << " token by token, prompt " << index << ", position " << p;
      }
    }
    ++index;
  }
  std::printf("[ family   ] %-9s max relative error: batch %.3g, token by token %.3g\n", name.c_str(), worst_batch,
              worst_single);
}

INSTANTIATE_TEST_SUITE_P(Synthetic, Families,
                         ::testing::Values("llama", "qwen2", "qwen2_yarn", "phi3", "gemma", "gemma2", "gemma3", "stablelm"),
                         [](const auto& info) { return info.param; });

TEST(FamilyTable, ConfigurationOfEachFamily) {
  const auto load = [](const std::string& name) {
    const test::FamilySpec& spec = test::family_spec(name);
    const std::string path = temp_model_path("cfg_" + name);
    test::write_family_model(spec, test::require_model(spec.vocab_file), path);
    auto m = Model::load(path);
    std::filesystem::remove(path);
    return m;
  };
  {
    const auto m = load("llama");
    EXPECT_EQ(m->config().n_swa, 0) << "llama.cpp ignores llama.attention.sliding_window";
    EXPECT_FALSE(m->config().tied_output);
    EXPECT_FLOAT_EQ(m->config().rope_freq_scale, 0.25f);
    EXPECT_FALSE(m->config().rope_yarn);
  }
  {
    const auto m = load("qwen2_yarn");
    EXPECT_TRUE(m->config().rope_yarn);
    EXPECT_EQ(m->config().yarn_orig_ctx, 4096);
    EXPECT_NEAR(m->config().yarn_attn_factor, 1.0f, 1e-6f);
  }
  {
    const auto m = load("phi3");
    EXPECT_TRUE(m->config().q_prescale);
    EXPECT_EQ(m->weights().layers[0].wk.ne[1], 64);  // views into the fused attn_qkv
    EXPECT_EQ(m->weights().layers[0].ffn_gate.ne[1], 96);
  }
  {
    const auto m = load("gemma2");
    const ModelConfig& c = m->config();
    EXPECT_EQ(c.n_swa, 8);
    for (int il = 0; il < c.n_layer; ++il) EXPECT_EQ(c.is_swa(il), il % 2 == 0) << il;
    EXPECT_FLOAT_EQ(c.attn_softcap, 3.0f);
    EXPECT_FLOAT_EQ(c.final_softcap, 20.0f);
    EXPECT_TRUE(c.tied_output);
    EXPECT_FALSE(c.gemma_block);
  }
  {
    const auto m = load("stablelm");
    EXPECT_EQ(m->config().norm, ModelConfig::Norm::kLayer);
    EXPECT_EQ(m->config().n_rot, 4);
    EXPECT_NE(m->weights().output_norm_b.data, nullptr);
  }
}

TEST(FamilyTable, UnknownArchitectureNamesTheSupportedOnes) {
  test::FamilySpec spec = test::family_spec("llama");
  spec.arch = "falcon";
  const std::string path = temp_model_path("falcon");
  test::write_family_model(spec, test::require_model(spec.vocab_file), path);
  try {
    Model::load(path);
    ADD_FAILURE() << "an unknown architecture loaded";
  } catch (const Error& e) {
    const std::string msg = e.message();
    EXPECT_NE(msg.find("'falcon' is not supported"), std::string::npos) << msg;
    EXPECT_NE(msg.find("llama, qwen2, phi3, gemma, gemma2, gemma3, stablelm"), std::string::npos) << msg;
  }
  std::filesystem::remove(path);
}

TEST(FamilyTable, LongRopeScalingIsRejectedWithAClearError) {
  test::FamilySpec spec = test::family_spec("qwen2");
  const std::string path = temp_model_path("yarn");
  test::write_family_model(spec, test::require_model(spec.vocab_file), path);
  {
    // rewrite the scaling type in place of a fresh generator option
    gguf::File f = gguf::File::open(path);
    gguf::Writer w;
    w.copy_metadata(f);
    w.set_string("qwen2.rope.scaling.type", "longrope");
    for (const auto& t : f.tensors()) {
      const TensorView v = f.view(t);
      w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne.begin(), t.ne.begin() + t.n_dims), v.data, v.nbytes);
    }
    w.write(path + ".yarn");
  }
  std::filesystem::remove(path);
  try {
    Model::load(path + ".yarn");
    ADD_FAILURE() << "LongRoPE scaling loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("RoPE scaling 'longrope' is not supported"), std::string::npos) << e.what();
  }
  std::filesystem::remove(path + ".yarn");
}

}  // namespace
}  // namespace edgelm
