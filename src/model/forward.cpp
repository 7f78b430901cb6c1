// Llama-family forward pass: embedding, per block RMSNorm -> GQA attention with RoPE ->
// residual -> RMSNorm -> SwiGLU -> residual, final norm, output projection.
// The Gemma 3 block (ModelConfig::gemma_block) differs in: embeddings times sqrt(n_embd);
// RMSNorm of every Q and K head before RoPE; queries scaled before attention; RMSNorm of the
// attention and feed-forward outputs before each residual add; GeGLU; local layers with a
// sliding window and their own RoPE table. Other families switch single pieces on
// (ModelConfig, set by the architecture table in model/arch.cpp): Q/K/V biases, LayerNorm with
// bias, partial rotary dimensions, pre-scaled queries, attention and final logit soft-capping.
//
// The whole pass is one thread-pool job: the threads walk the layers together and meet at a
// barrier only where a result of all of them is needed (five times per layer), instead of
// being woken for each matrix product. Each phase splits its work so that what follows needs
// no extra pass:
//   * Q, K and V rows are one row space split on head boundaries: a thread applies RoPE to
//     the heads it computed and writes its K/V columns straight into the F16 cache.
//   * attention items (token x KV-head group) quantize their own output heads for W_o.
//   * gate and up rows are split alike, so a thread applies SwiGLU to its slice of the hidden
//     layer and quantizes it for the down projection.
//   * the residual add follows each output projection on the rows the thread produced.
// For a single token (decode) the RMSNorm and activation quantization before a matrix product
// are repeated by every thread into its own buffer, which is cheaper than a barrier.
#include "model/forward.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "edgelm/error.hpp"
#include "kernels/kernels.hpp"
#include "kernels/simd.hpp"

namespace edgelm {
namespace {

using kernels::ThreadPool;

constexpr int kInputSlots = 3;              // distinct activation types of one input
constexpr int kSlotAtt = kInputSlots;       // attention output, converted for W_o
constexpr int kSlotHidden = kInputSlots + 1;  // SwiGLU output, converted for W_down
constexpr int kSlots = kInputSlots + 2;
constexpr int64_t kRowAlign = 16;           // matrix rows handed to a thread: whole SIMD tiles

DType vec_dot_type(const TensorView& w) { return kernels::ops(w.type).vec_dot_type; }

int64_t block_of(DType t) { return dtype_traits(t).block_size; }

// Converted copies of one activation matrix, one per distinct vec_dot_type of the weights that
// read it.
struct Converted {
  int n = 0;
  DType type[kInputSlots]{};
  std::byte* data[kInputSlots]{};
  size_t stride[kInputSlots]{};

