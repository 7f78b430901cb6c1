// The steps of one forward() call. A step reads like a transformer layer in a paper: a short
// sequence of named operations (norm, products, rotation, attention, residual), each a row-level
// kernel from kernels/. How the rows are shared out between threads is written beside the
// math, not inside it: every step is called by each thread of the one thread-pool job that runs
// the whole pass, takes its share, and ends at a barrier only where the next step reads results
// of other threads (five times per layer), instead of waking the threads for each product.
// Each step splits its work so that what follows needs no extra pass:
//   * Q, K and V rows are one row space split on head boundaries: a thread applies RoPE to the
//     heads it computed and writes its K/V columns straight into the cache.
//   * attention items (token x KV-head group) convert their own output heads for W_o.
//   * gate and up rows are split alike, so a thread applies the activation to its slice of the
//     hidden layer and converts it for the down projection.
//   * the residual add follows each output projection on the rows the thread produced.
// For a single token (decode) the norm and activation conversion before a product are
// repeated by every thread into its own buffer, which is cheaper than a barrier.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <vector>

#include "edgelm/model.hpp"
#include "kernels/simd.hpp"
#include "kernels/thread_pool.hpp"
#include "model/forward.hpp"
#include "model/kv_cache.hpp"

namespace edgelm {

class ForwardPass {
 public:
  // Checks the batch against the model, cache and scratch (throws edgelm::Error); nothing
  // after the constructor may throw, since an exception inside the job would leave the other
  // threads waiting at a barrier.
  ForwardPass(const ModelConfig& config, const ModelWeights& weights, std::span<const BatchEntry> batch, KvCache& kv,
              ForwardScratch& scratch, kernels::ThreadPool& pool, float* logits, float* hidden);

  // Blocks to run: the cache decides (SessionOptions::n_layers is an early exit).
  int n_layer() const { return seam_.end_block > 0 ? std::min(seam_.end_block, kv_.n_layer()) : kv_.n_layer(); }
  // The first block run (ForwardSeam::first_block; the residual stream enters there).
  int first_block() const { return seam_.first_block; }

  // The steps, in order; each is called by every thread ith of nth.
  // Token embeddings (times sqrt(n_embd) for Gemma) and each token's RoPE angle tables.
  void embed(int ith, int nth);
  // Norm, Q/K/V products, biases, per-head Q/K norm, RoPE, query scale, K/V into the cache.
  void attention_input(int il, int ith, int nth);
  // Softmax attention of every (token, head group) item over its sequence's cache.
  void attention(int il, int ith, int nth);
  // W_o and the residual add (Gemma: RMSNorm of W_o's output in between).
  void attention_output(int il, int ith, int nth);
  // Norm, gate and up, SwiGLU or GeGLU, W_down and the residual add (or post-norm and add).
  void feed_forward(int il, int ith, int nth);
  // The residual stream after the block, to ForwardSeam::on_block_output.
  void block_output(int il, int ith);
  // Final norm: hidden states and/or output projection, final soft-cap.
  void output(int ith, int nth);

 private:
  static constexpr int kInputSlots = ForwardScratch::kInputSlots;

  // One activation matrix ready for its products: the float rows, and converted copies of
  // them, one per distinct vec_dot_type of the weights that read it.
  struct ProductInput {
    const float* x = nullptr;
    size_t x_stride = 0;
    int n = 0;
    DType type[kInputSlots]{};
    std::byte* data[kInputSlots]{};
    size_t stride[kInputSlots]{};
    void add_type(DType t);
    int slot_of(DType t) const;
  };
  // The converted input of W_o (attention output) or W_down (FFN activation), and whether
  // the threads that produce its rows convert them on the spot ("fused") or a pass after a
  // barrier does.
  struct OwnInput {
    DType type;
    size_t stride;
    std::byte* data;
    bool fused;
  };
  // One of the Q/K/V products in their joint row space of heads.
  struct QkvPart {
    Projection proj;
    const TensorView* w;
    float* y;
    int64_t dim, first;  // output width, first head index in the joint space
    const float* bias;   // optional (qwen2, stablelm)
  };

