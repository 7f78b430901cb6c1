// Llama-family block: RMSNorm -> GQA attention with RoPE -> residual -> RMSNorm -> SwiGLU ->
// residual; then the final norm and the output projection. The Gemma 3 block
// (ModelConfig::gemma_block) differs in: embeddings times sqrt(n_embd); RMSNorm of every Q and
// K head before RoPE; queries scaled before attention; RMSNorm of the attention and
// feed-forward outputs before each residual add; GeGLU; local layers with a sliding window and
// their own RoPE table. Other families switch single pieces on (ModelConfig, set by the
// architecture table in model/arch.cpp): Q/K/V biases, LayerNorm with bias, partial rotary
// dimensions, pre-scaled queries, YaRN angles, attention and final logit soft-capping.
#include "model/forward_pass.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "edgelm/error.hpp"
#include "kernels/backward.hpp"
#include "kernels/kernels.hpp"

namespace edgelm {
namespace {

constexpr int64_t kRowAlign = 16;  // matrix rows handed to a thread: whole SIMD tiles

DType vec_dot_type(const TensorView& w) { return kernels::ops(w.type).vec_dot_type; }

int64_t block_of(DType t) { return dtype_traits(t).block_size; }

// Gate and up rows handed to a thread: whole SIMD tiles and whole blocks of W_down's input.
int64_t ffn_align(DType down_input) { return std::max<int64_t>(kRowAlign, block_of(down_input)); }

const float* fdata(const TensorView& t) { return reinterpret_cast<const float*>(t.data); }

void check_computable(const TensorView& w) {
  if (!kernels::can_compute(w.type))
    throw Error("tensor " + w.name + " has type " + std::string(dtype_name(w.type)) + ", which edgelm cannot compute with");
}

}  // namespace

void ForwardPass::ProductInput::add_type(DType t) {
  for (int i = 0; i < n; ++i)
    if (type[i] == t) return;
  type[n++] = t;
}

int ForwardPass::ProductInput::slot_of(DType t) const {
  for (int i = 0; i < n; ++i)
    if (type[i] == t) return i;
  return 0;  // unreachable: every weight's type was added
}

ForwardPass::ForwardPass(const ModelConfig& config, const ModelWeights& weights, std::span<const BatchEntry> batch,
                         KvCache& kv, ForwardScratch& s, kernels::ThreadPool& pool, float* logits, float* hidden)
    : c_(config),
      w_(weights),
      batch_(batch),
      kv_(kv),
      s_(s),
      seam_(s.seam),
      tape_(s.seam.tape),
      pool_(pool),
      logits_(logits),
      hidden_(hidden),
      ks_(kernels::simd::best()) {
  const ModelConfig& c = c_;
  N = static_cast<int64_t>(batch.size());
  E = c.n_embd, HD = c.head_dim, NH = c.n_head, NKV = c.n_head_kv;
  q_dim = NH * HD, kv_dim = NKV * HD, FF = c.n_ff, V = c.n_vocab;
  group = NH / NKV;
  half_rot = std::max<int64_t>(1, c.n_rot / 2);
  ctx_pad = static_cast<size_t>((s.n_ctx_ + KvCache::kPosBlock - 1) / KvCache::kPosBlock * KvCache::kPosBlock);
  swa_rope_off = static_cast<size_t>(s.max_tokens_) * static_cast<size_t>(half_rot);
  // Gemma and Phi-3 scale the rotated queries (as llama.cpp does, before attention) and attend
  // with scale 1; the Llama block scales the scores by 1 / sqrt(head_dim).
  q_scale = c.attn_scale > 0 ? c.attn_scale : 1.0f / std::sqrt(static_cast<float>(HD));
  kq_scale = c.q_prescale ? 1.0f : 1.0f / std::sqrt(static_cast<float>(HD));
  embd_scale = std::sqrt(static_cast<float>(E));
  static_assert(KvCache::kPosBlock == kernels::simd::kKeyBlock, "attention reads the cache's key blocks");

  if (N > s.max_tokens()) throw Error("internal: batch larger than the session's scratch");
  if (pool.size() > s.n_threads_) throw Error("internal: thread pool larger than the session's scratch");
  for (int64_t t = 0; t < N; ++t) {
    const auto& e = batch[t];
    if (!s.seam.residual_in && (e.token < 0 || e.token >= c.n_vocab))
      throw Error("token id " + std::to_string(e.token) + " is outside the vocabulary");
    if (e.pos < 0 || e.pos >= kv.n_ctx() || e.seq < 0 || e.seq >= kv.n_seq())
      throw Error("internal: batch position outside the KV cache");
    if (e.logits) out_rows_.push_back(t);
    if (tape_ && e.pos > 0 && (t == 0 || batch[t - 1].seq != e.seq || batch[t - 1].pos != e.pos - 1))
      throw Error("internal: a taped batch must hold whole sequences, each from position 0 in order");
    if (tape_ && e.pos == 0) seq_start_.push_back(t);
  }
  if (tape_) seq_start_.push_back(N);
  if (s.seam.first_block < 0 || s.seam.first_block > n_layer() || (s.seam.first_block > 0 && !s.seam.residual_in))
    throw Error("internal: a pass that starts after block 0 needs the residual stream entering it");
  if (tape_ && !tape_->replay) tape_->prepare(c, s.seam.first_block, n_layer(), N);
  if (c.n_swa > 0 && s.kwin_elems_ == 0) throw Error("internal: scratch made for a model without sliding windows");
  for (const auto& L : w_.layers)
    if ((c.qk_norm && (!L.attn_q_norm.data || !L.attn_k_norm.data)) ||
        (c.post_norms && (!L.attn_post_norm.data || !L.ffn_post_norm.data)))
      throw Error("internal: Gemma block without its norm weights");
  for (const auto& L : w_.layers)
    for (const TensorView* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.ffn_gate, &L.ffn_up, &L.ffn_down}) check_computable(*w);
  for (const TensorView* w : {&w_.token_embd, &w_.output}) check_computable(*w);
  if (HD > 512) throw Error("head dimension " + std::to_string(HD) + " is larger than the 512 edgelm supports");
}