  void add_type(DType t) {
    for (int i = 0; i < n; ++i)
      if (type[i] == t) return;
    type[n++] = t;
  }
  int slot_of(DType t) const {
    for (int i = 0; i < n; ++i)
      if (type[i] == t) return i;
    return 0;  // unreachable: every weight's type was added
  }
};

}  // namespace

ForwardScratch::ForwardScratch(const ModelConfig& c, int max_tokens, int n_ctx, int n_threads)
    : max_tokens_(max_tokens), n_ctx_(n_ctx), n_threads_(std::max(1, n_threads)) {
  const size_t T = static_cast<size_t>(max_tokens);
  const size_t E = static_cast<size_t>(c.n_embd);
  const size_t q_dim = static_cast<size_t>(c.n_head) * c.head_dim;
  const size_t kv_dim = static_cast<size_t>(c.n_head_kv) * c.head_dim;
  const size_t FF = static_cast<size_t>(c.n_ff);
  x.allocate(T * E);
  xn.allocate(T * E);
  q.allocate(T * q_dim);
  k.allocate(T * kv_dim);
  v.allocate(T * kv_dim);
  att.allocate(T * q_dim);
  tmp.allocate(T * E);
  gate.allocate(T * FF);
  up.allocate(T * FF);  // the FFN activation is written over gate
  const size_t half_rot = static_cast<size_t>(std::max(1, c.n_rot / 2));
  const size_t n_tables = c.n_swa > 0 ? 2 : 1;
  rope_cos.allocate(n_tables * T * half_rot);
  rope_sin.allocate(n_tables * T * half_rot);
  if (c.n_swa > 0) {
    // A window's positions span at most n_swa / kPosBlock + 2 blocks.
    kwin_elems_ = static_cast<size_t>(std::min(c.n_swa, n_ctx) / KvCache::kPosBlock + 2) * KvCache::kPosBlock *
                  static_cast<size_t>(c.head_dim);
    kwin.allocate(static_cast<size_t>(n_threads_) * kwin_elems_);
  }
  const size_t group = static_cast<size_t>(std::max(1, c.n_head / std::max(1, c.n_head_kv)));
  const size_t ctx_pad = static_cast<size_t>((n_ctx + KvCache::kPosBlock - 1) / KvCache::kPosBlock * KvCache::kPosBlock);
  scores.allocate(static_cast<size_t>(n_threads_) * group * ctx_pad);
  // Widest converted row: F32 activations (4 bytes per element) of the widest input.
  const size_t widest = std::max({E, q_dim, FF});
  act_row_bytes_ = (widest * sizeof(float) + 63) / 64 * 64;
  xq.allocate(kSlots * T * act_row_bytes_);
  local_bytes_ = (E * sizeof(float) + 63) / 64 * 64 + kInputSlots * act_row_bytes_;
  local.allocate(static_cast<size_t>(n_threads_) * local_bytes_);
}

void forward(const Model& model, std::span<const BatchEntry> batch, KvCache& kv,
             ForwardScratch& s, ThreadPool& pool, float* logits, float* hidden) {
  const ModelConfig& c = model.config();
  const ModelWeights& W = model.weights();
  const int64_t N = static_cast<int64_t>(batch.size());
  if (N == 0) return;
  if (N > s.max_tokens()) throw Error("internal: batch larger than the session's scratch");
  if (pool.size() > s.n_threads_) throw Error("internal: thread pool larger than the session's scratch");
  const int64_t E = c.n_embd, HD = c.head_dim, NH = c.n_head, NKV = c.n_head_kv;
  const int64_t q_dim = NH * HD, kv_dim = NKV * HD, FF = c.n_ff, V = c.n_vocab;
  const int64_t group = NH / NKV;  // query heads served by one KV head
  const int64_t half_rot = std::max<int64_t>(1, c.n_rot / 2);
  // Per-family switches (ModelConfig): gemma3 has all of the Gemma ones.
  // Gemma and Phi-3 scale the rotated queries (as llama.cpp does, before attention) and attend
  // with scale 1; the Llama block scales the scores by 1 / sqrt(head_dim).
  const float q_scale = c.attn_scale > 0 ? c.attn_scale : 1.0f / std::sqrt(static_cast<float>(HD));
  const float kq_scale = c.q_prescale ? 1.0f : 1.0f / std::sqrt(static_cast<float>(HD));
  const float embd_scale = std::sqrt(static_cast<float>(E));
  const bool gelu = c.ffn_act == ModelConfig::Act::kGelu;
  auto fdata = [](const TensorView& t) { return reinterpret_cast<const float*>(t.data); };
  auto angles = [&](int64_t pos, float base, float scale, float* cs, float* sn) {
    if (c.rope_yarn)
      kernels::yarn_angles(c.n_rot, pos, base, scale, c.yarn_orig_ctx, c.yarn_attn_factor, cs, sn);
    else
      kernels::simd::rope_angles(c.n_rot, pos, base, scale, cs, sn);
  };
  const size_t swa_rope_off = static_cast<size_t>(s.max_tokens_) * static_cast<size_t>(half_rot);
  const auto& ks = kernels::simd::best();
  const bool use_layer_norm = c.norm == ModelConfig::Norm::kLayer;
  // The block and output norms: RMSNorm (weights only) or LayerNorm (weights and bias).
  auto norm_row = [&](const float* x, const float* w, const float* b, float* out) {
    if (use_layer_norm)
      kernels::layer_norm(x, w, b, out, E, c.norm_eps);
    else
      ks.flt.rmsnorm(x, w, out, E, c.norm_eps);
  };
  static_assert(KvCache::kPosBlock == kernels::simd::kKeyBlock, "attention reads the cache's key blocks");

  std::vector<int64_t> out_rows;  // batch entries that want logits, in order
  for (int64_t t = 0; t < N; ++t) {
    const auto& e = batch[t];
    if (e.token < 0 || e.token >= c.n_vocab)
      throw Error("token id " + std::to_string(e.token) + " is outside the vocabulary");
    if (e.pos < 0 || e.pos >= kv.n_ctx() || e.seq < 0 || e.seq >= kv.n_seq())
      throw Error("internal: batch position outside the KV cache");
    if (e.logits) out_rows.push_back(t);
  }
  if (c.n_swa > 0 && s.kwin_elems_ == 0) throw Error("internal: scratch made for a model without sliding windows");
  for (const auto& L : W.layers)
    if ((c.qk_norm && (!L.attn_q_norm.data || !L.attn_k_norm.data)) ||
        (c.post_norms && (!L.attn_post_norm.data || !L.ffn_post_norm.data)))
      throw Error("internal: Gemma block without its norm weights");
  for (const auto& L : W.layers) {
    for (const TensorView* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.ffn_gate, &L.ffn_up, &L.ffn_down})
      if (!kernels::can_compute(w->type))
        throw Error("tensor " + w->name + " has type " + std::string(dtype_name(w->type)) + ", which edgelm cannot compute with");
  }
  for (const TensorView* w : {&W.token_embd, &W.output})
    if (!kernels::can_compute(w->type))
      throw Error("tensor " + w->name + " has type " + std::string(dtype_name(w->type)) + ", which edgelm cannot compute with");
  // Nothing below may throw: an exception inside the job would leave the other threads waiting
  // at a barrier.
  if (HD > 512) throw Error("head dimension " + std::to_string(HD) + " is larger than the 512 edgelm supports");
  const int64_t n_out = static_cast<int64_t>(out_rows.size());

