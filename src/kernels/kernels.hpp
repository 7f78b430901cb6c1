// Compute kernels: per-type row conversion and dot products, matrix products, element-wise ops.
//
// Every type has a scalar reference (reference_ops) that is the oracle for faster versions;
// ops() returns the best implementation for the running CPU. A weight row is never dotted with
// float activations directly: the activations are first converted once per matrix to the
// weight type's `vec_dot_type` (Q8_0 for Q4_0/Q8_0, Q8_1 for Q4_1, F16 for F16, ...), which is
// what makes integer SIMD dot products possible and keeps results close to llama.cpp's.
//
//   const auto& o = edgelm::kernels::ops(w.type);
//   std::vector<std::byte> xq(edgelm::row_size(o.vec_dot_type, n));
//   edgelm::kernels::ops(o.vec_dot_type).from_float(x, xq.data(), n);
//   float y0 = o.vec_dot(n, w.row(0), xq.data());
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "edgelm/tensor.hpp"

namespace edgelm::kernels {

using ToFloatFn = void (*)(const void* src, float* dst, int64_t n);
using FromFloatFn = void (*)(const float* src, void* dst, int64_t n);
// Dot product of n elements: w in the weight type, x in its vec_dot_type.
using VecDotFn = float (*)(int64_t n, const void* w, const void* x);

struct TypeOps {
  DType vec_dot_type = DType::F32;
  ToFloatFn to_float = nullptr;
  FromFloatFn from_float = nullptr;
  VecDotFn vec_dot = nullptr;
};

// Plain scalar implementations; nullptr when edgelm cannot compute with the type.
const TypeOps* reference_ops(DType t);
// Fastest implementation on this CPU; throws edgelm::Error for a type with no compute support.
const TypeOps& ops(DType t);
bool can_compute(DType t);
// Name of the instruction set the dispatched kernels use ("scalar", "AVX2", "NEON", ...).
std::string_view target_name();

// Converts n floats to `type` into dst (row_size(type, n) bytes).
void quantize_row(DType type, const float* src, void* dst, int64_t n);
// Converts n elements of `type` to floats.
void dequantize_row(DType type, const void* src, float* dst, int64_t n);

// y[t * y_stride + r] = W[r, :] . x_t for tokens t in [0, n_tok) and rows r in [r0, r1).
// xq holds the activations already converted to ops(w.type).vec_dot_type, token t at
// xq + t * xq_stride bytes. Rows are independent, so threads split [0, nrows) between them.
void matmul_rows(const TensorView& w, const std::byte* xq, size_t xq_stride, float* y,
                 size_t y_stride, int64_t n_tok, int64_t r0, int64_t r1);
// The same product from float activations, exact in the weights' values: rows of W
// dequantized a panel at a time, then multiplied by kernels::gemm. A training pass over a
// quantized base uses it, so that its backward pass (which multiplies by the same dequantized
// rows) differentiates the function the forward computed.
void matmul_rows_exact(const TensorView& w, const float* x, size_t x_stride, float* y, size_t y_stride, int64_t n_tok,
                       int64_t r0, int64_t r1);

// A float32 matrix product over a block of C: C(m, n) = [C(m, n) +] sum_k A(m, k) B(k, n)
// for m in [m0, m1), n in [n0, n1), where
//   A(m, k) = a[m * lda + k], or a[k * lda + m] when trans_a;
//   B(k, n) = b[k * ldb + n], or b[n * ldb + k] when trans_b;
//   C(m, n) = c[m * ldc + n].
// The training engine's three products are its three forms: y = x W^T (trans_b),
// dx = dy W, dW += dy^T x (trans_a). Each element is summed in k order within blocks of
// kGemmKBlock, whose partial sums are then added in order, so the result does not depend on
// how [m0, m1) x [n0, n1) is split between threads.
inline constexpr int64_t kGemmKBlock = 256;
struct GemmArgs {
  bool trans_a = false, trans_b = false;
  int64_t K = 0;
  const float* a = nullptr;
  size_t lda = 0;
  const float* b = nullptr;
  size_t ldb = 0;
  float* c = nullptr;
  size_t ldc = 0;
  bool accumulate = false;  // C += ... (else C = ...)
  int64_t m0 = 0, m1 = 0, n0 = 0, n1 = 0;
};
// With the best SIMD set (simd::FloatKernels::gemm), on the calling thread.
void gemm(const GemmArgs& g);
// Scalar reference: each element's sum in double, in k order.
void gemm_reference(const GemmArgs& g);

// --- element-wise ops (float32) ---
// out = x / sqrt(mean(x^2) + eps) * w   (w may be null: no scale)
void rmsnorm(const float* x, const float* w, float* out, int64_t n, float eps);
// In place, numerically stable (max subtracted).
void softmax(float* x, int64_t n);

// e^x by range reduction and a degree-5 polynomial (error < 2 ulp), the approximation ggml's
// CPU backend uses in softmax and SiLU; the forward pass uses it so that rounding matches.
float exp_poly(float x);
// a[0..15] added as x86 AVX-512 reduces a 16-lane register: halves, then quarters, then pairs.
float reduce16(const float* a);

// Attention of n_q query heads sharing one KV head over cached positions [0, n_kv), the
// scalar reference of simd::FloatKernels::attend (see simd.hpp for the layout): query rounded
// to half precision; each score a 16-lane fused multiply-add over dimensions, reduce16, times
// `scale`; softmax with exp_poly and lane sums of 16 positions added in double; weights
// rounded to half precision; each output a 16-lane fused multiply-add over positions, reduce16.
// scores: scratch of n_kv floats.
// `order` picks which of llama.cpp's two summation orders the dot products follow: its tiled
// matrix product (a forward pass over >= 2 tokens) or its vector dot product (one token).
inline constexpr int kAttnKeyBlock = 16;
inline constexpr int kAttnLanes = 16;
enum class AttnOrder { kSingle, kBatch };
void attend_reference(const float* q, size_t q_stride, int n_q, const uint16_t* kt, size_t kt_block_stride,
                      const uint16_t* v, size_t v_stride, int64_t hd, int n_kv, float scale, float* scores,
                      float* out, size_t out_stride, AttnOrder order);
// Attention over a Q8_0 KV cache (`--kv-type q8_0`): keys and values one row per position,
// rows `row_stride` bytes apart, each head hd / 32 Q8_0 blocks (hd a multiple of 32). For each
// of n_q query heads (q_stride floats apart): the query converted to Q8_0, scores of positions
// [first, n_kv) the Q8_0 dot product times `scale`, softmax with exp_poly, and the output the
// softmax-weighted sum of the dequantized values. softcap > 0 caps each raw score s as
// softcap * tanh(s / softcap) before the scale (Gemma 2). scores: scratch of n_kv floats.
void attend_q8_0(const float* q, size_t q_stride, int n_q, const std::byte* k, const std::byte* v,
                 size_t row_stride, int64_t hd, int first, int n_kv, float scale, float softcap, float* scores,
                 float* out, size_t out_stride);

// Attention of n_q query heads (q_stride floats apart) sharing one KV head over cached
// positions [first, n_kv), keys and values laid out as for attend_reference, with each score
// soft-capped (softcap * tanh(s / softcap)) before the scale and the softmax, as llama.cpp's
// classic path does for Gemma 2: the query rounded to half precision, scores summed in float in
// dimension order, softmax with std::exp summed in double, weights rounded to half precision
// for the sum over the values in position order. scores: scratch of n_kv - first floats.
// Scalar only: soft-capped layers are rare. hd <= kMaxSoftcapHeadDim.
inline constexpr int64_t kMaxSoftcapHeadDim = 1024;
void attend_softcap(const float* q, size_t q_stride, int n_q, const uint16_t* kt, size_t kt_block_stride,
                    const uint16_t* v, size_t v_stride, int64_t hd, int first, int n_kv, float scale, float softcap,
                    float* scores, float* out, size_t out_stride);

// Rotary position embedding on one head of head_dim floats, first n_rot dims rotated.
// neox=false rotates adjacent pairs (x[2i], x[2i+1]) as llama.cpp's "normal" mode (used by the
// Llama family, whose GGUF Q/K weights are permuted for it); neox=true pairs x[i], x[i+n_rot/2].
void rope(float* x, int64_t head_dim, int64_t n_rot, int64_t pos, float freq_base,
          float freq_scale, bool neox);
// out[i] = silu(gate[i]) * up[i]; out may be gate (each element is read before it is written)
void swiglu(const float* gate, const float* up, float* out, int64_t n);
// GELU as ggml's CPU backend computes it for f32 activations: the input rounded to half
// precision indexes a table of the tanh approximation, itself rounded to half precision
// (entry: 0.5 x (1 + tanh(sqrt(2/pi) x (1 + 0.044715 x^2))); whether the inner multiply-add is
// fused changed no logit on the Gemma 3 fixtures). The table has one entry per half-precision
// bit pattern, built on first use.
const uint16_t* gelu_table();
// The same table with each entry widened to float (what geglu multiplies by), for gathers.
const float* gelu_table_f32();
// out[i] = gelu(gate[i]) * up[i] (GeGLU) with gelu_table(); gate <= -10 gives 0 and gate >= 10
// gives gate * up, as ggml's. out may be gate.
void geglu(const float* gate, const float* up, float* out, int64_t n);
// LayerNorm as ggml computes it: mean and variance of the row (sums in double), then
// (x - mean) / sqrt(var + eps), times w and plus b where given (either may be null). out may
// be x.
void layer_norm(const float* x, const float* w, const float* b, float* out, int64_t n, float eps);
// cos/sin of the n_rot / 2 rotation angles at `pos` with YaRN scaling, as ggml's rope computes
// them (ext_factor 1, beta_fast 32, beta_slow 1): per pair a ramp over the correction dims of
// orig_ctx mixes the interpolated angle (times freq_scale) with the extrapolated one; the
// magnitude scale attn_factor * (1 + 0.1 ln(1 / freq_scale)) is folded into both.
void yarn_angles(int64_t n_rot, int64_t pos, float freq_base, float freq_scale, int orig_ctx, float attn_factor,
                 float* cos, float* sin);
// y[i] += x[i]
void add_inplace(float* y, const float* x, int64_t n);

}  // namespace edgelm::kernels