// ---------------------------------------------------------------------------------------------
// Steps

void ForwardPass::embed(int ith, int nth) {
  auto [t0, t1] = kernels::split_range(N, ith, nth);
  for (int64_t t = t0; t < t1; ++t) {
    if (seam_.residual_in)
      std::copy_n(seam_.residual_in + t * E, E, s_.x.data() + t * E);
    else
      embed_token(t);
    rotation_tables(t);
  }
  pool_.barrier();
}

void ForwardPass::attention_input(int il, int ith, int nth) {
  const LayerWeights& L = w_.layers[il];
  const ProductInput in = norm_convert(ith, nth, fdata(L.attn_norm), fdata(L.attn_norm_b), {&L.wq, &L.wk, &L.wv}, nullptr, N);
  if (tape_) {
    if (!tape_->replay) record(tape_->block(il).x, s_.x.data(), static_cast<size_t>(E), E, ith, nth);
    record(tape_->rec(il).xn1, in.x, in.x_stride, E, ith, nth);
  }
  const QkvPart parts[3] = {{Projection::kQ, &L.wq, s_.q.data(), q_dim, 0, fdata(L.bq)},
                            {Projection::kK, &L.wk, s_.k.data(), kv_dim, NH, fdata(L.bk)},
                            {Projection::kV, &L.wv, s_.v.data(), kv_dim, NH + NKV, fdata(L.bv)}};
  auto [h0, h1] = kernels::split_range(NH + 2 * NKV, ith, nth);
  for (const QkvPart& g : parts) {
    const int64_t lo = std::max(h0, g.first), hi = std::min(h1, g.first + g.dim / HD);
    if (lo >= hi) continue;
    const int64_t c0 = (lo - g.first) * HD, c1 = (hi - g.first) * HD;
    const int slot = in.slot_of(vec_dot_type(*g.w));
    product(*g.w, in.data[slot], in.stride[slot], in.x, in.x_stride, g.y, static_cast<size_t>(g.dim), N, c0, c1);
    adapt(il, g.proj, in.x, in.x_stride, E, g.y, static_cast<size_t>(g.dim), N, c0, c1);
    for (int64_t t = 0; t < N; ++t) finish_qkv_row(g, il, t, c0, c1);
  }
  pool_.barrier();
}

