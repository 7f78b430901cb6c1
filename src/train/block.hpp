// Forward and backward passes of Llama-family transformer blocks over packed sequences, for
// fine-tuning the top blocks of a backbone. The math is src/model/forward_pass.cpp's (RMSNorm ->
// Q/K/V -> RoPE -> causal softmax attention with GQA -> W_o -> residual -> RMSNorm -> SwiGLU
// -> W_down -> residual), in float32 with plain exp and softmax; matrix products go through
// kernels::matmul_rows, so a frozen block can run on its quantized weights (activations
// converted as the engine converts them) and a trainable one on float32 weights.
//
// Sequences are packed: `lens` gives each one's token count; tokens of one sequence sit in
// consecutive rows at positions 0, 1, ... and attend only to earlier tokens of the same sequence.
#pragma once
#include <span>
#include <vector>

#include "edgelm/model.hpp"
#include "edgelm/train.hpp"
#include "kernels/thread_pool.hpp"

namespace edgelm::train {

BlockShape block_shape(const ModelConfig& c);  // throws edgelm::Error for a non-Llama block

// Weights one block reads: quantized model tensors or views of a TransformerBlock's params.
struct BlockWeights {
  const float* attn_norm = nullptr;
  const float* ffn_norm = nullptr;
  TensorView wq, wk, wv, wo, ffn_gate, ffn_up, ffn_down;
};
BlockWeights block_weights(const Model& model, int layer);
BlockWeights block_weights(const TransformerBlock& b);

// A TransformerBlock initialised from layer `layer` of the model (weights dequantized).
TransformerBlock load_block(const Model& model, int layer, int index);

struct BlockTrace {
  std::vector<int> lens;
  std::vector<float> x, xn1, q, k, v, probs, att, h, xn2, gate, up, act;
};

// y = block(x) for T = sum(lens) rows of n_embd floats (y may alias x when no trace is kept).
void block_forward(const BlockWeights& w, const BlockShape& s, const float* x, std::span<const int> lens, float* y,
                   BlockTrace* trace, kernels::ThreadPool* pool);
// Accumulates the parameter gradients of `b` for dL/dy and writes dL/dx (T x n_embd).
void block_backward(TransformerBlock& b, const BlockTrace& trace, const float* dy, float* dx,
                    kernels::ThreadPool* pool);

// RMSNorm of T rows with weight w (out may be x).
void rmsnorm_rows(const float* x, const float* w, int64_t T, int64_t n, float eps, float* out);
// dx = d(rmsnorm)/dx^T dout for T rows (kernels::rmsnorm_backward each); dw (optional) accumulates.
void rmsnorm_rows_backward(const float* x, const float* w, const float* dout, int64_t T, int64_t n, float eps,
                           float* dx, float* dw);

}  // namespace edgelm::train