  // --- row-level operations ---
  void norm_row(const float* x, const float* w, const float* b, float* out) const;
  void embed_token(int64_t t) const;
  void rotation_tables(int64_t t) const;
  void finish_qkv_row(const QkvPart& g, int il, int64_t t, int64_t c0, int64_t c1) const;
  void attend_heads(int il, int64_t t, int64_t hq, int64_t nq, int64_t hk, float* scores, int ith) const;
  void ffn_activation(float* gate, const float* up, int64_t n) const;

  // --- products with their share of rows ---
  void product(const TensorView& w, const std::byte* xq, size_t xq_stride, const float* x, size_t x_stride, float* y,
               size_t y_stride, int64_t n, int64_t r0, int64_t r1) const;
  ProductInput norm_convert(int ith, int nth, const float* norm_w, const float* norm_b,
                            std::initializer_list<const TensorView*> ws, const int64_t* rows, int64_t n_rows);
  void project_add(int il, Projection p, const TensorView& w, const OwnInput& in, const float* x, int64_t n_in,
                   int ith, int nth);
  void project_norm_add(int il, Projection p, const TensorView& w, const OwnInput& in, const float* x, int64_t n_in,
                        const float* post_w, int ith, int nth);
  OwnInput wo_input(const LayerWeights& L) const;
  OwnInput down_input(const LayerWeights& L) const;
  // After the barrier that completes x (N rows of `width` floats), the input of `w`: reported
  // to the seam, and converted by a pass of its own when its producers could not convert it.
  void complete_own_input(int ith, int nth, const TensorView& w, const OwnInput& in, const float* x, int64_t width);

  // --- the seam ---
  // Rows [t0, t1) of this thread's token share, `width` floats each, copied onto the tape.
  void record(std::vector<float>& dst, const float* src, size_t src_stride, int64_t width, int ith, int nth) const;
  // Exact float32 attention of query head h over the taped sequence of batch rows [t0, t0 + len).
  void attend_taped(int il, int64_t t0, int64_t len, int64_t h) const;
  void report(int ith, std::initializer_list<const TensorView*> ws, const float* x, int64_t rows, int64_t cols) const;
  void adapt(int il, Projection p, const float* x, size_t x_stride, int64_t n_in, float* y, size_t y_stride,
             int64_t n_tok, int64_t r0, int64_t r1) const {
    if (seam_.adapter) (*seam_.adapter)(ProductRows{il, p, x, x_stride, n_in, y, y_stride, n_tok, r0, r1});
  }

  std::byte* slot(int i) const;
  const float* rope_cos(int il) const;
  const float* rope_sin(int il) const;

  const ModelConfig& c_;
  const ModelWeights& w_;
  std::span<const BatchEntry> batch_;
  KvCache& kv_;
  ForwardScratch& s_;
  const ForwardSeam& seam_;
  ActivationTape* tape_;
  kernels::ThreadPool& pool_;
  float* logits_;
  float* hidden_;
  const kernels::simd::KernelSet& ks_;
  // Sizes: tokens, embedding, head, query heads, KV heads, hidden layer, vocabulary.
  int64_t N, E, HD, NH, NKV, q_dim, kv_dim, FF, V;
  int64_t group;     // query heads served by one KV head
  int64_t half_rot;  // entries of a token's RoPE table
  size_t ctx_pad;    // positions of a thread's attention scores (n_ctx rounded up to a key block)
  size_t swa_rope_off;
  float q_scale, kq_scale, embd_scale;
  std::vector<int64_t> out_rows_;  // batch entries that want logits, in order
  std::vector<int64_t> seq_start_;  // taped batch: the first row of each sequence, then N
};

}  // namespace edgelm