void ForwardPass::attention(int il, int ith, int nth) {
  const LayerWeights& L = w_.layers[il];
  const OwnInput o = wo_input(L);
  float* scores = s_.scores.data() + static_cast<size_t>(ith) * group * ctx_pad;
  // Items of (token, KV head), or for few tokens (token, query head), dealt out in turn, not
  // in contiguous ranges: under the causal mask a token's attention costs in proportion to its
  // position, and contiguous ranges gave the last thread the longest contexts (with 2 threads
  // on a 512-token prompt, 3/4 of the work).
  const bool grouped = N * NKV >= 2 * nth;
  const int64_t per_tok = grouped ? NKV : NH;
  if (tape_) {  // items of (sequence, query head)
    const int64_t n_seq = static_cast<int64_t>(seq_start_.size()) - 1;
    for (int64_t item = ith; item < n_seq * NH; item += nth) {
      const int64_t sq = item / NH, h = item % NH, t0 = seq_start_[sq], t1 = seq_start_[sq + 1];
      attend_taped(il, t0, t1 - t0, h);
      if (o.fused)
        for (int64_t t = t0; t < t1; ++t)
          kernels::ops(o.type).from_float(s_.att.data() + t * q_dim + h * HD,
                                          o.data + t * o.stride + row_size(o.type, h * HD), HD);
    }
  } else {
    for (int64_t item = ith; item < N * per_tok; item += nth) {
      const int64_t t = item / per_tok, u = item % per_tok;
      const int64_t hq = grouped ? u * group : u, nq = grouped ? group : 1, hk = hq / group;
      attend_heads(il, t, hq, nq, hk, scores, ith);
      if (o.fused)
        kernels::ops(o.type).from_float(s_.att.data() + t * q_dim + hq * HD,
                                        o.data + t * o.stride + row_size(o.type, hq * HD), nq * HD);
    }
  }
  pool_.barrier();
  complete_own_input(ith, nth, L.wo, o, s_.att.data(), q_dim);
}

void ForwardPass::attention_output(int il, int ith, int nth) {
  const LayerWeights& L = w_.layers[il];
  const OwnInput o = wo_input(L);
  if (c_.post_norms)
    project_norm_add(il, Projection::kO, L.wo, o, s_.att.data(), q_dim, fdata(L.attn_post_norm), ith, nth);
  else
    project_add(il, Projection::kO, L.wo, o, s_.att.data(), q_dim, ith, nth);
  pool_.barrier();
}

void ForwardPass::feed_forward(int il, int ith, int nth) {
  const LayerWeights& L = w_.layers[il];
  const ProductInput in = norm_convert(ith, nth, fdata(L.ffn_norm), fdata(L.ffn_norm_b), {&L.ffn_gate, &L.ffn_up}, nullptr, N);
  const OwnInput d = down_input(L);
  if (tape_) {
    record(tape_->rec(il).h, s_.x.data(), static_cast<size_t>(E), E, ith, nth);
    record(tape_->rec(il).xn2, in.x, in.x_stride, E, ith, nth);
  }
  // Gate and up rows split alike: the activation (written over gate) and its conversion for
  // W_down follow on the same slice.
  auto [f0, f1] = kernels::split_range_aligned(FF, ith, nth, ffn_align(d.type));
  if (f0 < f1) {
    const int sg = in.slot_of(vec_dot_type(L.ffn_gate)), su = in.slot_of(vec_dot_type(L.ffn_up));
    product(L.ffn_gate, in.data[sg], in.stride[sg], in.x, in.x_stride, s_.gate.data(), static_cast<size_t>(FF), N, f0, f1);
    adapt(il, Projection::kGate, in.x, in.x_stride, E, s_.gate.data(), static_cast<size_t>(FF), N, f0, f1);
    product(L.ffn_up, in.data[su], in.stride[su], in.x, in.x_stride, s_.up.data(), static_cast<size_t>(FF), N, f0, f1);
    adapt(il, Projection::kUp, in.x, in.x_stride, E, s_.up.data(), static_cast<size_t>(FF), N, f0, f1);
    if (tape_)
      for (int64_t t = 0; t < N; ++t) {
        std::copy_n(s_.gate.data() + t * FF + f0, f1 - f0, tape_->rec(il).gate.data() + t * FF + f0);
        std::copy_n(s_.up.data() + t * FF + f0, f1 - f0, tape_->rec(il).up.data() + t * FF + f0);
      }
    for (int64_t t = 0; t < N; ++t) {
      float* h = s_.gate.data() + t * FF + f0;
      ffn_activation(h, s_.up.data() + t * FF + f0, f1 - f0);
      if (d.fused) kernels::ops(d.type).from_float(h, d.data + t * d.stride + row_size(d.type, f0), f1 - f0);
    }
  }
  pool_.barrier();
  complete_own_input(ith, nth, L.ffn_down, d, s_.gate.data(), FF);
  if (c_.post_norms)
    project_norm_add(il, Projection::kDown, L.ffn_down, d, s_.gate.data(), FF, fdata(L.ffn_post_norm), ith, nth);
  else
    project_add(il, Projection::kDown, L.ffn_down, d, s_.gate.data(), FF, ith, nth);
  pool_.barrier();
}