  auto slot_ptr = [&](int slot) { return s.xq.data() + static_cast<size_t>(slot) * s.max_tokens_ * s.act_row_bytes_; };

  // RMSNorm of rows `src` and conversion for the weights `ws`. One token: every thread does it
  // into its own buffer (no barrier). Several: tokens split across threads, then a barrier.
  // `rows` selects which rows of src (nullptr: all N); the result has one row per selected row.
  // on_matmul_input: thread 0 reports a product's float input once it is complete (the other
  // threads only read their converted copies meanwhile); views of one fused tensor once.
  auto report = [&](int ith, std::initializer_list<const TensorView*> ws, const float* x, int64_t rows,
                    int64_t cols) {
    if (!s.on_matmul_input || ith != 0) return;
    const std::string* last = nullptr;
    for (const TensorView* w : ws) {
      if (last && *last == w->name) continue;
      (*s.on_matmul_input)(w->name, x, rows, cols);
      last = &w->name;
    }
  };

  auto norm_convert = [&](int ith, int nth, const float* src, const float* norm_w, const float* norm_b,
                          std::initializer_list<const TensorView*> ws, const int64_t* rows,
                          int64_t n_rows) {
    Converted cv;
    for (const TensorView* w : ws) cv.add_type(vec_dot_type(*w));
    if (n_rows == 1) {
      std::byte* base = s.local.data() + static_cast<size_t>(ith) * s.local_bytes_;
      float* xn = reinterpret_cast<float*>(base);
      std::byte* conv = base + (static_cast<size_t>(E) * sizeof(float) + 63) / 64 * 64;
      const int64_t r = rows ? rows[0] : 0;
      norm_row(src + r * E, norm_w, norm_b, xn);
      for (int i = 0; i < cv.n; ++i) {
        cv.data[i] = conv + static_cast<size_t>(i) * s.act_row_bytes_;
        cv.stride[i] = row_size(cv.type[i], E);
        kernels::ops(cv.type[i]).from_float(xn, cv.data[i], E);
      }
      report(ith, ws, xn, 1, E);
      return cv;
    }
    for (int i = 0; i < cv.n; ++i) {
      cv.data[i] = slot_ptr(i);
      cv.stride[i] = row_size(cv.type[i], E);
    }
    auto [t0, t1] = kernels::split_range(n_rows, ith, nth);
    for (int64_t j = t0; j < t1; ++j) {
      const int64_t r = rows ? rows[j] : j;
      float* xn = s.xn.data() + j * E;
      norm_row(src + r * E, norm_w, norm_b, xn);
      for (int i = 0; i < cv.n; ++i) kernels::ops(cv.type[i]).from_float(xn, cv.data[i] + j * cv.stride[i], E);
    }
    pool.barrier();
    report(ith, ws, s.xn.data(), n_rows, E);
    return cv;
  };

