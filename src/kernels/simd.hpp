// SIMD kernel sets: one per instruction set compiled in (Highway targets: AVX3_DL, AVX3, AVX2,
// SSE4, NEON, EMU128 ...), chosen once at run time for the running CPU. Each set is a table
// of plain function pointers, so the hot loops pay no per-call dispatch, and tests can run
// every set the CPU supports against the scalar references (kernels/reference_*.cpp).
//
//   const auto& ks = edgelm::kernels::simd::best();
//   ks.rmsnorm(x, w, out, n, eps);
//   for (const auto* set : edgelm::kernels::simd::supported()) check(*set);
//
// The environment variable EDGELM_SIMD=<name> (e.g. AVX2, SSE4, EMU128) forces a lesser set,
// which is how the AVX2 and 128-bit paths are benchmarked on a machine that has AVX-512.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "edgelm/tensor.hpp"
#include "kernels/kernels.hpp"

namespace edgelm::kernels::simd {

using MatmulFn = void (*)(const TensorView& w, const std::byte* xq, size_t xq_stride, float* y,
                          size_t y_stride, int64_t n_tok, int64_t r0, int64_t r1);

// Quantized types: activation quantizers and int8 dot products / matrix products.
struct QuantKernels {
  TypeOps q8_0, q8_1, q4_0, q4_1;
  // matmul_rows for Q4_0, Q4_1 and Q8_0 weights.
  MatmulFn matmul;
  // Dot products and matrix products bit-identical to the references (false where the CPU
  // lacks fused multiply-add: SSE4).
  bool exact = false;
};

// Weight types of llama.cpp's K-quant mixes (simd_kquant.cpp): bit-identical to the references
// (reference_kquants.cpp) on every target, each token of a matrix product in the order
// reference_batch_dot picks for it.
struct KQuantKernels {
  TypeOps q8_k;  // from_float: the K-quants' activation quantizer
  TypeOps q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k;  // vec_dot: the one-token order
  // matmul_rows for Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K and Q6_K weights.
  MatmulFn matmul;
};

// Attention of a group of query heads (sharing one KV head) over cached positions [0, n_kv).
//   q:      n_q query heads (head_dim floats each, q_stride floats apart)
//   kt:     the KV head's keys in blocks of kKeyBlock positions, dimension-major: element
//           (dim i, position p) at kt[(p / kKeyBlock) * kt_block_stride + i * kKeyBlock + p % kKeyBlock]
//   v:      the KV head's values, position p at v + p * v_stride (head_dim halves)
//   out:    n_q outputs (head_dim floats each, out_stride floats apart)
//   scores: scratch of at least n_q * round_up(n_kv, kKeyBlock) floats
// Numerics are those of the reference forward pass: the query rounded to half precision, each
// score summed in dimension order and then scaled, softmax, weights rounded to half precision,
// each output element summed in position order. Only the softmax's exp is approximated.
inline constexpr int kKeyBlock = 16;
using AttendFn = void (*)(const float* q, size_t q_stride, int n_q, const uint16_t* kt, size_t kt_block_stride,
                          const uint16_t* v, size_t v_stride, int64_t head_dim, int n_kv, float scale,
                          float* scores, float* out, size_t out_stride, AttnOrder order);

// Float types and the element-wise operations of the transformer block.
struct FloatKernels {
  TypeOps f32, f16, bf16;
  // matmul_rows for F32, F16 and BF16 weights.
  MatmulFn matmul;
  void (*rmsnorm)(const float* x, const float* w, float* out, int64_t n, float eps);
  void (*softmax)(float* x, int64_t n);
  // RoPE on n_heads heads of head_dim floats laid out back to back, with the cosines and
  // sines of rope_angles() (same meaning as kernels::rope applied to each head).
  void (*rope)(float* x, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float* cos,
               const float* sin, bool neox);
  void (*swiglu)(const float* gate, const float* up, float* out, int64_t n);
  // kernels::geglu: the input rounded to half precision and the table looked up by a gather.
  void (*geglu)(const float* gate, const float* up, float* out, int64_t n);
  void (*add)(float* y, const float* x, int64_t n);
  // dst[i] = f32_to_fp16(src[i]) (the KV-cache store).
  void (*to_f16)(const float* src, uint16_t* dst, int64_t n);
  AttendFn attend;
  // kernels::gemm (kernels.hpp): packed panels, a register tile of 6 rows x 2 vectors.
  void (*gemm)(const GemmArgs& g);
};

struct KernelSet {
  const char* name = "";  // Highway target name
  int64_t target = 0;     // Highway target bit
  QuantKernels quant;
  KQuantKernels kquant;
  FloatKernels flt;
  // TypeOps for t, or nullptr if this set has no kernels for t.
  const TypeOps* type_ops(DType t) const;
};

// cos/sin of the n_rot / 2 rotation angles at `pos`, computed exactly as kernels::rope does
// (so a token's table, computed once, serves every head and every layer).
void rope_angles(int64_t n_rot, int64_t pos, float freq_base, float freq_scale, float* cos, float* sin);

// The set used by ops(), matmul_rows() and the forward pass.
const KernelSet& best();
// Every compiled set this CPU can run, best first (for tests and benchmarks).
std::vector<const KernelSet*> supported();

// Per-part tables for one Highway target (defined in simd_quant.cpp / simd_float.cpp /
// simd_kquant.cpp).
const QuantKernels& quant_kernels(int64_t target);
const KQuantKernels& kquant_kernels(int64_t target);  // simd_kquant.cpp
const FloatKernels& float_kernels(int64_t target);
// Highway targets compiled into this library that the CPU supports, best first.
std::vector<int64_t> compiled_targets();

}  // namespace edgelm::kernels::simd