void ForwardPass::block_output(int il, int ith) {
  // The other threads go on to the next block meanwhile, which reads x but writes it only
  // after a barrier that this thread reaches after the call.
  if (seam_.on_block_output && ith == 0) (*seam_.on_block_output)(il, s_.x.data(), N, E);
}

void ForwardPass::output(int ith, int nth) {
  if (tape_ && !tape_->replay) record(tape_->x_out, s_.x.data(), static_cast<size_t>(E), E, ith, nth);
  const int64_t n_out = static_cast<int64_t>(out_rows_.size());
  if (n_out == 0) return;
  const float* onorm = fdata(w_.output_norm);
  const float* onorm_b = fdata(w_.output_norm_b);
  if (hidden_) {  // final hidden states: features for pooling and classifiers
    auto [j0, j1] = kernels::split_range(n_out, ith, nth);
    for (int64_t j = j0; j < j1; ++j) {
      const float* x = s_.x.data() + out_rows_[j] * E;
      if (seam_.residual_hidden)
        std::copy_n(x, E, hidden_ + j * E);
      else
        norm_row(x, onorm, onorm_b, hidden_ + j * E);
    }
  }
  if (logits_) {  // only for the entries that want logits
    const ProductInput in = norm_convert(ith, nth, onorm, onorm_b, {&w_.output}, out_rows_.data(), n_out);
    auto [r0, r1] = kernels::split_range_aligned(V, ith, nth, kRowAlign);
    if (r0 >= r1) return;
    product(w_.output, in.data[0], in.stride[0], in.x, in.x_stride, logits_, static_cast<size_t>(V), n_out, r0, r1);
    adapt(-1, Projection::kOutput, in.x, in.x_stride, E, logits_, static_cast<size_t>(V), n_out, r0, r1);
    if (c_.final_softcap > 0) {  // Gemma 2: logits -> c * tanh(logits / c)
      const float cap = c_.final_softcap, inv_cap = 1.0f / cap;
      for (int64_t j = 0; j < n_out; ++j)
        for (int64_t r = r0; r < r1; ++r) logits_[j * V + r] = std::tanh(logits_[j * V + r] * inv_cap) * cap;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Row-level operations

// The block and output norms: RMSNorm (weights only) or LayerNorm (weights and bias).
void ForwardPass::norm_row(const float* x, const float* w, const float* b, float* out) const {
  if (c_.norm == ModelConfig::Norm::kLayer)
    kernels::layer_norm(x, w, b, out, E, c_.norm_eps);
  else
    ks_.flt.rmsnorm(x, w, out, E, c_.norm_eps);
}

void ForwardPass::embed_token(int64_t t) const {
  float* xt = s_.x.data() + t * E;
  kernels::dequantize_row(w_.token_embd.type, w_.token_embd.row(batch_[t].token), xt, E);
  if (c_.scale_embd)
    for (int64_t i = 0; i < E; ++i) xt[i] *= embd_scale;
}

// One table per token serves every head of every layer; local layers have their own.
void ForwardPass::rotation_tables(int64_t t) const {
  const int64_t pos = batch_[t].pos;
  rope_table(c_, pos, false, s_.rope_cos.data() + t * half_rot, s_.rope_sin.data() + t * half_rot);
  if (c_.n_swa > 0)
    rope_table(c_, pos, true, s_.rope_cos.data() + swa_rope_off + t * half_rot,
               s_.rope_sin.data() + swa_rope_off + t * half_rot);
}

const float* ForwardPass::rope_cos(int il) const { return s_.rope_cos.data() + (c_.is_swa(il) ? swa_rope_off : 0); }
const float* ForwardPass::rope_sin(int il) const { return s_.rope_sin.data() + (c_.is_swa(il) ? swa_rope_off : 0); }

// Columns [c0, c1) (whole heads) of token t's Q, K or V row after W x: bias; for Q and K the
// per-head norm and the rotation; the query scale; K and V into the cache.
void ForwardPass::finish_qkv_row(const QkvPart& g, int il, int64_t t, int64_t c0, int64_t c1) const {
  float* row = g.y + t * g.dim + c0;
  const int64_t n_heads = (c1 - c0) / HD;
  const bool rotated = g.proj != Projection::kV;
  if (g.bias) ks_.flt.add(row, g.bias + c0, c1 - c0);
  ActivationTape::Block* tb = tape_ ? &tape_->rec(il) : nullptr;
  if (tb && rotated && c_.qk_norm)
    std::copy_n(row, c1 - c0, (g.proj == Projection::kQ ? tb->q_pre : tb->k_pre).data() + t * g.dim + c0);
  if (rotated && c_.qk_norm) {
    const float* nw = fdata(g.proj == Projection::kQ ? w_.layers[il].attn_q_norm : w_.layers[il].attn_k_norm);
    for (int64_t h = 0; h < n_heads; ++h) ks_.flt.rmsnorm(row + h * HD, nw, row + h * HD, HD, c_.norm_eps);
  }
  if (rotated)
    ks_.flt.rope(row, n_heads, HD, c_.n_rot, rope_cos(il) + t * half_rot, rope_sin(il) + t * half_rot, c_.rope_neox);
  if (g.proj == Projection::kQ && c_.q_prescale)
    for (int64_t i = 0; i < c1 - c0; ++i) row[i] *= q_scale;
  if (tb) {
    auto& dst = g.proj == Projection::kQ ? tb->q : g.proj == Projection::kK ? tb->k : tb->v;
    std::copy_n(row, c1 - c0, dst.data() + t * g.dim + c0);
  }
  if (g.proj == Projection::kQ) return;
  const BatchEntry& e = batch_[t];
  if (kv_.type() == DType::Q8_0) {
    kv_.store_q8_0(g.proj == Projection::kK, e.seq, il, e.pos, c0, c1, row);
  } else if (g.proj == Projection::kK) {
    uint16_t half[1024];
    for (int64_t cc = c0; cc < c1; cc += 1024) {
      const int64_t n = std::min<int64_t>(1024, c1 - cc);
      ks_.flt.to_f16(row + (cc - c0), half, n);
      kv_.store_k(e.seq, il, e.pos, cc, cc + n, half);
    }
  } else {
    ks_.flt.to_f16(row, kv_.v(e.seq, il, e.pos) + c0, c1 - c0);
  }
}

// Query heads [hq, hq + nq) of token t, which share KV head hk, over the token's sequence.
void ForwardPass::attend_heads(int il, int64_t t, int64_t hq, int64_t nq, int64_t hk, float* scores, int ith) const {
  const BatchEntry& e = batch_[t];
  float* out = s_.att.data() + t * q_dim + hq * HD;
  const float* qh = s_.q.data() + t * q_dim + hq * HD;
  const auto order = N >= 2 && !seam_.one_token_order ? kernels::AttnOrder::kBatch : kernels::AttnOrder::kSingle;
  // A local layer sees positions [pos - n_swa + 1, pos]. Whole blocks before the window are
  // skipped (their weights would be exactly 0, so every sum is unchanged and lanes keep their
  // positions); masked positions inside the first block are handled below.
  const int first = c_.is_swa(il) && e.pos >= c_.n_swa ? e.pos - c_.n_swa + 1 : 0;
  if (kv_.type() == DType::Q8_0) {
    const size_t head_off = row_size(DType::Q8_0, hk * HD);
    kernels::attend_q8_0(qh, static_cast<size_t>(HD), static_cast<int>(nq), kv_.k_row(e.seq, il, 0) + head_off,
                         kv_.v_row(e.seq, il, 0) + head_off, kv_.row_bytes(), HD, first, e.pos + 1, kq_scale,
                         c_.attn_softcap, scores, out, static_cast<size_t>(HD));
    return;
  }
  if (c_.attn_softcap > 0) {
    kernels::attend_softcap(qh, static_cast<size_t>(HD), static_cast<int>(nq), kv_.k_block(e.seq, il, 0) + hk * HD * KvCache::kPosBlock,
                            kv_.k_block_stride(), kv_.v(e.seq, il, 0) + hk * HD, static_cast<size_t>(kv_dim), HD, first,
                            e.pos + 1, kq_scale, c_.attn_softcap, scores, out, static_cast<size_t>(HD));
    return;
  }
  const int b0 = first / KvCache::kPosBlock, lead = first - b0 * KvCache::kPosBlock;
  const int n_kv = e.pos + 1 - b0 * KvCache::kPosBlock;
  const uint16_t* kt = kv_.k_block(e.seq, il, b0) + hk * HD * KvCache::kPosBlock;
  const uint16_t* vt = kv_.v(e.seq, il, b0 * KvCache::kPosBlock) + hk * HD;
  if (lead == 0) {
    ks_.flt.attend(qh, static_cast<size_t>(HD), static_cast<int>(nq), kt, kv_.k_block_stride(), vt,
                   static_cast<size_t>(kv_dim), HD, n_kv, kq_scale, scores, out, static_cast<size_t>(HD), order);
    return;
  }
  // Copy this KV head's window, then per query head give the masked keys the value
  // -65504 * sign(q) in every dimension: their scores are hugely negative, their softmax
  // weights exactly 0, as llama.cpp's -inf mask gives.
  const int64_t blk = HD * KvCache::kPosBlock;
  const int nb = (n_kv + KvCache::kPosBlock - 1) / KvCache::kPosBlock;
  uint16_t* win = s_.kwin.data() + static_cast<size_t>(ith) * s_.kwin_elems_;
  for (int b = 0; b < nb; ++b) std::copy_n(kt + static_cast<size_t>(b) * kv_.k_block_stride(), blk, win + b * blk);
  for (int64_t h = 0; h < nq; ++h) {
    const float* qq = qh + h * HD;
    for (int64_t d = 0; d < HD; ++d) {
      const uint16_t m = qq[d] > 0 ? 0xFBFF : 0x7BFF;  // -65504 : +65504
      for (int p = 0; p < lead; ++p) win[d * KvCache::kPosBlock + p] = m;
    }
    ks_.flt.attend(qq, static_cast<size_t>(HD), 1, win, static_cast<size_t>(blk), vt, static_cast<size_t>(kv_dim), HD,
                   n_kv, kq_scale, scores, out + h * HD, static_cast<size_t>(HD), order);
  }
}

// The gated activation, written over gate.
void ForwardPass::ffn_activation(float* gate, const float* up, int64_t n) const {
  if (c_.ffn_act == ModelConfig::Act::kGelu && tape_)
    kernels::geglu_exact(gate, up, gate, n);  // the function the backward pass differentiates
  else if (c_.ffn_act == ModelConfig::Act::kGelu)
    ks_.flt.geglu(gate, up, gate, n);
  else
    ks_.flt.swiglu(gate, up, gate, n);
}

// ---------------------------------------------------------------------------------------------
// Products

// Rows [r0, r1) of y = W x for n tokens, from x converted for W (xq) or, in a taped pass over
// weights that are not float32, from x itself, exactly in W's dequantized values (what the
// backward pass multiplies by).
void ForwardPass::product(const TensorView& w, const std::byte* xq, size_t xq_stride, const float* x, size_t x_stride,
                          float* y, size_t y_stride, int64_t n, int64_t r0, int64_t r1) const {
  if (tape_ && w.type != DType::F32)
    kernels::matmul_rows_exact(w, x, x_stride, y, y_stride, n, r0, r1);
  else
    kernels::matmul_rows(w, xq, xq_stride, y, y_stride, n, r0, r1);
}

std::byte* ForwardPass::slot(int i) const {
  return s_.xq.data() + static_cast<size_t>(i) * s_.max_tokens_ * s_.act_row_bytes_;
}

void ForwardPass::complete_own_input(int ith, int nth, const TensorView& w, const OwnInput& in, const float* x,
                                     int64_t width) {
  report(ith, {&w}, x, N, width);
  if (in.fused) return;
  auto [t0, t1] = kernels::split_range(N, ith, nth);
  for (int64_t t = t0; t < t1; ++t) kernels::ops(in.type).from_float(x + t * width, in.data + t * in.stride, width);
  pool_.barrier();
}

ForwardPass::OwnInput ForwardPass::wo_input(const LayerWeights& L) const {
  const DType t = vec_dot_type(L.wo);
  // Each attention item converts its own output heads when blocks do not straddle heads.
  return {t, row_size(t, q_dim), slot(ForwardScratch::kSlotAtt), HD % block_of(t) == 0};
}

ForwardPass::OwnInput ForwardPass::down_input(const LayerWeights& L) const {
  const DType t = vec_dot_type(L.ffn_down);
  // A thread converts its slice of the activation when every slice is whole blocks.
  return {t, row_size(t, FF), slot(ForwardScratch::kSlotHidden), FF % ffn_align(t) == 0};
}

// The norm of rows of x and their conversion for the weights `ws`. One row: every thread does
// it into its own buffer (no barrier). Several: rows split across threads, then a barrier.
// `rows` selects which rows of x (nullptr: all N); the result has one row per selected row.
ForwardPass::ProductInput ForwardPass::norm_convert(int ith, int nth, const float* norm_w, const float* norm_b,
                                                    std::initializer_list<const TensorView*> ws, const int64_t* rows,
                                                    int64_t n_rows) {
  ProductInput in;
  for (const TensorView* w : ws) in.add_type(vec_dot_type(*w));
  const float* x = s_.x.data();
  if (n_rows == 1) {
    std::byte* base = s_.local.data() + static_cast<size_t>(ith) * s_.local_bytes_;
    float* xn = reinterpret_cast<float*>(base);
    std::byte* conv = base + (static_cast<size_t>(E) * sizeof(float) + 63) / 64 * 64;
    const int64_t r = rows ? rows[0] : 0;
    norm_row(x + r * E, norm_w, norm_b, xn);
    for (int i = 0; i < in.n; ++i) {
      in.data[i] = conv + static_cast<size_t>(i) * s_.act_row_bytes_;
      in.stride[i] = row_size(in.type[i], E);
      kernels::ops(in.type[i]).from_float(xn, in.data[i], E);
    }
    in.x = xn;
    in.x_stride = static_cast<size_t>(E);
    report(ith, ws, xn, 1, E);
    return in;
  }
  for (int i = 0; i < in.n; ++i) {
    in.data[i] = slot(i);
    in.stride[i] = row_size(in.type[i], E);
  }
  auto [t0, t1] = kernels::split_range(n_rows, ith, nth);
  for (int64_t j = t0; j < t1; ++j) {
    const int64_t r = rows ? rows[j] : j;
    float* xn = s_.xn.data() + j * E;
    norm_row(x + r * E, norm_w, norm_b, xn);
    for (int i = 0; i < in.n; ++i) kernels::ops(in.type[i]).from_float(xn, in.data[i] + j * in.stride[i], E);
  }
  pool_.barrier();
  in.x = s_.xn.data();
  in.x_stride = static_cast<size_t>(E);
  report(ith, ws, s_.xn.data(), n_rows, E);
  return in;
}

// Rows [r0, r1) of y = W x for all N tokens, then y's rows added into the residual.
void ForwardPass::project_add(int il, Projection p, const TensorView& w, const OwnInput& in, const float* x,
                              int64_t n_in, int ith, int nth) {
  auto [r0, r1] = kernels::split_range_aligned(E, ith, nth, kRowAlign);
  if (r0 >= r1) return;
  product(w, in.data, in.stride, x, static_cast<size_t>(n_in), s_.tmp.data(), static_cast<size_t>(E), N, r0, r1);
  adapt(il, p, x, static_cast<size_t>(n_in), n_in, s_.tmp.data(), static_cast<size_t>(E), N, r0, r1);
  for (int64_t t = 0; t < N; ++t) ks_.flt.add(s_.x.data() + t * E + r0, s_.tmp.data() + t * E + r0, r1 - r0);
}

// Gemma: y = W x for all N tokens, RMSNorm of each token's whole row y with `post_w`, then
// added into the residual (the norm needs every row of y: one barrier between).
void ForwardPass::project_norm_add(int il, Projection p, const TensorView& w, const OwnInput& in, const float* x,
                                   int64_t n_in, const float* post_w, int ith, int nth) {
  auto [r0, r1] = kernels::split_range_aligned(E, ith, nth, kRowAlign);
  if (r0 < r1) {
    product(w, in.data, in.stride, x, static_cast<size_t>(n_in), s_.tmp.data(), static_cast<size_t>(E), N, r0, r1);
    adapt(il, p, x, static_cast<size_t>(n_in), n_in, s_.tmp.data(), static_cast<size_t>(E), N, r0, r1);
  }
  pool_.barrier();
  auto [t0, t1] = kernels::split_range(N, ith, nth);
  for (int64_t t = t0; t < t1; ++t) {
    float* y = s_.tmp.data() + t * E;
    if (tape_) std::copy_n(y, E, (p == Projection::kO ? tape_->rec(il).o : tape_->rec(il).down).data() + t * E);
    ks_.flt.rmsnorm(y, post_w, y, E, c_.norm_eps);
    ks_.flt.add(s_.x.data() + t * E, y, E);
  }
}

// ---------------------------------------------------------------------------------------------
// The seam

void ForwardPass::record(std::vector<float>& dst, const float* src, size_t src_stride, int64_t width, int ith,
                         int nth) const {
  auto [t0, t1] = kernels::split_range(N, ith, nth);
  for (int64_t t = t0; t < t1; ++t) std::copy_n(src + t * src_stride, width, dst.data() + t * width);
}

void ForwardPass::attend_taped(int il, int64_t t0, int64_t len, int64_t h) const {
  ActivationTape::Block& b = tape_->rec(il);
  const int64_t hk = h / group;
  thread_local std::vector<float> scratch;
  kernels::SeqAttention a{.n = len, .head_dim = HD, .scale = kq_scale, .softcap = c_.attn_softcap,
                          .window = c_.is_swa(il) ? c_.n_swa : 0,
                          .q = b.q.data() + t0 * q_dim + h * HD, .q_stride = static_cast<size_t>(q_dim),
                          .k = b.k.data() + t0 * kv_dim + hk * HD, .k_stride = static_cast<size_t>(kv_dim),
                          .v = b.v.data() + t0 * kv_dim + hk * HD, .v_stride = static_cast<size_t>(kv_dim),
                          .lse_stride = static_cast<size_t>(NH)};
  float* out = s_.att.data() + t0 * q_dim + h * HD;
  kernels::attention_forward_seq(a, out, static_cast<size_t>(q_dim), b.lse.data() + t0 * NH + h, scratch);
  for (int64_t t = 0; t < len; ++t) std::copy_n(out + t * q_dim, HD, b.att.data() + (t0 + t) * q_dim + h * HD);
}

// on_matmul_input: thread 0 reports a product's float input once it is complete (the other
// threads only read their converted copies meanwhile); views of one fused tensor once.
void ForwardPass::report(int ith, std::initializer_list<const TensorView*> ws, const float* x, int64_t rows,
                         int64_t cols) const {
  if (!seam_.on_matmul_input || ith != 0) return;
  const std::string* last = nullptr;
  for (const TensorView* w : ws) {
    if (last && *last == w->name) continue;
    (*seam_.on_matmul_input)(w->name, x, rows, cols);
    last = &w->name;
  }
}

}  // namespace edgelm
