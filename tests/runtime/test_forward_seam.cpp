// The forward pass's seam (model/forward.hpp) on a synthetic F32 llama: the residual stream
// after a block against an early-exit run of the same model, and an adapter beside each matrix
// product against a model whose weight for that product holds the adapter folded in. Each runs
// a prompt in one batch on two threads and again one token at a time.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "edgelm/model.hpp"
#include "kernels/simd.hpp"
#include "kernels/thread_pool.hpp"
#include "model/forward.hpp"
#include "model/kv_cache.hpp"
#include "support/family_models.hpp"
#include "support/test_models.hpp"

namespace edgelm {
namespace {

const std::vector<int32_t> kPrompt = {1, 504, 3458, 282, 5248, 28, 17, 2000, 9999, 123, 77, 4000};

// The synthetic llama (untied output, three blocks) with SmolLM2's vocabulary.
std::shared_ptr<const Model> synthetic_llama(const std::string& file, const test::WeightEdit& edit = {}) {
  const std::string vocab = test::require_model("SmolLM2-135M-Instruct.Q4_1.gguf");
  if (vocab.empty()) return nullptr;
  const auto dir = std::filesystem::path(::testing::TempDir()) / "edgelm_seam";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / file).string();
  test::write_family_model(test::family_spec("llama"), vocab, path, edit);
  auto model = Model::load(path);
  std::filesystem::remove(path);  // the weights stay mapped
  return model;
}

// forward() with its own cache, scratch and threads; `n_layers` > 0 runs only that many blocks.
struct Runner {
  Runner(const Model& m, int n_threads, int n_layers = 0)
      : model(m),
        kv(with_layers(m.config(), n_layers), 64, 1),
        scratch(m.config(), 64, 64, n_threads),
        pool(n_threads) {}
  static ModelConfig with_layers(ModelConfig c, int n) {
    if (n > 0) c.n_layer = n;
    return c;
  }
  // Runs tokens [first, last) of the prompt as one batch; every entry wants its logits (or
  // hidden state), written from row `first` of the outputs.
  void run(int first, int last, float* logits, float* hidden) {
    std::vector<BatchEntry> batch;
    for (int t = first; t < last; ++t) batch.push_back({kPrompt[t], t, 0, true});
    const size_t V = model.config().n_vocab, E = model.config().n_embd;
    forward(model, batch, kv, scratch, pool, logits ? logits + first * V : nullptr, hidden ? hidden + first * E : nullptr);
  }
  // The whole prompt in one batch (single = false) or one token per pass.
  void run_prompt(bool single, float* logits, float* hidden) {
    const int n = static_cast<int>(kPrompt.size());
    if (!single) return run(0, n, logits, hidden);
    for (int t = 0; t < n; ++t) run(t, t + 1, logits, hidden);
  }
  const Model& model;
  KvCache kv;
  ForwardScratch scratch;
  kernels::ThreadPool pool;
};

// Also: SessionOptions::residual_hidden (ForwardSeam::residual_hidden) returns that residual.
TEST(ForwardSeam, BlockOutputIsTheResidualOfAnEarlyExit) {
  const auto model = synthetic_llama("llama_block_output.gguf");
  ASSERT_TRUE(model);
  const ModelConfig& c = model->config();
  const size_t T = kPrompt.size(), E = static_cast<size_t>(c.n_embd);
  const float* out_norm = reinterpret_cast<const float*>(model->weights().output_norm.data);
  for (bool single : {false, true}) {
    // The residual after every block of a full run, in prompt order.
    std::vector<std::vector<float>> residual(c.n_layer, std::vector<float>(T * E));
    size_t row = 0;  // first prompt row of the current pass
    const BlockOutputHook hook = [&](int layer, const float* x, int64_t n_tok, int64_t n_embd) {
      ASSERT_EQ(n_embd, static_cast<int64_t>(E));
      std::copy_n(x, n_tok * n_embd, residual[layer].begin() + row * E);
      if (layer == c.n_layer - 1) row += static_cast<size_t>(n_tok);
    };
    Runner full(*model, 2);
    full.scratch.seam.on_block_output = &hook;
    std::vector<float> logits(T * c.n_vocab);
    full.run_prompt(single, logits.data(), nullptr);
    ASSERT_EQ(row, T);
    for (int layer = 0; layer < c.n_layer; ++layer) {
      // An early exit after the block gives the output norm of the same residual.
      Runner exit(*model, 2, layer + 1);
      std::vector<float> hidden(T * E);
      exit.run_prompt(single, nullptr, hidden.data());
      std::vector<float> normed(T * E);
      for (size_t t = 0; t < T; ++t)
        kernels::simd::best().flt.rmsnorm(residual[layer].data() + t * E, out_norm, normed.data() + t * E,
                                          static_cast<int64_t>(E), c.norm_eps);
      EXPECT_EQ(normed, hidden) << "block " << layer << (single ? ", one token per pass" : ", one batch");
      // Asked for the residual instead, the early exit returns the stream itself.
      Runner raw(*model, 2, layer + 1);
      raw.scratch.seam.residual_hidden = true;
      raw.run_prompt(single, nullptr, hidden.data());
      EXPECT_EQ(residual[layer], hidden) << "block " << layer << (single ? ", one token per pass" : ", one batch");
    }
  }
}

// A rank-2 adapter y += B (A x) on one projection of one layer (-1: the output head).
struct LowRank {
  int layer;
  Projection proj;
  int64_t n_in, n_out;
  std::vector<float> a, b;  // A: 2 x n_in, B: n_out x 2, row-major
  LowRank(int layer_, Projection p, int64_t in, int64_t out, uint64_t seed) : layer(layer_), proj(p), n_in(in), n_out(out) {
    test::SplitMix rng(seed);
    a.resize(2 * in), b.resize(out * 2);
    for (auto& v : a) v = rng.uniform(0.3f);
    for (auto& v : b) v = rng.uniform(0.3f);
  }
  // W + B A, W stored row by row (n_out rows of n_in).
  void fold_into(std::vector<float>& w) const {
    for (int64_t r = 0; r < n_out; ++r)
      for (int64_t col = 0; col < n_in; ++col) w[r * n_in + col] += b[r * 2] * a[col] + b[r * 2 + 1] * a[n_in + col];
  }
  std::atomic<int> calls = 0;  // the hook runs on every thread at once
  void add_to(const ProductRows& p) {
    if (p.layer != layer || p.proj != proj) return;
    ++calls;
    EXPECT_EQ(p.n_in, n_in);
    for (int64_t t = 0; t < p.n_tok; ++t) {
      const float* x = p.x + t * p.x_stride;
      float ax[2] = {0, 0};
      for (int k = 0; k < 2; ++k)
        for (int64_t col = 0; col < n_in; ++col) ax[k] += a[k * n_in + col] * x[col];
      float* y = p.y + t * p.y_stride;
      for (int64_t r = p.r0; r < p.r1; ++r) y[r] += b[r * 2] * ax[0] + b[r * 2 + 1] * ax[1];
    }
  }
};

std::string tensor_name(int layer, Projection p) {
  const std::string blk = "blk." + std::to_string(layer) + ".";
  switch (p) {
    case Projection::kQ: return blk + "attn_q.weight";
    case Projection::kK: return blk + "attn_k.weight";
    case Projection::kV: return blk + "attn_v.weight";
    case Projection::kO: return blk + "attn_output.weight";
    case Projection::kGate: return blk + "ffn_gate.weight";
    case Projection::kUp: return blk + "ffn_up.weight";
    case Projection::kDown: return blk + "ffn_down.weight";
    case Projection::kOutput: return "output.weight";
  }
  return "";
}

// Largest |a - b| over a row, relative to the row's largest |b|.
double worst_rel(const std::vector<float>& a, const std::vector<float>& b, size_t V) {
  double worst = 0;
  for (size_t r = 0; r < a.size() / V; ++r) {
    double mx = 1e-6, d = 0;
    for (size_t i = r * V; i < (r + 1) * V; ++i) {
      mx = std::max(mx, std::abs(static_cast<double>(b[i])));
      d = std::max(d, std::abs(static_cast<double>(a[i]) - b[i]));
    }
    worst = std::max(worst, d / mx);
  }
  return worst;
}

TEST(ForwardSeam, AdapterBesideAProductEqualsTheFoldedWeight) {
  const auto base = synthetic_llama("llama_base.gguf");
  ASSERT_TRUE(base);
  const ModelConfig& c = base->config();
  const int64_t E = c.n_embd, Q = int64_t{c.n_head} * c.head_dim, KV = int64_t{c.n_head_kv} * c.head_dim, FF = c.n_ff;
  const size_t T = kPrompt.size(), V = static_cast<size_t>(c.n_vocab);
  struct Shape {
    Projection p;
    int64_t n_in, n_out;
  };
  const Shape shapes[] = {{Projection::kQ, E, Q},     {Projection::kK, E, KV},      {Projection::kV, E, KV},
                          {Projection::kO, Q, E},     {Projection::kGate, E, FF},   {Projection::kUp, E, FF},
                          {Projection::kDown, FF, E}, {Projection::kOutput, E, c.n_vocab}};
  uint64_t seed = 1;
  for (const Shape& sh : shapes) {
    const int layer = sh.p == Projection::kOutput ? -1 : 1;
    LowRank lr(layer, sh.p, sh.n_in, sh.n_out, seed++);
    const std::string name = tensor_name(layer, sh.p);
    bool folded = false;
    const auto merged = synthetic_llama("llama_merged.gguf", [&](const std::string& n, std::vector<float>& w) {
      if (n != name) return;
      lr.fold_into(w);
      folded = true;
    });
    ASSERT_TRUE(merged);
    ASSERT_TRUE(folded) << name;
    for (bool single : {false, true}) {
      const AdapterHook hook = [&](const ProductRows& p) { lr.add_to(p); };
      std::vector<float> adapted(T * V), want(T * V), plain(T * V);
      lr.calls = 0;
      {
        Runner r(*base, 2);
        r.scratch.seam.adapter = &hook;
        r.run_prompt(single, adapted.data(), nullptr);
      }
      EXPECT_GT(lr.calls.load(), 0) << name;
      Runner(*merged, 2).run_prompt(single, want.data(), nullptr);
      Runner(*base, 2).run_prompt(single, plain.data(), nullptr);
      const char* how = single ? ", one token per pass" : ", one batch";
      // Q, K and V reach attention rounded to half precision (the query, the cache), where a
      // last-bit difference of W x + B (A x) against (W + B A) x can flip a rounding (2^-11).
      const bool half = sh.p == Projection::kQ || sh.p == Projection::kK || sh.p == Projection::kV;
      EXPECT_LT(worst_rel(adapted, want, V), half ? 1e-3 : 1e-4) << name << how;
      // The adapter matters: without it the logits are far from the merged model's.
      EXPECT_GT(worst_rel(plain, want, V), 1e-2) << name << how;
    }
  }
}

TEST(ForwardSeam, AnAdapterThatAddsNothingChangesNoBit) {
  const auto model = synthetic_llama("llama_noop.gguf");
  ASSERT_TRUE(model);
  const size_t n = kPrompt.size() * model->config().n_vocab;
  std::atomic<int> calls = 0;
  const AdapterHook hook = [&](const ProductRows& p) {
    if (p.r0 < p.r1) ++calls;
  };
  for (bool single : {false, true}) {
    std::vector<float> with(n), without(n);
    Runner r(*model, 2);
    r.scratch.seam.adapter = &hook;
    r.run_prompt(single, with.data(), nullptr);
    Runner(*model, 2).run_prompt(single, without.data(), nullptr);
    EXPECT_EQ(with, without);
  }
  EXPECT_GT(calls.load(), 0);
}

}  // namespace
}  // namespace edgelm
