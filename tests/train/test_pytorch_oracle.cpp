// The training engine against PyTorch (tests/oracle/gen_train_fixtures.py, transformers'
// Llama, Qwen2 and Gemma 3 built from the same synthetic GGUF files): the loss and the gradient
// of every parameter tensor on a packed, masked batch, then 10 AdamW steps with gradient
// clipping and a warm-up + cosine schedule; and LoRA's adapter gradients against peft's
// (tests/oracle/gen_lora_grad_fixtures.py).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "edgelm/model.hpp"
#include "edgelm/train.hpp"
#include "kernels/backward.hpp"
#include "train/train_support.hpp"
#include "support/test_models.hpp"

namespace edgelm {
namespace {

using nlohmann::json;

const json& fixtures() {
  static const json j = json::parse(test::read_file(test::fixture_path("train/grads.json")));
  return j["families"];
}

std::shared_ptr<const Model> oracle_model(const std::string& name, const json& fx) {
  uint64_t h = 0;
  auto model = test::load_family_model(name, &h);
  char hash[32];
  std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(h));
  if (model) {
    EXPECT_EQ(std::string(hash), fx["weights_hash"].get<std::string>()) << "the synthetic model differs from the oracle's";
  }
  return model;
}

train::TokenBatch fixture_batch(const json& fx) {
  train::TokenBatch b;
  b.tokens = fx["sequences"].get<std::vector<std::vector<int32_t>>>();
  b.targets = fx["targets"].get<std::vector<std::vector<int32_t>>>();
  return b;
}

struct GradientErrors {
  size_t n_tensors = 0;
  double worst_norm = 0, worst_entry = 0;
  std::string worst_norm_name, worst_entry_name;
};

// Every tensor of the fixture's "grads": its gradient's norm, and the sampled entries relative to
// the tensor's largest PyTorch entry (the sample holds its top 8), within 1e-4.
GradientErrors compare_gradients(train::LanguageModel& lm, const json& grads) {
  GradientErrors r;
  for (const auto& [tname, g] : grads.items()) {
    train::Param* p = lm.find(tname);
    EXPECT_NE(p, nullptr) << tname;
    if (!p) continue;
    ++r.n_tensors;
    double sq = 0;
    for (float x : p->grad) sq += static_cast<double>(x) * x;
    const double norm = std::sqrt(sq), want_norm = g["norm"].get<double>();
    const double e_norm = std::abs(norm - want_norm) / want_norm;
    if (e_norm > r.worst_norm) r.worst_norm = e_norm, r.worst_norm_name = tname;
    EXPECT_LT(e_norm, 1e-4) << tname << ": gradient norm " << norm << ", PyTorch " << want_norm;
    const auto ids = g["ids"].get<std::vector<int64_t>>();
    const auto vals = g["values"].get<std::vector<double>>();
    double scale = 0;
    for (double v : vals) scale = std::max(scale, std::abs(v));
    for (size_t i = 0; i < ids.size(); ++i) {
      const double e = std::abs(p->grad[static_cast<size_t>(ids[i])] - vals[i]) / scale;
      if (e > r.worst_entry) r.worst_entry = e, r.worst_entry_name = tname;
      EXPECT_LT(e, 1e-4) << tname << "[" << ids[i] << "]: " << p->grad[static_cast<size_t>(ids[i])] << ", PyTorch " << vals[i];
    }
  }
  return r;
}

class PyTorch : public ::testing::TestWithParam<std::string> {};

TEST_P(PyTorch, LossAndEveryGradientMatch) {
  const std::string name = GetParam();
  ASSERT_TRUE(fixtures().contains(name)) << "run tests/oracle/gen_train_fixtures.py";
  const json& fx = fixtures()[name];
  const auto model = oracle_model(name, fx);
  ASSERT_TRUE(model);
  train::LanguageModel lm(model, 2);
  const train::TokenBatch b = fixture_batch(fx);
  ASSERT_EQ(b.n_targets(), fx["n_targets"].get<int64_t>());
  const double loss = lm.loss(b, true);
  const double want = fx["loss"].get<double>();
  EXPECT_LT(std::abs(loss - want) / want, 1e-5) << "loss " << loss << ", PyTorch " << want;

  const GradientErrors e = compare_gradients(lm, fx["grads"]);
  EXPECT_EQ(e.n_tensors, lm.params().size()) << "the fixture and the model have different tensors";
  std::printf("[ pytorch  ] %-7s loss %.7f (PyTorch %.7f); worst gradient norm error %.2g (%s), entry %.2g (%s)\n",
              name.c_str(), loss, want, e.worst_norm, e.worst_norm_name.c_str(), e.worst_entry, e.worst_entry_name.c_str());
}

TEST_P(PyTorch, TenAdamWStepsGiveTheSameLosses) {
  const std::string name = GetParam();
  ASSERT_TRUE(fixtures().contains(name));
  const json& fx = fixtures()[name];
  const json& a = fx["adamw"];
  const auto model = oracle_model(name, fx);
  ASSERT_TRUE(model);
  train::LanguageModel lm(model, 2);
  const train::TokenBatch b = fixture_batch(fx);
  const float lr = a["lr"].get<float>();
  train::AdamW opt(lm.params(), {.lr = lr, .beta1 = a["betas"][0].get<float>(), .beta2 = a["betas"][1].get<float>(),
                                 .eps = a["eps"].get<float>(), .weight_decay = a["weight_decay"].get<float>()});
  const auto mult = a["lr_multipliers"].get<std::vector<double>>();
  const auto want = a["losses"].get<std::vector<double>>();
  const auto want_norms = a["grad_norms"].get<std::vector<double>>();
  const std::vector<train::Param*> params = lm.params();
  double worst = 0;
  for (size_t s = 0; s < want.size(); ++s) {
    opt.zero_grad();
    const double loss = lm.loss(b, true);
    const double e = std::abs(loss - want[s]) / want[s];
    worst = std::max(worst, e);
    EXPECT_LT(e, 1e-5) << "step " << s << ": loss " << loss << ", PyTorch " << want[s];
    const float norm = train::clip_grad_norm(params, a["clip"].get<float>());
    EXPECT_LT(std::abs(norm - want_norms[s]) / want_norms[s], 1e-4) << "step " << s << ": gradient norm";
    opt.set_lr(static_cast<float>(lr * mult[s]));
    opt.step();
  }
  const double final_loss = lm.loss(b, false), want_final = a["final_loss"].get<double>();
  const double e = std::abs(final_loss - want_final) / want_final;
  worst = std::max(worst, e);
  EXPECT_LT(e, 1e-5) << "after 10 steps: loss " << final_loss << ", PyTorch " << want_final;
  std::printf("[ pytorch  ] %-7s 10 AdamW steps: loss %.4f -> %.4f, worst relative difference %.2g\n", name.c_str(),
              want[0], final_loss, worst);
}

// LoRA (tests/oracle/gen_lora_grad_fixtures.py): peft's adapters, rank 4 and alpha 8 on q k v o
// gate up down of every block, with A and B set to the fixture's formula, over the float base:
// the loss and the gradient of every adapter matrix.
const json& lora_fixtures() {
  static const json j = json::parse(test::read_file(test::fixture_path("train/lora_grads.json")));
  return j;
}

TEST_P(PyTorch, LoraGradientsMatchPeft) {
  const std::string name = GetParam();
  const json& all = lora_fixtures();
  ASSERT_TRUE(all["families"].contains(name)) << "run tests/oracle/gen_lora_grad_fixtures.py";
  const json& fx = all["families"][name];
  const auto model = oracle_model(name, fx);
  ASSERT_TRUE(model);
  const int rank = all["rank"].get<int>();
  train::LanguageModel lm(model, {.n_threads = 2,
                                  .lora = {.rank = rank, .alpha = all["alpha"].get<float>(),
                                           .targets = all["targets"].get<std::vector<std::string>>()}});
  // A[i] = 0.25 sin(0.7 i + 1.3 m + 0.1), B[i] = 0.05 cos(0.9 i + 0.5 m + 0.3), m the matrix's
  // index (block-major, targets in the fixture's order), i the flat id in the file's layout.
  const char* kinds[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
  int m = 0;
  for (int il = 0; il < model->config().n_layer; ++il)
    for (const char* kind : kinds) {
      const std::string t = "blk." + std::to_string(il) + "." + kind + ".weight";
      train::Param* a = lm.find(t + ".lora_a");
      train::Param* b = lm.find(t + ".lora_b");
      ASSERT_TRUE(a && b) << t;
      for (size_t i = 0; i < a->value.size(); ++i)
        a->value[i] = static_cast<float>(0.25 * std::sin(0.7 * static_cast<double>(i) + 1.3 * m + 0.1));
      for (size_t i = 0; i < b->value.size(); ++i)
        b->value[i] = static_cast<float>(0.05 * std::cos(0.9 * static_cast<double>(i) + 0.5 * m + 0.3));
      ++m;
    }
  const train::TokenBatch batch = fixture_batch(fx);
  ASSERT_EQ(batch.n_targets(), fx["n_targets"].get<int64_t>());
  const double loss = lm.loss(batch, true);
  const double want = fx["loss"].get<double>();
  EXPECT_LT(std::abs(loss - want) / want, 1e-5) << "loss " << loss << ", PyTorch + peft " << want;
  const GradientErrors e = compare_gradients(lm, fx["grads"]);
  EXPECT_EQ(e.n_tensors, lm.params().size()) << "the fixture and the model have different adapter matrices";
  std::printf("[ peft     ] %-7s loss %.7f (PyTorch + peft %.7f); worst gradient norm error %.2g (%s), entry %.2g (%s)\n",
              name.c_str(), loss, want, e.worst_norm, e.worst_norm_name.c_str(), e.worst_entry, e.worst_entry_name.c_str());
}

// The distillation loss of each fixture case (tests/oracle/gen_kd_fixtures.py): the teacher's
// rows from its logits (top-k ids, log-probabilities, the rest), then the loss and its gradient
// with respect to the student's logits, each row through the kernel the training pass runs.
TEST(PyTorchDistillation, LossAndGradientMatchPyTorch) {
  const json j = json::parse(test::read_file(test::fixture_path("train/kd.json")));
  const int N = j["rows"], V = j["vocab"];
  const auto student = j["student"].get<std::vector<float>>();
  const auto teacher = j["teacher"].get<std::vector<float>>();
  const auto targets = j["targets"].get<std::vector<int>>();
  for (const json& cs : j["cases"]) {
    SCOPED_TRACE(cs["name"].get<std::string>());
    train::TeacherTargets tt{.k = cs["k"].get<int64_t>(), .temperature = cs["temperature"].get<float>()};
    for (int r = 0; r < N; ++r) tt.add_row(teacher.data() + static_cast<size_t>(r) * V, V);
    if (tt.k < V) {
      EXPECT_EQ(tt.ids, cs["teacher_ids"].get<std::vector<int32_t>>());
      const auto lp = cs["teacher_logp"].get<std::vector<double>>();
      for (size_t i = 0; i < lp.size(); ++i) EXPECT_NEAR(tt.logp[i], lp[i], 1e-5);
      const auto lr = cs["teacher_log_rest"].get<std::vector<double>>();
      for (int r = 0; r < N; ++r) EXPECT_NEAR(tt.log_rest[static_cast<size_t>(r)], lr[static_cast<size_t>(r)], 1e-5);
    } else {
      EXPECT_TRUE(tt.ids.empty());
    }
    const float T = tt.temperature, alpha = cs["alpha"].get<float>();
    const float kd_weight = (1 - alpha) * (cs["t_squared"].get<bool>() ? T * T : 1.0f);
    std::vector<float> grad(static_cast<size_t>(N) * V);
    std::vector<uint8_t> member;
    double loss = 0;
    for (int r = 0; r < N; ++r) {
      const kernels::TeacherRow row{.ids = tt.ids.empty() ? nullptr : tt.ids.data() + static_cast<size_t>(r) * tt.k,
                                    .logp = tt.logp.data() + static_cast<size_t>(r) * tt.k,
                                    .k = tt.k,
                                    .log_rest = tt.log_rest[static_cast<size_t>(r)]};
      loss += kernels::distill_xent_row(student.data() + static_cast<size_t>(r) * V, V, targets[static_cast<size_t>(r)],
                                        row, T, cs["reverse"].get<bool>(), alpha, kd_weight, 1.0f / N,
                                        grad.data() + static_cast<size_t>(r) * V, member);
    }
    loss /= N;
    const double want = cs["loss"].get<double>();
    EXPECT_LT(std::abs(loss - want), 1e-5 * std::max(1.0, std::abs(want))) << loss << " vs PyTorch " << want;
    const auto g = cs["grad"].get<std::vector<double>>();
    double gmax = 0, err = 0;
    for (size_t i = 0; i < g.size(); ++i) gmax = std::max(gmax, std::abs(g[i]));
    for (size_t i = 0; i < g.size(); ++i) err = std::max(err, std::abs(grad[i] - g[i]));
    EXPECT_LT(err, 1e-5 * gmax) << "largest gradient error " << err << " of " << gmax;
  }
}

INSTANTIATE_TEST_SUITE_P(Oracle, PyTorch, ::testing::Values("llama", "qwen2", "gemma3"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace edgelm