  // Rows [r0, r1) of y = W x for all N tokens, then y's rows added into the residual x.
  auto project_add = [&](const TensorView& w, const std::byte* xq, size_t stride, int ith, int nth) {
    auto [r0, r1] = kernels::split_range_aligned(E, ith, nth, kRowAlign);
    if (r0 >= r1) return;
    kernels::matmul_rows(w, xq, stride, s.tmp.data(), static_cast<size_t>(E), N, r0, r1);
    for (int64_t t = 0; t < N; ++t) ks.flt.add(s.x.data() + t * E + r0, s.tmp.data() + t * E + r0, r1 - r0);
  };

  // Gemma: y = W x for all N tokens, RMSNorm of each token's whole row y with `post_w`, then
  // added into the residual x (the norm needs every row of y: one barrier between).
  auto project_norm_add = [&](const TensorView& w, const std::byte* xq, size_t stride, const float* post_w, int ith,
                              int nth) {
    auto [r0, r1] = kernels::split_range_aligned(E, ith, nth, kRowAlign);
    if (r0 < r1) kernels::matmul_rows(w, xq, stride, s.tmp.data(), static_cast<size_t>(E), N, r0, r1);
    pool.barrier();
    auto [t0, t1] = kernels::split_range(N, ith, nth);
    for (int64_t t = t0; t < t1; ++t) {
      float* y = s.tmp.data() + t * E;
      ks.flt.rmsnorm(y, post_w, y, E, c.norm_eps);
      ks.flt.add(s.x.data() + t * E, y, E);
    }
  };

