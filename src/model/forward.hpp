// The transformer forward pass over a batch of tokens that may belong to different sequences,
// and the seam through which a caller asks it for more than logits.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "edgelm/model.hpp"
#include "kernels/thread_pool.hpp"
#include "model/kv_cache.hpp"

namespace edgelm {

struct BatchEntry {
  int32_t token;
  int32_t pos;   // position within its sequence; K/V are written there
  int32_t seq;
  bool logits;   // produce the next-token logits after this entry
};

// The matrix products of a block, and the output head.
enum class Projection { kQ, kK, kV, kO, kGate, kUp, kDown, kOutput };

// One thread's share of a matrix product y = W x, handed to ForwardSeam::adapter between the
// product and the first use of y: output rows [r0, r1) of every token, which the calling
// thread has just computed and alone may touch until it returns.
struct ProductRows {
  int layer;          // block index; -1 for the output head
  Projection proj;
  const float* x;     // token t's float input at x + t * x_stride (n_in floats; read only)
  size_t x_stride;
  int64_t n_in;
  float* y;           // token t's output at y + t * y_stride; rows r in [r0, r1) may be added to
  size_t y_stride;
  int64_t n_tok, r0, r1;
};

using AdapterHook = std::function<void(const ProductRows&)>;

// The activations a training run's backward pass reads, recorded by forward() in float32,
// one row per batch entry. A taped batch holds whole sequences: each sequence's entries are
// consecutive, at positions 0, 1, ...; its attention then reads the tape's own float32 keys
// and values (exact softmax) rather than the cache's 16- or 8-bit copies, so that the
// backward pass differentiates exactly the function that was computed.
struct ActivationTape {
  struct Block {
    std::vector<float> x;             // residual stream entering the block          [N][E]
    std::vector<float> xn1;           // attention norm of x                          [N][E]
    std::vector<float> q_pre, k_pre;  // W x + bias before the per-head norm (qk_norm only)
    std::vector<float> q, k, v;       // what attention reads: normed, rotated, Q scaled
    std::vector<float> lse;           // log-sum-exp of each (token, query head)'s scores [N][NH]
    std::vector<float> att;           // attention output, W_o's input                [N][q_dim]
    std::vector<float> o;             // W_o's output before the post-norm (post_norms only)
    std::vector<float> h;             // residual stream after attention              [N][E]
    std::vector<float> xn2;           // feed-forward norm of h                       [N][E]
    std::vector<float> gate, up;      // W_gate x and W_up x before the activation   [N][FF]
    std::vector<float> down;          // W_down's output before the post-norm (post_norms only)
  };
  std::vector<Block> blocks;          // blocks first_block, first_block + 1, ... run
  int first_block = 0;
  // Keep only each block's input x (a checkpoint from which a pass of that block alone,
  // ForwardSeam::first_block / end_block, recomputes the rest); the other records of every
  // block go to `work`, which each block overwrites. Set before the pass.
  bool checkpoints_only = false;
  Block work;
  // With checkpoints_only: a pass that runs one block again from its checkpoint records into
  // `work` and leaves the checkpoints and x_out as they are.
  bool replay = false;
  std::vector<float> x_out;           // residual stream after the last block run     [N][E]
  int64_t n_tokens = 0;
  // Sizes every buffer for n_tokens rows (capacity is kept between batches).
  void prepare(const ModelConfig& c, int first_block, int end_block, int64_t n_tokens);
  Block& block(int il) { return blocks[static_cast<size_t>(il - first_block)]; }
  const Block& block(int il) const { return blocks[static_cast<size_t>(il - first_block)]; }
  // Where the pass records block il's activations other than x.
  Block& rec(int il) { return checkpoints_only ? work : block(il); }
};

// What a caller asks of the forward pass besides logits and final hidden states. Every member
// is optional; an absent one costs the pass a null check and nothing else.
struct ForwardSeam {
  // Every matrix product's float input, from thread 0 once the whole input is complete; views
  // of one fused tensor are reported once (the importance matrix: SessionOptions::on_matmul_input).
  const MatmulInputHook* on_matmul_input = nullptr;
  // The residual stream after each block, from thread 0 once every thread has finished the
  // block (features from an intermediate layer, a distillation target).
  const BlockOutputHook* on_block_output = nullptr;
  // Beside every matrix product, from each thread on the rows it computed, so from several
  // threads at once (the place of an adapter's y += scale * B (A x)). Q/K/V see W x before
  // bias, norm and RoPE; W_o and W_down before the residual add or post-norm; gate and up
  // before the activation; the output head before the final soft-cap.
  const AdapterHook* adapter = nullptr;
  // Where a training run records what its backward pass reads.
  ActivationTape* tape = nullptr;
  // forward()'s `hidden` gets the residual stream after the last block run instead of the
  // output norm of it: the input of blocks the caller runs itself (fine-tuned copies).
  bool residual_hidden = false;
  // Start at block first_block with these residual rows (one per batch entry, n_embd floats)
  // instead of the token embeddings: the blocks below ran before (a frozen prefix whose
  // output the caller keeps). Token ids are then not read.
  int first_block = 0;
  const float* residual_in = nullptr;
  // Stop after block end_block - 1 (0: run every block the cache has).
  int end_block = 0;
  // Attention sums every row in the order of a one-token pass (the matrix products' rows do
  // not depend on the batch): each row's result is bit for bit the one-token evaluation's
  // (speculative decoding's verification). Otherwise a pass over several tokens follows the
  // order of llama.cpp's batched matrix product, as its prompt processing does.
  bool one_token_order = false;
};

// Activations for up to max_tokens tokens in flight; allocated once per session. Buffers are
// left uninitialised, so pages a short batch never touches cost no resident memory.
class ForwardScratch {
 public:
  ForwardScratch(const ModelConfig& c, int max_tokens, int n_ctx, int n_threads);
  int max_tokens() const { return max_tokens_; }
  ForwardSeam seam;

