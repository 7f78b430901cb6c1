// Llama-family forward pass: embedding, per block RMSNorm -> GQA attention with RoPE ->
// residual -> RMSNorm -> SwiGLU -> residual, final norm, output projection.
#include "model/forward.hpp"

#include <algorithm>
#include <cmath>

#include "edgelm/error.hpp"
#include "kernels/kernels.hpp"
#include "tensor/fp16.hpp"

namespace edgelm {
namespace {

using kernels::ThreadPool;

// Converts n_tok rows of n floats to `type` (the weight's vec_dot_type), rows in parallel.
size_t convert_activations(ThreadPool& pool, const float* x, int64_t n_tok, int64_t n,
                           DType type, std::byte* out) {
  const size_t stride = row_size(type, n);
  const auto& o = kernels::ops(type);
  pool.run([&](int ith, int nth) {
    auto [b, e] = kernels::split_range(n_tok, ith, nth);
    for (int64_t t = b; t < e; ++t) o.from_float(x + t * n, out + t * stride, n);
  });
  return stride;
}

// y[t][r] = w[r] . x[t] for all rows, rows split across threads. `xq` must already hold x in
// w's vec_dot_type with row stride `stride`.
void matmul_prepared(ThreadPool& pool, const TensorView& w, const std::byte* xq, size_t stride,
                     int64_t n_tok, float* y) {
  const int64_t rows = w.nrows();
  pool.run([&](int ith, int nth) {
    auto [r0, r1] = kernels::split_range(rows, ith, nth);
    kernels::matmul_rows(w, xq, stride, y, static_cast<size_t>(rows), n_tok, r0, r1);
  });
}

void matmul(ThreadPool& pool, const TensorView& w, const float* x, int64_t n_tok, float* y,
            std::byte* xq) {
  const size_t stride =
      convert_activations(pool, x, n_tok, w.ne[0], kernels::ops(w.type).vec_dot_type, xq);
  matmul_prepared(pool, w, xq, stride, n_tok, y);
}

}  // namespace

ForwardScratch::ForwardScratch(const ModelConfig& c, int max_tokens, int n_ctx, int n_threads)
    : max_tokens_(max_tokens), n_ctx_(n_ctx) {
  const size_t T = static_cast<size_t>(max_tokens);
  const size_t q_dim = static_cast<size_t>(c.n_head) * c.head_dim;
  const size_t kv_dim = static_cast<size_t>(c.n_head_kv) * c.head_dim;
  x.resize(T * c.n_embd);
  xn.resize(T * c.n_embd);
  q.resize(T * q_dim);
  k.resize(T * kv_dim);
  v.resize(T * kv_dim);
  att.resize(T * q_dim);
  tmp.resize(T * c.n_embd);
  gate.resize(T * c.n_ff);
  up.resize(T * c.n_ff);
  hidden.resize(T * c.n_ff);
  scores.resize(static_cast<size_t>(std::max(1, n_threads)) * n_ctx);
  // Largest converted row: F32 activations of the widest input (4 bytes per element).
  const size_t widest = static_cast<size_t>(std::max({c.n_embd, c.n_ff, static_cast<int>(q_dim)}));
  xq.resize(T * widest * sizeof(float) + 64);
}

void forward(const Model& model, std::span<const BatchEntry> batch, KvCache& kv,
             ForwardScratch& s, ThreadPool& pool, float* logits) {
  const ModelConfig& c = model.config();
  const ModelWeights& W = model.weights();
  const int64_t N = static_cast<int64_t>(batch.size());
  if (N == 0) return;
  if (N > s.max_tokens()) throw Error("internal: batch larger than the session's scratch");
  if (pool.size() * static_cast<size_t>(s.n_ctx_) > s.scores.size())
    throw Error("internal: thread pool larger than the session's scratch");
  const int64_t E = c.n_embd, HD = c.head_dim, NH = c.n_head, NKV = c.n_head_kv;
  const int64_t q_dim = NH * HD, kv_dim = NKV * HD, FF = c.n_ff;
  const int64_t group = NH / NKV;  // query heads served by one KV head
  const float kq_scale = 1.0f / std::sqrt(static_cast<float>(HD));

  for (int64_t t = 0; t < N; ++t) {
    const auto& e = batch[t];
    if (e.token < 0 || e.token >= c.n_vocab)
      throw Error("token id " + std::to_string(e.token) + " is outside the vocabulary");
    if (e.pos < 0 || e.pos >= kv.n_ctx() || e.seq < 0 || e.seq >= kv.n_seq())
      throw Error("internal: batch position outside the KV cache");
    kernels::dequantize_row(W.token_embd.type, W.token_embd.row(e.token), &s.x[t * E], E);
  }

  for (int il = 0; il < c.n_layer; ++il) {
    const LayerWeights& L = W.layers[il];
    // --- attention ---
    for (int64_t t = 0; t < N; ++t)
      kernels::rmsnorm(&s.x[t * E], reinterpret_cast<const float*>(L.attn_norm.data), &s.xn[t * E], E,
                       c.norm_eps);
    {
      const DType vq = kernels::ops(L.wq.type).vec_dot_type;
      const size_t stride = convert_activations(pool, s.xn.data(), N, E, vq, s.xq.data());
      matmul_prepared(pool, L.wq, s.xq.data(), stride, N, s.q.data());
      if (kernels::ops(L.wk.type).vec_dot_type == vq) {
        matmul_prepared(pool, L.wk, s.xq.data(), stride, N, s.k.data());
      } else {
        matmul(pool, L.wk, s.xn.data(), N, s.k.data(), s.xq.data());
      }
      if (kernels::ops(L.wv.type).vec_dot_type == kernels::ops(L.wk.type).vec_dot_type &&
          kernels::ops(L.wv.type).vec_dot_type == vq) {
        matmul_prepared(pool, L.wv, s.xq.data(), stride, N, s.v.data());
      } else {
        matmul(pool, L.wv, s.xn.data(), N, s.v.data(), s.xq.data());
      }
    }
    for (int64_t t = 0; t < N; ++t) {
      const auto& e = batch[t];
      for (int64_t h = 0; h < NH; ++h)
        kernels::rope(&s.q[t * q_dim + h * HD], HD, c.n_rot, e.pos, c.rope_freq_base,
                      c.rope_freq_scale, c.rope_neox);
      for (int64_t h = 0; h < NKV; ++h)
        kernels::rope(&s.k[t * kv_dim + h * HD], HD, c.n_rot, e.pos, c.rope_freq_base,
                      c.rope_freq_scale, c.rope_neox);
      uint16_t* kd = kv.k(e.seq, il, e.pos);
      uint16_t* vd = kv.v(e.seq, il, e.pos);
      for (int64_t i = 0; i < kv_dim; ++i) {
        kd[i] = f32_to_fp16(s.k[t * kv_dim + i]);
        vd[i] = f32_to_fp16(s.v[t * kv_dim + i]);
      }
    }
    // Each (token, head) pair attends over its own sequence's positions 0..pos (causal).
    pool.run([&](int ith, int nth) {
      float* sc = &s.scores[static_cast<size_t>(ith) * s.n_ctx_];
      auto [b, e] = kernels::split_range(N * NH, ith, nth);
      float qh[1024];
      for (int64_t item = b; item < e; ++item) {
        const int64_t t = item / NH, h = item % NH, hk = h / group;
        const BatchEntry& be = batch[t];
        // The query meets the half-precision cache at half precision, as llama.cpp does.
        for (int64_t i = 0; i < HD; ++i) qh[i] = fp16_to_f32(f32_to_fp16(s.q[t * q_dim + h * HD + i]));
        const int n_kv = be.pos + 1;
        for (int p = 0; p < n_kv; ++p) {
          const uint16_t* kr = kv.k(be.seq, il, p) + hk * HD;
          float d = 0;
          for (int64_t i = 0; i < HD; ++i) d += qh[i] * fp16_to_f32(kr[i]);
          sc[p] = d * kq_scale;
        }
        kernels::softmax(sc, n_kv);
        float* out = &s.att[t * q_dim + h * HD];
        std::fill(out, out + HD, 0.0f);
        for (int p = 0; p < n_kv; ++p) {
          const uint16_t* vr = kv.v(be.seq, il, p) + hk * HD;
          const float w = fp16_to_f32(f32_to_fp16(sc[p]));
          for (int64_t i = 0; i < HD; ++i) out[i] += w * fp16_to_f32(vr[i]);
        }
      }
    });
    matmul(pool, L.wo, s.att.data(), N, s.tmp.data(), s.xq.data());
    kernels::add_inplace(s.x.data(), s.tmp.data(), N * E);

    // --- feed-forward (SwiGLU) ---
    for (int64_t t = 0; t < N; ++t)
      kernels::rmsnorm(&s.x[t * E], reinterpret_cast<const float*>(L.ffn_norm.data), &s.xn[t * E], E,
                       c.norm_eps);
    {
      const DType vg = kernels::ops(L.ffn_gate.type).vec_dot_type;
      const size_t stride = convert_activations(pool, s.xn.data(), N, E, vg, s.xq.data());
      matmul_prepared(pool, L.ffn_gate, s.xq.data(), stride, N, s.gate.data());
      if (kernels::ops(L.ffn_up.type).vec_dot_type == vg) {
        matmul_prepared(pool, L.ffn_up, s.xq.data(), stride, N, s.up.data());
      } else {
        matmul(pool, L.ffn_up, s.xn.data(), N, s.up.data(), s.xq.data());
      }
    }
    kernels::swiglu(s.gate.data(), s.up.data(), s.hidden.data(), N * FF);
    matmul(pool, L.ffn_down, s.hidden.data(), N, s.tmp.data(), s.xq.data());
    kernels::add_inplace(s.x.data(), s.tmp.data(), N * E);
  }

  // Final norm and output projection only for the entries that want logits.
  int64_t n_out = 0;
  for (int64_t t = 0; t < N; ++t) {
    if (!batch[t].logits) continue;
    kernels::rmsnorm(&s.x[t * E], reinterpret_cast<const float*>(W.output_norm.data),
                     &s.xn[n_out * E], E, c.norm_eps);
    ++n_out;
  }
  if (n_out > 0) matmul(pool, W.output, s.xn.data(), n_out, logits, s.xq.data());
  (void)q_dim;
  (void)FF;
}

}  // namespace edgelm
