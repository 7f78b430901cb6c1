// collect_matmul_inputs: the Llama block's layer math, run over one sequence with the public
// kernels, reporting the input of every matrix product (what an importance matrix needs).
//
// This duplicates the forward pass on purpose and only until the runtime offers a hook for it
// (see the TODO in quant.hpp): the imatrix must not depend on the forward pass's internals,
// which are being optimised separately.
// Keys, values, queries and attention weights are rounded to half precision as the runtime
// does; the element-wise ops are the scalar references, so results are close to the session's
// but not bit-identical (activations quantized to 8 bits before every matrix product turn tiny
// differences into rounding flips). tests/quant compare the logits with the session's.
#include <algorithm>
#include <cmath>
#include <thread>

#include "edgelm/error.hpp"
#include "edgelm/quant.hpp"
#include "kernels/kernels.hpp"
#include "kernels/thread_pool.hpp"
#include "tensor/fp16.hpp"

namespace edgelm::quant {
namespace {

using kernels::ThreadPool;

// y (n_tok x rows) = x (n_tok x w.ne[0]) . W^T, through the weight's vec_dot_type as the
// runtime does.
void matmul(ThreadPool& pool, const TensorView& w, const float* x, int64_t n_tok, float* y,
            std::vector<std::byte>& xq) {
  const int64_t n = w.ne[0], rows = w.nrows();
  const DType vt = kernels::ops(w.type).vec_dot_type;
  const size_t stride = row_size(vt, n);
  xq.resize(stride * static_cast<size_t>(n_tok));
  const auto& conv = kernels::ops(vt);
  pool.run([&](int ith, int nth) {
    auto [b, e] = kernels::split_range(n_tok, ith, nth);
    for (int64_t t = b; t < e; ++t) conv.from_float(x + t * n, xq.data() + t * stride, n);
  });
  pool.run([&](int ith, int nth) {
    auto [r0, r1] = kernels::split_range_aligned(rows, ith, nth, 16);
    if (r0 < r1) kernels::matmul_rows(w, xq.data(), stride, y, static_cast<size_t>(rows), n_tok, r0, r1);
  });
}

}  // namespace

std::vector<float> collect_matmul_inputs(const Model& model, std::span<const int32_t> tokens,
                                         const MatmulInputHook& hook, int n_threads) {
  const ModelConfig& c = model.config();
  const ModelWeights& W = model.weights();
  const int64_t N = static_cast<int64_t>(tokens.size());
  if (N == 0) throw Error("nothing to evaluate: the token list is empty");
  // This copy of the block knows the Llama math only; the newer families (biases, LayerNorm,
  // fused or soft-capped attention, YaRN) would give silently wrong activations.
  if ((c.arch != "llama" && c.arch != "gemma3") || c.rope_yarn)
    throw Error("an importance matrix cannot be computed for " + c.arch + " models yet",
                "quantize without --imatrix");
  const int64_t E = c.n_embd, HD = c.head_dim, NH = c.n_head, NKV = c.n_head_kv, FF = c.n_ff;
  const int64_t q_dim = NH * HD, kv_dim = NKV * HD, group = NH / NKV;
  const float kq_scale = 1.0f / std::sqrt(static_cast<float>(HD));
  if (n_threads <= 0) n_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  ThreadPool pool(n_threads);

  std::vector<float> x(N * E), xn(N * E), q(N * q_dim), k(N * kv_dim), v(N * kv_dim), att(N * q_dim),
      tmp(N * E), gate(N * FF), up(N * FF), hidden(N * FF);
  std::vector<float> scores(static_cast<size_t>(n_threads) * N);
  std::vector<std::byte> xq;

  for (int64_t t = 0; t < N; ++t) {
    if (tokens[t] < 0 || tokens[t] >= c.n_vocab)
      throw Error("token id " + std::to_string(tokens[t]) + " is outside the vocabulary");
    kernels::dequantize_row(W.token_embd.type, W.token_embd.row(tokens[t]), &x[t * E], E);
  }
  auto report = [&](const TensorView& w, const float* in) {
    if (hook) hook(w.name, in, N, w.ne[0]);
  };

  for (int il = 0; il < c.n_layer; ++il) {
    const LayerWeights& L = W.layers[il];
    for (int64_t t = 0; t < N; ++t)
      kernels::rmsnorm(&x[t * E], reinterpret_cast<const float*>(L.attn_norm.data), &xn[t * E], E, c.norm_eps);
    report(L.wq, xn.data());
    report(L.wk, xn.data());
    report(L.wv, xn.data());
    matmul(pool, L.wq, xn.data(), N, q.data(), xq);
    matmul(pool, L.wk, xn.data(), N, k.data(), xq);
    matmul(pool, L.wv, xn.data(), N, v.data(), xq);
    for (int64_t t = 0; t < N; ++t) {
      for (int64_t h = 0; h < NH; ++h)
        kernels::rope(&q[t * q_dim + h * HD], HD, c.n_rot, t, c.rope_freq_base, c.rope_freq_scale, c.rope_neox);
      for (int64_t h = 0; h < NKV; ++h)
        kernels::rope(&k[t * kv_dim + h * HD], HD, c.n_rot, t, c.rope_freq_base, c.rope_freq_scale, c.rope_neox);
    }
    // Keys, values and queries meet at half precision, as in the runtime's KV cache.
    for (auto* buf : {&q, &k, &v})
      for (float& e : *buf) e = fp16_to_f32(f32_to_fp16(e));
    pool.run([&](int ith, int nth) {
      float* sc = &scores[static_cast<size_t>(ith) * N];
      auto [b, e] = kernels::split_range(N * NH, ith, nth);
      for (int64_t item = b; item < e; ++item) {
        const int64_t t = item / NH, h = item % NH, hk = h / group;
        const float* qh = &q[t * q_dim + h * HD];
        for (int64_t p = 0; p <= t; ++p) {
          const float* kr = &k[p * kv_dim + hk * HD];
          float d = 0;
          for (int64_t i = 0; i < HD; ++i) d += qh[i] * kr[i];
          sc[p] = d * kq_scale;
        }
        kernels::softmax(sc, t + 1);
        for (int64_t p = 0; p <= t; ++p) sc[p] = fp16_to_f32(f32_to_fp16(sc[p]));
        float* out = &att[t * q_dim + h * HD];
        std::fill(out, out + HD, 0.0f);
        for (int64_t p = 0; p <= t; ++p) {
          const float* vr = &v[p * kv_dim + hk * HD];
          for (int64_t i = 0; i < HD; ++i) out[i] += sc[p] * vr[i];
        }
      }
    });
    report(L.wo, att.data());
    matmul(pool, L.wo, att.data(), N, tmp.data(), xq);
    kernels::add_inplace(x.data(), tmp.data(), N * E);

    for (int64_t t = 0; t < N; ++t)
      kernels::rmsnorm(&x[t * E], reinterpret_cast<const float*>(L.ffn_norm.data), &xn[t * E], E, c.norm_eps);
    report(L.ffn_gate, xn.data());
    report(L.ffn_up, xn.data());
    matmul(pool, L.ffn_gate, xn.data(), N, gate.data(), xq);
    matmul(pool, L.ffn_up, xn.data(), N, up.data(), xq);
    kernels::swiglu(gate.data(), up.data(), hidden.data(), N * FF);
    report(L.ffn_down, hidden.data());
    matmul(pool, L.ffn_down, hidden.data(), N, tmp.data(), xq);
    kernels::add_inplace(x.data(), tmp.data(), N * E);
  }

  // Final norm for the last token only is enough for the logits we return, but the output
  // projection's importance needs every token.
  for (int64_t t = 0; t < N; ++t)
    kernels::rmsnorm(&x[t * E], reinterpret_cast<const float*>(W.output_norm.data), &xn[t * E], E, c.norm_eps);
  report(W.output, xn.data());
  std::vector<float> logits(static_cast<size_t>(c.n_vocab));
  matmul(pool, W.output, &xn[(N - 1) * E], 1, logits.data(), xq);
  return logits;
}

}  // namespace edgelm::quant