  pool.run([&](int ith, int nth) {
    // --- embeddings and each token's rotation table ---
    {
      auto [t0, t1] = kernels::split_range(N, ith, nth);
      for (int64_t t = t0; t < t1; ++t) {
        float* xt = s.x.data() + t * E;
        kernels::dequantize_row(W.token_embd.type, W.token_embd.row(batch[t].token), xt, E);
        if (c.scale_embd)
          for (int64_t i = 0; i < E; ++i) xt[i] *= embd_scale;
        angles(batch[t].pos, c.rope_freq_base, c.rope_freq_scale, s.rope_cos.data() + t * half_rot,
               s.rope_sin.data() + t * half_rot);
        if (c.n_swa > 0)
          angles(batch[t].pos, c.rope_freq_base_swa, c.rope_freq_scale_swa, s.rope_cos.data() + swa_rope_off + t * half_rot,
                 s.rope_sin.data() + swa_rope_off + t * half_rot);
      }
      pool.barrier();
    }
    const size_t ctx_pad = static_cast<size_t>((s.n_ctx_ + KvCache::kPosBlock - 1) / KvCache::kPosBlock * KvCache::kPosBlock);
    float* scores = s.scores.data() + static_cast<size_t>(ith) * group * ctx_pad;

    // The cache decides how many blocks run (SessionOptions::n_layers: an early exit).
    for (int il = 0; il < kv.n_layer(); ++il) {
      const LayerWeights& L = W.layers[il];
      const float* attn_norm = reinterpret_cast<const float*>(L.attn_norm.data);
      const float* ffn_norm = reinterpret_cast<const float*>(L.ffn_norm.data);
      const bool local = c.is_swa(il);
      const float* rope_cos = s.rope_cos.data() + (local ? swa_rope_off : 0);
      const float* rope_sin = s.rope_sin.data() + (local ? swa_rope_off : 0);

      // --- Q, K, V: one row space split on head boundaries; RoPE and the cache write follow ---
      {
        const Converted in = norm_convert(ith, nth, s.x.data(), attn_norm, fdata(L.attn_norm_b), {&L.wq, &L.wk, &L.wv}, nullptr, N);
        const int64_t heads = NH + 2 * NKV;
        auto [h0, h1] = kernels::split_range(heads, ith, nth);
        struct Seg {
          const TensorView* w;
          float* y;
          int64_t dim, first;  // output width, first head index in the joint space
          const float* bias;   // optional (qwen2, stablelm)
        } segs[3] = {{&L.wq, s.q.data(), q_dim, 0, fdata(L.bq)},
                     {&L.wk, s.k.data(), kv_dim, NH, fdata(L.bk)},
                     {&L.wv, s.v.data(), kv_dim, NH + NKV, fdata(L.bv)}};
        for (int si = 0; si < 3; ++si) {
          const Seg& g = segs[si];
          const int64_t lo = std::max(h0, g.first), hi = std::min(h1, g.first + g.dim / HD);
          if (lo >= hi) continue;
          const int slot = in.slot_of(vec_dot_type(*g.w));
          const int64_t c0 = (lo - g.first) * HD, c1 = (hi - g.first) * HD;
          kernels::matmul_rows(*g.w, in.data[slot], in.stride[slot], g.y, static_cast<size_t>(g.dim), N, c0, c1);
          for (int64_t t = 0; t < N; ++t) {
            float* row = g.y + t * g.dim + c0;
            if (g.bias) ks.flt.add(row, g.bias + c0, c1 - c0);
            if (si < 2 && c.qk_norm) {  // RMSNorm of each head before the rotation
              const float* nw = reinterpret_cast<const float*>((si == 0 ? L.attn_q_norm : L.attn_k_norm).data);
              for (int64_t h = 0; h < hi - lo; ++h) ks.flt.rmsnorm(row + h * HD, nw, row + h * HD, HD, c.norm_eps);
            }
            if (si < 2)
              ks.flt.rope(row, hi - lo, HD, c.n_rot, rope_cos + t * half_rot, rope_sin + t * half_rot, c.rope_neox);
            if (si == 0 && c.q_prescale)
              for (int64_t i = 0; i < c1 - c0; ++i) row[i] *= q_scale;
            const BatchEntry& e = batch[t];
            if (si > 0 && kv.type() == DType::Q8_0) {
              kv.store_q8_0(si == 1, e.seq, il, e.pos, c0, c1, row);
            } else if (si == 1) {
              uint16_t half[1024];
              for (int64_t cc = c0; cc < c1; cc += 1024) {
                const int64_t n = std::min<int64_t>(1024, c1 - cc);
                ks.flt.to_f16(row + (cc - c0), half, n);
                kv.store_k(e.seq, il, e.pos, cc, cc + n, half);
              }
            } else if (si == 2) {
              ks.flt.to_f16(row, kv.v(e.seq, il, e.pos) + c0, c1 - c0);
            }
          }
        }
        pool.barrier();
      }

      // --- attention: items of (token, KV head) or, for few tokens, (token, query head) ---
      {
        const DType vo = vec_dot_type(L.wo);
        const size_t so = row_size(vo, q_dim);
        std::byte* xo = slot_ptr(kSlotAtt);
        // Each item converts its own output heads for W_o when blocks do not straddle heads.
        const bool fused = HD % block_of(vo) == 0;
        const bool grouped = N * NKV >= 2 * nth;
        const int64_t per_tok = grouped ? NKV : NH;
        // Items are dealt out in turn, not in contiguous ranges: under the causal mask a
        // token's attention costs in proportion to its position, and contiguous ranges gave the
        // last thread the longest contexts (with 2 threads on a 512-token prompt, 3/4 of the work).
        for (int64_t item = ith; item < N * per_tok; item += nth) {
          const int64_t t = item / per_tok, u = item % per_tok;
          const int64_t hq = grouped ? u * group : u, nq = grouped ? group : 1, hk = hq / group;
          const BatchEntry& e = batch[t];
          float* out = s.att.data() + t * q_dim + hq * HD;
          const float* qh = s.q.data() + t * q_dim + hq * HD;
          const auto order = N >= 2 ? kernels::AttnOrder::kBatch : kernels::AttnOrder::kSingle;
          // A local layer sees positions [pos - n_swa + 1, pos]. Whole blocks before the window
          // are skipped (their weights would be exactly 0, so every sum is unchanged and lanes
          // keep their positions); masked positions inside the first block are handled below.
          const int first = local && e.pos >= c.n_swa ? e.pos - c.n_swa + 1 : 0;
          if (kv.type() == DType::Q8_0) {
            const size_t head_off = row_size(DType::Q8_0, hk * HD);
            kernels::attend_q8_0(qh, static_cast<size_t>(HD), static_cast<int>(nq), kv.k_row(e.seq, il, 0) + head_off,
                                 kv.v_row(e.seq, il, 0) + head_off, kv.row_bytes(), HD, first, e.pos + 1, kq_scale,
                                 c.attn_softcap, scores, out, static_cast<size_t>(HD));
            if (fused)
              kernels::ops(vo).from_float(out, xo + t * so + row_size(vo, hq * HD), nq * HD);
            continue;
          }
          const int b0 = first / KvCache::kPosBlock, lead = first - b0 * KvCache::kPosBlock;
          const int n_kv = e.pos + 1 - b0 * KvCache::kPosBlock;
          const uint16_t* kt = kv.k_block(e.seq, il, b0) + hk * HD * KvCache::kPosBlock;
          const uint16_t* vt = kv.v(e.seq, il, b0 * KvCache::kPosBlock) + hk * HD;
          if (c.attn_softcap > 0) {
            kernels::attend_softcap(qh, static_cast<size_t>(HD), static_cast<int>(nq),
                                    kv.k_block(e.seq, il, 0) + hk * HD * KvCache::kPosBlock, kv.k_block_stride(),
                                    kv.v(e.seq, il, 0) + hk * HD, static_cast<size_t>(kv_dim), HD, first, e.pos + 1,
                                    kq_scale, c.attn_softcap, scores, out, static_cast<size_t>(HD));
          } else if (lead == 0) {
            ks.flt.attend(qh, static_cast<size_t>(HD), static_cast<int>(nq), kt, kv.k_block_stride(), vt,
                          static_cast<size_t>(kv_dim), HD, n_kv, kq_scale, scores, out, static_cast<size_t>(HD), order);
          } else {
            // Copy this KV head's window, then per query head give the masked keys the value
            // -65504 * sign(q) in every dimension: their scores are hugely negative, their
            // softmax weights exactly 0, as llama.cpp's -inf mask gives.
            const int64_t blk = HD * KvCache::kPosBlock;
            const int nb = (n_kv + KvCache::kPosBlock - 1) / KvCache::kPosBlock;
            uint16_t* win = s.kwin.data() + static_cast<size_t>(ith) * s.kwin_elems_;
            for (int b = 0; b < nb; ++b)
              std::copy_n(kt + static_cast<size_t>(b) * kv.k_block_stride(), blk, win + b * blk);
            for (int64_t h = 0; h < nq; ++h) {
              const float* qq = qh + h * HD;
              for (int64_t d = 0; d < HD; ++d) {
                const uint16_t m = qq[d] > 0 ? 0xFBFF : 0x7BFF;  // -65504 : +65504
                for (int p = 0; p < lead; ++p) win[d * KvCache::kPosBlock + p] = m;
              }
              ks.flt.attend(qq, static_cast<size_t>(HD), 1, win, static_cast<size_t>(blk), vt,
                            static_cast<size_t>(kv_dim), HD, n_kv, kq_scale, scores, out + h * HD,
                            static_cast<size_t>(HD), order);
            }
          }
          if (fused)
            kernels::ops(vo).from_float(out, xo + t * so + row_size(vo, hq * HD), nq * HD);
        }
        pool.barrier();
        report(ith, {&L.wo}, s.att.data(), N, q_dim);
        if (!fused) {
          auto [t0, t1] = kernels::split_range(N, ith, nth);
          for (int64_t t = t0; t < t1; ++t) kernels::ops(vo).from_float(s.att.data() + t * q_dim, xo + t * so, q_dim);
          pool.barrier();
        }
        if (c.post_norms)
          project_norm_add(L.wo, xo, so, reinterpret_cast<const float*>(L.attn_post_norm.data), ith, nth);
        else
          project_add(L.wo, xo, so, ith, nth);
        pool.barrier();
      }

      // --- feed-forward: gate and up split alike, SwiGLU and conversion on the same slice ---
      {
        const Converted in = norm_convert(ith, nth, s.x.data(), ffn_norm, fdata(L.ffn_norm_b), {&L.ffn_gate, &L.ffn_up}, nullptr, N);
        const DType vd = vec_dot_type(L.ffn_down);
        const size_t sd = row_size(vd, FF);
        std::byte* xd = slot_ptr(kSlotHidden);
        const int64_t align = std::max<int64_t>(kRowAlign, block_of(vd));
        const bool fused = FF % align == 0;
        auto [f0, f1] = kernels::split_range_aligned(FF, ith, nth, align);
        if (f0 < f1) {
          const int sg = in.slot_of(vec_dot_type(L.ffn_gate)), su = in.slot_of(vec_dot_type(L.ffn_up));
          kernels::matmul_rows(L.ffn_gate, in.data[sg], in.stride[sg], s.gate.data(), static_cast<size_t>(FF), N, f0, f1);
          kernels::matmul_rows(L.ffn_up, in.data[su], in.stride[su], s.up.data(), static_cast<size_t>(FF), N, f0, f1);
          for (int64_t t = 0; t < N; ++t) {
            float* h = s.gate.data() + t * FF + f0;  // the activation overwrites gate, element by element
            if (gelu)
              kernels::geglu(h, s.up.data() + t * FF + f0, h, f1 - f0);
            else
              ks.flt.swiglu(h, s.up.data() + t * FF + f0, h, f1 - f0);
            if (fused) kernels::ops(vd).from_float(h, xd + t * sd + row_size(vd, f0), f1 - f0);
          }
        }
        pool.barrier();
        report(ith, {&L.ffn_down}, s.gate.data(), N, FF);
        if (!fused) {
          auto [t0, t1] = kernels::split_range(N, ith, nth);
          for (int64_t t = t0; t < t1; ++t) kernels::ops(vd).from_float(s.gate.data() + t * FF, xd + t * sd, FF);
          pool.barrier();
        }
        if (c.post_norms)
          project_norm_add(L.ffn_down, xd, sd, reinterpret_cast<const float*>(L.ffn_post_norm.data), ith, nth);
        else
          project_add(L.ffn_down, xd, sd, ith, nth);
        pool.barrier();
      }
    }

    // --- final hidden states (features for pooling and classifiers) ---
    if (hidden && n_out > 0) {
      const float* onorm = reinterpret_cast<const float*>(W.output_norm.data);
      auto [j0, j1] = kernels::split_range(n_out, ith, nth);
      for (int64_t j = j0; j < j1; ++j) norm_row(s.x.data() + out_rows[j] * E, onorm, fdata(W.output_norm_b), hidden + j * E);
    }
    // --- final norm and output projection, only for the entries that want logits ---
    if (logits && n_out > 0) {
      const Converted in = norm_convert(ith, nth, s.x.data(), reinterpret_cast<const float*>(W.output_norm.data),
                                        fdata(W.output_norm_b), {&W.output}, out_rows.data(), n_out);
      auto [r0, r1] = kernels::split_range_aligned(V, ith, nth, kRowAlign);
      if (r0 < r1) kernels::matmul_rows(W.output, in.data[0], in.stride[0], logits, static_cast<size_t>(V), n_out, r0, r1);
      if (c.final_softcap > 0 && r0 < r1) {  // Gemma 2: logits -> c * tanh(logits / c)
        const float cap = c.final_softcap, inv_cap = 1.0f / cap;
        for (int64_t j = 0; j < n_out; ++j)
          for (int64_t r = r0; r < r1; ++r) logits[j * V + r] = std::tanh(logits[j * V + r] * inv_cap) * cap;
      }
    }
  });
}

}  // namespace edgelm