  // A buffer of n elements, allocated once and not zeroed.
  template <class T>
  struct Buffer {
    std::unique_ptr<T[]> p;
    size_t n = 0;
    void allocate(size_t count) {
      p = std::make_unique_for_overwrite<T[]>(count);
      n = count;
    }
    T* data() const { return p.get(); }
    T& operator[](size_t i) const { return p[i]; }
  };

 private:
  friend class ForwardPass;
  // Converted activation matrices in `xq`: the inputs of a norm (one per distinct activation
  // type of the weights that read them), the attention output for W_o, the FFN activation for
  // W_down.
  static constexpr int kInputSlots = 3;
  static constexpr int kSlotAtt = kInputSlots;
  static constexpr int kSlotHidden = kInputSlots + 1;
  static constexpr int kSlots = kInputSlots + 2;
  int max_tokens_;
  int n_ctx_;
  int n_threads_;
  size_t act_row_bytes_;    // bytes of one converted activation row (widest input, any type)
  size_t local_bytes_;      // per-thread share of `local`
  Buffer<float> x, xn, q, k, v, att, tmp, gate, up;
  Buffer<float> rope_cos, rope_sin;   // [token][n_rot / 2]; then the local layers' table if any
  Buffer<uint16_t> kwin;              // per thread: K blocks of a sliding window (local layers)
  size_t kwin_elems_ = 0;
  Buffer<float> scores;               // [thread][group][n_ctx rounded up to a key block]
  Buffer<std::byte> xq;               // converted activations: [slot][token][row]
  Buffer<std::byte> local;            // per thread: one token's normed row and its conversions
};

// The RoPE table of position `pos`: n_rot / 2 cosines and sines, with the global layers' base
// and scale or (local) the sliding-window layers', YaRN-corrected where the model says so.
void rope_table(const ModelConfig& c, int64_t pos, bool local, float* cos, float* sin);

// Runs the model on `batch` (at most scratch.max_tokens() entries; positions must be inside the
// cache and each sequence's earlier positions already filled). For every entry with
// logits=true, n_vocab floats are written to `logits` (unless it is null) and, if `hidden` is
// not null, the final hidden state after the output norm (n_embd floats) to `hidden`, in batch
// order. scratch.seam says what else the caller asks for.
void forward(const Model& model, std::span<const BatchEntry> batch, KvCache& kv,
             ForwardScratch& scratch, kernels::ThreadPool& pool, float* logits, float* hidden = nullptr);
// The same pass on other weights of the model's shapes (a training run's float32 copies).
void forward(const ModelConfig& config, const ModelWeights& weights, std::span<const BatchEntry> batch, KvCache& kv,
             ForwardScratch& scratch, kernels::ThreadPool& pool, float* logits, float* hidden = nullptr);

}  // namespace edgelm
