// Llama-family transformer blocks: forward over packed sequences (frozen quantized weights or
// trainable float32 ones) and the hand-written backward pass of the float32 block.
#include "train/block.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "edgelm/error.hpp"
#include "kernels/backward.hpp"
#include "kernels/kernels.hpp"
#include "kernels/simd.hpp"

namespace edgelm::train {

namespace {

int64_t total_tokens(std::span<const int> lens) {
  int64_t t = 0;
  for (int n : lens) t += n;
  return t;
}

TensorView f32_view(const Param& p, int64_t n_in, int64_t n_out) {
  TensorView v;
  v.name = p.name;
  v.type = DType::F32;
  v.n_dims = 2;
  v.ne = {n_in, n_out, 1, 1};
  v.data = reinterpret_cast<const std::byte*>(p.value.data());
  v.nbytes = p.value.size() * sizeof(float);
  return v;
}

TensorView raw_view(const float* data, int64_t n_in, int64_t n_out) {
  TensorView v;
  v.type = DType::F32;
  v.n_dims = 2;
  v.ne = {n_in, n_out, 1, 1};
  v.data = reinterpret_cast<const std::byte*>(data);
  v.nbytes = static_cast<size_t>(n_in * n_out) * sizeof(float);
  return v;
}

// The seven projections of a block, for the code that walks them all: where each sits in
// BlockWeights, LayerWeights and TransformerBlock, its tensor name and its shape (n_in -> n_out).
enum class Dim { Embd, Q, KV, FF };
struct Projection {
  TensorView BlockWeights::*view;
  TensorView LayerWeights::*tensor;
  Param TransformerBlock::*param;
  const char* name;
  Dim n_in, n_out;
};
constexpr Projection kProjections[] = {
    {&BlockWeights::wq, &LayerWeights::wq, &TransformerBlock::wq, "attn_q", Dim::Embd, Dim::Q},
    {&BlockWeights::wk, &LayerWeights::wk, &TransformerBlock::wk, "attn_k", Dim::Embd, Dim::KV},
    {&BlockWeights::wv, &LayerWeights::wv, &TransformerBlock::wv, "attn_v", Dim::Embd, Dim::KV},
    {&BlockWeights::wo, &LayerWeights::wo, &TransformerBlock::wo, "attn_output", Dim::Q, Dim::Embd},
    {&BlockWeights::ffn_gate, &LayerWeights::ffn_gate, &TransformerBlock::ffn_gate, "ffn_gate", Dim::Embd, Dim::FF},
    {&BlockWeights::ffn_up, &LayerWeights::ffn_up, &TransformerBlock::ffn_up, "ffn_up", Dim::Embd, Dim::FF},
    {&BlockWeights::ffn_down, &LayerWeights::ffn_down, &TransformerBlock::ffn_down, "ffn_down", Dim::FF, Dim::Embd},
};

int64_t dim(const BlockShape& s, Dim d) {
  switch (d) {
    case Dim::Embd: return s.n_embd;
    case Dim::Q: return int64_t{s.n_head} * s.head_dim;
    case Dim::KV: return int64_t{s.n_head_kv} * s.head_dim;
    case Dim::FF: return s.n_ff;
  }
  return 0;
}

// y[t][r] = W[r] . x[t] for T rows (W: ne[1] rows of ne[0]); activations converted to the
// weight's vec_dot_type first, as the engine does.
void linear(const TensorView& w, const float* x, int64_t T, float* y, kernels::ThreadPool* pool) {
  if (T == 0) return;
  const int64_t n_in = w.ne[0], n_out = w.ne[1];
  const DType vt = kernels::ops(w.type).vec_dot_type;
  const std::byte* xq = reinterpret_cast<const std::byte*>(x);
  size_t stride = static_cast<size_t>(n_in) * sizeof(float);
  std::vector<std::byte> conv;
  if (vt != DType::F32) {
    stride = row_size(vt, n_in);
    conv.resize(stride * T);
    for (int64_t t = 0; t < T; ++t) kernels::ops(vt).from_float(x + t * n_in, conv.data() + t * stride, n_in);
    xq = conv.data();
  }
  if (!pool || pool->size() == 1) {
    kernels::matmul_rows(w, xq, stride, y, static_cast<size_t>(n_out), T, 0, n_out);
    return;
  }
  pool->run([&](int ith, int nth) {
    auto [r0, r1] = kernels::split_range_aligned(n_out, ith, nth, 16);
    if (r0 < r1) kernels::matmul_rows(w, xq, stride, y, static_cast<size_t>(n_out), T, r0, r1);
  });
}

void transpose(const float* a, int64_t rows, int64_t cols, float* out) {
  constexpr int64_t B = 32;
  for (int64_t r0 = 0; r0 < rows; r0 += B)
    for (int64_t c0 = 0; c0 < cols; c0 += B)
      for (int64_t r = r0; r < std::min(rows, r0 + B); ++r)
        for (int64_t c = c0; c < std::min(cols, c0 + B); ++c) out[c * rows + r] = a[r * cols + c];
}

// Backward of y = W x for a float32 W ([n_out][n_in]): dx = dy W (overwritten, or added when
// `add`), grad(W) += dy^T x.
void linear_backward(Param& w, int64_t n_in, int64_t n_out, const float* x, const float* dy, int64_t T, float* dx,
                     bool add, kernels::ThreadPool* pool) {
  std::vector<float> wt(static_cast<size_t>(n_in * n_out));
  transpose(w.value.data(), n_out, n_in, wt.data());
  std::vector<float> tmp(static_cast<size_t>(std::max(T * n_in, n_in * n_out)));
  linear(raw_view(wt.data(), n_out, n_in), dy, T, tmp.data(), pool);
  if (add)
    for (int64_t i = 0; i < T * n_in; ++i) dx[i] += tmp[i];
  else
    std::copy_n(tmp.data(), T * n_in, dx);
  // grad[r][c] = sum_t dy[t][r] x[t][c]: rows of x^T as weights, rows of dy^T as tokens.
  std::vector<float> xt(static_cast<size_t>(T * n_in)), dyt(static_cast<size_t>(T * n_out));
  transpose(x, T, n_in, xt.data());
  transpose(dy, T, n_out, dyt.data());
  linear(raw_view(xt.data(), T, n_in), dyt.data(), n_out, tmp.data(), pool);
  for (int64_t i = 0; i < n_in * n_out; ++i) w.grad[i] += tmp[i];
}

void rope_rows(float* rows, int64_t T, int64_t width, const BlockShape& s, std::span<const int> lens, bool inverse) {
  const auto& ks = kernels::simd::best();
  const int64_t half = std::max(1, s.n_rot / 2);
  std::vector<float> cs(half), sn(half);
  int64_t t = 0;
  for (int n : lens)
    for (int p = 0; p < n; ++p, ++t) {
      kernels::simd::rope_angles(s.n_rot, p, s.rope_base, s.rope_scale, cs.data(), sn.data());
      if (inverse)
        kernels::rope_backward(rows + t * width, width / s.head_dim, s.head_dim, s.n_rot, cs.data(), sn.data(),
                               s.rope_neox);
      else
        ks.flt.rope(rows + t * width, width / s.head_dim, s.head_dim, s.n_rot, cs.data(), sn.data(), s.rope_neox);
    }
  (void)T;
}

float silu(float g) { return g / (1.0f + std::exp(-g)); }

}  // namespace

TransformerBlock::TransformerBlock(BlockShape s, int index) : shape_(s) {
  const std::string p = "cls.blk." + std::to_string(index) + ".";
  for (auto [norm, name] : {std::pair{&attn_norm, "attn_norm"}, std::pair{&ffn_norm, "ffn_norm"}}) {
    norm->name = p + name;
    norm->resize(s.n_embd);
    norm->decay = false;
  }
  for (const Projection& pr : kProjections) {
    Param& w = this->*pr.param;
    w.name = p + pr.name;
    w.resize(static_cast<size_t>(dim(s, pr.n_out) * dim(s, pr.n_in)));
  }
}

std::vector<Param*> TransformerBlock::params() {
  return {&attn_norm, &wq, &wk, &wv, &wo, &ffn_norm, &ffn_gate, &ffn_up, &ffn_down};
}

BlockShape block_shape(const ModelConfig& c) {
  if (c.gemma_block) throw Error("fine-tuning blocks supports Llama-family backbones only", "use --unfreeze 0");
  BlockShape s;
  s.n_embd = c.n_embd;
  s.n_head = c.n_head;
  s.n_head_kv = c.n_head_kv;
  s.head_dim = c.head_dim;
  s.n_ff = c.n_ff;
  s.n_rot = c.n_rot;
  s.rope_base = c.rope_freq_base;
  s.rope_scale = c.rope_freq_scale;
  s.norm_eps = c.norm_eps;
  s.rope_neox = c.rope_neox;
  return s;
}

BlockWeights block_weights(const Model& model, int layer) {
  const LayerWeights& L = model.weights().layers.at(layer);
  BlockWeights w;
  w.attn_norm = reinterpret_cast<const float*>(L.attn_norm.data);
  w.ffn_norm = reinterpret_cast<const float*>(L.ffn_norm.data);
  for (const Projection& pr : kProjections) w.*pr.view = L.*pr.tensor;
  return w;
}

BlockWeights block_weights(const TransformerBlock& b) {
  BlockWeights w;
  w.attn_norm = b.attn_norm.value.data();
  w.ffn_norm = b.ffn_norm.value.data();
  for (const Projection& pr : kProjections)
    w.*pr.view = f32_view(b.*pr.param, dim(b.shape(), pr.n_in), dim(b.shape(), pr.n_out));
  return w;
}

TransformerBlock load_block(const Model& model, int layer, int index) {
  TransformerBlock b(block_shape(model.config()), index);
  const LayerWeights& L = model.weights().layers.at(layer);
  auto load = [](const TensorView& v, Param& p) {
    if (static_cast<size_t>(v.nelements()) != p.value.size())
      throw Error("tensor " + v.name + " has " + std::to_string(v.nelements()) + " elements, expected " +
                  std::to_string(p.value.size()));
    for (int64_t r = 0; r < v.nrows(); ++r) kernels::dequantize_row(v.type, v.row(r), p.value.data() + r * v.ne[0], v.ne[0]);
  };
  load(L.attn_norm, b.attn_norm);
  load(L.ffn_norm, b.ffn_norm);
  for (const Projection& pr : kProjections) load(L.*pr.tensor, b.*pr.param);
  return b;
}

void rmsnorm_rows(const float* x, const float* w, int64_t T, int64_t n, float eps, float* out) {
  for (int64_t t = 0; t < T; ++t) {
    const float* xt = x + t * n;
    double ss = 0;
    for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(xt[i]) * xt[i];
    const float inv = static_cast<float>(1.0 / std::sqrt(ss / n + eps));
    float* o = out + t * n;
    for (int64_t i = 0; i < n; ++i) o[i] = xt[i] * inv * (w ? w[i] : 1.0f);
  }
}

void rmsnorm_rows_backward(const float* x, const float* w, const float* dout, int64_t T, int64_t n, float eps,
                           float* dx, float* dw) {
  for (int64_t t = 0; t < T; ++t) kernels::rmsnorm_backward(x + t * n, w, dout + t * n, n, eps, dx + t * n, dw);
}

void block_forward(const BlockWeights& w, const BlockShape& s, const float* x_in, std::span<const int> lens, float* y,
                   BlockTrace* tr, kernels::ThreadPool* pool) {
  const int64_t T = total_tokens(lens);
  const int64_t E = s.n_embd, HD = s.head_dim, NH = s.n_head, NKV = s.n_head_kv, FF = s.n_ff;
  const int64_t Qd = NH * HD, KVd = NKV * HD, group = NH / NKV;
  const float scale = 1.0f / std::sqrt(static_cast<float>(HD));
  BlockTrace local;
  BlockTrace& t = tr ? *tr : local;
  t.lens.assign(lens.begin(), lens.end());
  t.x.assign(x_in, x_in + T * E);
  t.xn1.resize(T * E);
  t.q.resize(T * Qd);
  t.k.resize(T * KVd);
  t.v.resize(T * KVd);
  t.att.resize(T * Qd);
  t.h.resize(T * E);
  t.xn2.resize(T * E);
  t.gate.resize(T * FF);
  t.up.resize(T * FF);
  t.act.resize(T * FF);
  int64_t n_probs = 0;
  for (int n : lens) n_probs += static_cast<int64_t>(n) * n * NH;
  t.probs.assign(n_probs, 0.0f);

  rmsnorm_rows(t.x.data(), w.attn_norm, T, E, s.norm_eps, t.xn1.data());
  linear(w.wq, t.xn1.data(), T, t.q.data(), pool);
  linear(w.wk, t.xn1.data(), T, t.k.data(), pool);
  linear(w.wv, t.xn1.data(), T, t.v.data(), pool);
  rope_rows(t.q.data(), T, Qd, s, lens, false);
  rope_rows(t.k.data(), T, KVd, s, lens, false);

  // Causal attention per sequence and head: probs[i][j] = softmax_j<=i(q_i . k_j * scale).
  int64_t off = 0, poff = 0;
  for (int n : lens) {
    for (int64_t hq = 0; hq < NH; ++hq) {
      const int64_t hk = hq / group;
      float* P = t.probs.data() + poff + hq * n * n;
      for (int i = 0; i < n; ++i) {
        const float* qi = t.q.data() + (off + i) * Qd + hq * HD;
        float* pi = P + static_cast<int64_t>(i) * n;
        float mx = -INFINITY;
        for (int j = 0; j <= i; ++j) {
          const float* kj = t.k.data() + (off + j) * KVd + hk * HD;
          float d = 0;
          for (int64_t e = 0; e < HD; ++e) d += qi[e] * kj[e];
          pi[j] = d * scale;
          mx = std::max(mx, pi[j]);
        }
        double sum = 0;
        for (int j = 0; j <= i; ++j) {
          pi[j] = std::exp(pi[j] - mx);
          sum += pi[j];
        }
        const float inv = static_cast<float>(1.0 / sum);
        float* out = t.att.data() + (off + i) * Qd + hq * HD;
        std::fill(out, out + HD, 0.0f);
        for (int j = 0; j <= i; ++j) {
          pi[j] *= inv;
          const float* vj = t.v.data() + (off + j) * KVd + hk * HD;
          for (int64_t e = 0; e < HD; ++e) out[e] += pi[j] * vj[e];
        }
      }
    }
    off += n;
    poff += static_cast<int64_t>(n) * n * NH;
  }

  linear(w.wo, t.att.data(), T, t.h.data(), pool);
  for (int64_t i = 0; i < T * E; ++i) t.h[i] += t.x[i];
  rmsnorm_rows(t.h.data(), w.ffn_norm, T, E, s.norm_eps, t.xn2.data());
  linear(w.ffn_gate, t.xn2.data(), T, t.gate.data(), pool);
  linear(w.ffn_up, t.xn2.data(), T, t.up.data(), pool);
  for (int64_t i = 0; i < T * FF; ++i) t.act[i] = silu(t.gate[i]) * t.up[i];
  std::vector<float> down(T * E);
  linear(w.ffn_down, t.act.data(), T, down.data(), pool);
  for (int64_t i = 0; i < T * E; ++i) y[i] = t.h[i] + down[i];
}

void block_backward(TransformerBlock& b, const BlockTrace& t, const float* dy, float* dx, kernels::ThreadPool* pool) {
  const BlockShape& s = b.shape();
  const std::span<const int> lens(t.lens);
  const int64_t T = total_tokens(lens);
  const int64_t E = s.n_embd, HD = s.head_dim, NH = s.n_head, NKV = s.n_head_kv, FF = s.n_ff;
  const int64_t Qd = NH * HD, KVd = NKV * HD, group = NH / NKV;
  const float scale = 1.0f / std::sqrt(static_cast<float>(HD));

  // --- feed-forward: y = h + W_down (silu(gate) * up), gate/up = W (rmsnorm(h)) ---
  std::vector<float> dact(T * FF), dgate(T * FF), dup(T * FF), dxn(T * E), dh(T * E);
  linear_backward(b.ffn_down, FF, E, t.act.data(), dy, T, dact.data(), false, pool);
  kernels::swiglu_backward(t.gate.data(), t.up.data(), dact.data(), T * FF, dgate.data(), dup.data());
  linear_backward(b.ffn_gate, E, FF, t.xn2.data(), dgate.data(), T, dxn.data(), false, pool);
  linear_backward(b.ffn_up, E, FF, t.xn2.data(), dup.data(), T, dxn.data(), true, pool);
  rmsnorm_rows_backward(t.h.data(), b.ffn_norm.value.data(), dxn.data(), T, E, s.norm_eps, dh.data(),
                        b.ffn_norm.grad.data());
  for (int64_t i = 0; i < T * E; ++i) dh[i] += dy[i];

  // --- attention: h = x + W_o att ---
  std::vector<float> datt(T * Qd), dq(T * Qd, 0.0f), dk(T * KVd, 0.0f), dv(T * KVd, 0.0f);
  linear_backward(b.wo, Qd, E, t.att.data(), dh.data(), T, datt.data(), false, pool);
  int64_t off = 0, poff = 0;
  for (int n : lens) {
    for (int64_t hq = 0; hq < NH; ++hq) {
      const int64_t hk = hq / group;
      const float* P = t.probs.data() + poff + hq * n * n;
      for (int i = 0; i < n; ++i)
        kernels::attention_backward(t.q.data() + (off + i) * Qd + hq * HD, t.k.data() + off * KVd + hk * HD,
                                    static_cast<size_t>(KVd), t.v.data() + off * KVd + hk * HD,
                                    static_cast<size_t>(KVd), P + static_cast<int64_t>(i) * n,
                                    datt.data() + (off + i) * Qd + hq * HD, i + 1, HD, scale, 0.0f,
                                    dq.data() + (off + i) * Qd + hq * HD, dk.data() + off * KVd + hk * HD,
                                    dv.data() + off * KVd + hk * HD);
    }
    off += n;
    poff += static_cast<int64_t>(n) * n * NH;
  }
  // Through RoPE (a rotation: its transpose rotates back).
  rope_rows(dq.data(), T, Qd, s, lens, true);
  rope_rows(dk.data(), T, KVd, s, lens, true);
  linear_backward(b.wq, E, Qd, t.xn1.data(), dq.data(), T, dxn.data(), false, pool);
  linear_backward(b.wk, E, KVd, t.xn1.data(), dk.data(), T, dxn.data(), true, pool);
  linear_backward(b.wv, E, KVd, t.xn1.data(), dv.data(), T, dxn.data(), true, pool);
  rmsnorm_rows_backward(t.x.data(), b.attn_norm.value.data(), dxn.data(), T, E, s.norm_eps, dx,
                        b.attn_norm.grad.data());
  for (int64_t i = 0; i < T * E; ++i) dx[i] += dh[i];
}

}  // namespace edgelm::train
