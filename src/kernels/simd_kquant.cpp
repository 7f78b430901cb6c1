// Kernels for the weight types of llama.cpp's "K-quant mixes" (Q5_0 with Q8_0 activations, Q5_1
// with Q8_1; Q2_K, Q3_K, Q4_K, Q5_K and Q6_K with Q8_K activations), compiled once per Highway
// target, bit-identical to the scalar references (reference_kquants.cpp) in each of their
// summation orders.
//
// Exactness. Every integer sum (weights times activations, times the 4/6/8-bit sub-block scales,
// minus the Q8_K block-sum corrections) is exact whatever the grouping, so SIMD computes them
// freely; only the float steps carry an order, and they are done exactly as the reference does
// them, per block or super-block:
//   Q5_0:         eight int32 lanes (lane j = elements 4j..4j+3), one FMA per block by dw * dx
//                 into eight float lanes, then the fixed pairwise lane sum.
//   Q5_1:         the block's integer sum, then sum += dw * dx * isum + m * s (no FMA).
//   Q4_K one-token (decode, and the n_tok % 4 tokens left over in a batch): one FMA per
//                 super-block for the scaled sum and one for the mins; result acc - accm.
//   Q4_K 4-token tiles (tokens below n_tok - n_tok % 4): the same per pair of sub-blocks.
//   Q6_K lane order (fewer than 8 tokens): eight int32 lanes as q6_k_dot defines them, one FMA
//                 per super-block into eight float lanes, the fixed lane sum.
//   Q6_K tiled order (8 tokens or more): (isum * dw) then one FMA by dx per super-block.
//   Q2_K, Q5_K (one order): per super-block isum and msum, then
//                 sum += dw * dx * isum - dmin * dx * msum (no FMA).
//   Q3_K (one order): per super-block isum, then sum += dw * dx * isum (no FMA).
// The shared integer primitive is Dot2: 32 unsigned levels times 32 signed activations, lane k
// holding the sum over elements 4k..4k+3 times the scale of its half (elements 0..15 or 16..31).
// x86 (AVX2 / AVX-512): vpmaddubsw + vpmaddwd (no saturation: levels <= 63, so a pair is at most
// 2 * 63 * 128). NEON: vmull_s8 + pairwise adds. Other targets (SSE4, EMU128): plain C++.
// Q2_K / Q3_K / Q5_K use Dot2S (Dot2 with a run's two scales picked from a register by one byte
// shuffle on x86) and do the float steps of four (row, token) pairs at once (FloatSteps).
//
// Decode walks four rows at a time (prefetching ahead as simd_quant.cpp does); several tokens
// use tiles of rows x tokens, each weight chunk decoded once per tile and reused per token
// (x86: Q4_K's paired order does its float steps for four tokens at once; AVX-512 VNNI: Q5_0
// from 8 tokens puts 16 tokens in the lanes of zmm registers).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "edgelm/error.hpp"
#include "kernels/reference_kquants.hpp"
#include "kernels/simd.hpp"
#include "tensor/blocks.hpp"
#include "tensor/fp16.hpp"
#include "tensor/kquant_blocks.hpp"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/simd_kquant.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace edgelm::kernels::HWY_NAMESPACE {

#undef EDGELM_KQ_X86
#undef EDGELM_KQ_NEON
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
#define EDGELM_KQ_X86 1
#elif HWY_TARGET == HWY_NEON && HWY_ARCH_ARM_A64
#define EDGELM_KQ_NEON 1
#endif

namespace kq {

HWY_INLINE float HalfToFloat(uint16_t h) {
#if defined(EDGELM_KQ_X86)
  return _cvtsh_ss(h);
#elif HWY_ARCH_ARM_A64
  __fp16 f;
  std::memcpy(&f, &h, sizeof f);
  return static_cast<float>(f);
#else
  return fp16_to_f32(h);
#endif
}

// Sixteen bytes (scales, mins) as four little-endian words, assembled with integer operations
// so that they reach the vector registers without a trip through memory.
struct Bytes16 {
  uint32_t w[4];
};
HWY_INLINE uint32_t Load32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
HWY_INLINE int Byte(const Bytes16& b, int k) { return static_cast<int8_t>(b.w[k / 4] >> (8 * (k % 4))); }
// Bytes b0..b7 of (lo, hi) -> b0 b0 b1 b1 ... b7 b7.
HWY_INLINE Bytes16 Dup8(uint32_t lo, uint32_t hi) {
  auto spread = [](uint32_t w) {
    uint64_t t = w;
    t = (t | t << 16) & 0x0000FFFF0000FFFFull;
    t = (t | t << 8) & 0x00FF00FF00FF00FFull;
    return t | t << 8;
  };
  const uint64_t a = spread(lo), b = spread(hi);
  return {{static_cast<uint32_t>(a), static_cast<uint32_t>(a >> 32), static_cast<uint32_t>(b),
           static_cast<uint32_t>(b >> 32)}};
}

// ---------------------------------------------------------------------------------------------
// Per-target primitives.
//   W32   32 unsigned levels (0..63) in registers
//   ISum  eight int32 lanes
//   Acc8  eight float lanes
#if defined(EDGELM_KQ_X86)

struct W32 {
  __m256i v;
};
struct ISum {
  __m256i v;
};
struct Acc8 {
  __m256 v;
};
HWY_INLINE ISum IZero() { return {_mm256_setzero_si256()}; }
HWY_INLINE ISum IAdd(ISum a, ISum b) { return {_mm256_add_epi32(a.v, b.v)}; }
HWY_INLINE ISum ISub(ISum a, ISum b) { return {_mm256_sub_epi32(a.v, b.v)}; }
HWY_INLINE ISum IMul32(ISum a) { return {_mm256_slli_epi32(a.v, 5)}; }
HWY_INLINE int32_t HSum(ISum a) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(a.v), _mm256_extracti128_si256(a.v, 1));
  s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
  return _mm_cvtsi128_si32(s);
}
// Lane k: (sum of u[i] * x[i], i = 4k..4k+3) times sa (k < 4) or sb (k >= 4).
HWY_INLINE ISum Dot2(W32 u, const int8_t* x, int sa, int sb) {
  const __m256i p = _mm256_maddubs_epi16(u.v, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x)));
  const __m256i sc = _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(sb)), _mm_set1_epi16(static_cast<int16_t>(sa)));
  return {_mm256_madd_epi16(p, sc)};
}
// init + lane k: sum of u[i] * x[i], i = 4k..4k+3.
HWY_INLINE ISum DotAcc(ISum init, W32 u, const int8_t* x) {
  const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
#if HWY_TARGET == HWY_AVX3_DL
  // The EVEX encoding, as in simd_quant.cpp (AVX-512 VNNI CPUs without AVX-VNNI lack the VEX one).
  __m256i acc = init.v;
  asm("%{evex%} vpdpbusd %[s], %[u], %[acc]" : [acc] "+v"(acc) : [u] "v"(u.v), [s] "vm"(xv));
  return {acc};
#else
  return {_mm256_add_epi32(init.v, _mm256_madd_epi16(_mm256_maddubs_epi16(u.v, xv), _mm256_set1_epi16(1)))};
#endif
}
HWY_INLINE W32 Const32(uint8_t c) { return {_mm256_set1_epi8(static_cast<char>(c))}; }
// Q4_K: the low (hi = false) or high nibbles of 32 bytes.
HWY_INLINE W32 Nib(const uint8_t* q, bool hi) {
  __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
  if (hi) v = _mm256_srli_epi16(v, 4);
  return {_mm256_and_si256(v, _mm256_set1_epi8(0x0F))};
}
// Q2_K / Q3_K: the bit pairs at `shift` (0, 2, 4, 6) of 32 bytes.
HWY_INLINE W32 Bits2(const uint8_t* q, int shift) {
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
  return {_mm256_and_si256(_mm256_srli_epi16(v, shift), _mm256_set1_epi8(3))};
}
// Q3_K / Q5_K high bits: u[i] | value where bit `bit` of h[i] is set (value a power of two).
HWY_INLINE W32 OrBit(W32 u, const uint8_t* h, int bit, uint8_t value) {
  const __m256i hv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(h));
  // Bit `bit` of each byte moved to value's position (16-bit shifts: the masked bit stays in its byte).
  const int pos = __builtin_ctz(value);
  const __m256i moved = bit >= pos ? _mm256_srli_epi16(hv, bit - pos) : _mm256_slli_epi16(hv, pos - bit);
  return {_mm256_or_si256(u.v, _mm256_and_si256(moved, _mm256_set1_epi8(static_cast<char>(value))))};
}
// Sixteen signed 16-bit scales; Dot2S(u, x, s, v) is Dot2(u, x, s[2v], s[2v + 1]). Scales 0..7
// and 8..15 each fill both 128-bit halves of a register, so one byte shuffle picks a run's two.
struct Scales16 {
  __m256i lo, hi;
};
HWY_INLINE __m128i Vec16(const Bytes16& b) {
  return _mm_set_epi32(static_cast<int>(b.w[3]), static_cast<int>(b.w[2]), static_cast<int>(b.w[1]),
                       static_cast<int>(b.w[0]));
}
HWY_INLINE Scales16 ScalesOf(const Bytes16& b) {
  const __m256i s = _mm256_cvtepi8_epi16(Vec16(b));
  return {_mm256_permute2x128_si256(s, s, 0x00), _mm256_permute2x128_si256(s, s, 0x11)};
}
// Run v: the low half takes 16-bit scale 2 * (v % 4) of its group of 8, the high half the next.
alignas(32) constexpr int8_t kPickScales[4][32] = {
    {0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3},
    {4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7},
    {8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11},
    {12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15,
     14, 15, 14, 15}};
HWY_INLINE ISum Dot2S(W32 u, const int8_t* x, const Scales16& s, int v) {
  const __m256i sc = _mm256_shuffle_epi8(v < 4 ? s.lo : s.hi,
                                         _mm256_load_si256(reinterpret_cast<const __m256i*>(kPickScales[v % 4])));
  const __m256i p = _mm256_maddubs_epi16(u.v, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x)));
  return {_mm256_madd_epi16(p, sc)};
}
// Lane k: b[2k] * bs[2k] + b[2k + 1] * bs[2k + 1], the bytes signed.
HWY_INLINE ISum Dot16(const Bytes16& b, const int16_t* bs) {
  return {_mm256_madd_epi16(_mm256_cvtepi8_epi16(Vec16(b)), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bs)))};
}
// Q5_0 / Q5_1: 16 bytes of nibble pairs plus 32 high bits -> levels 0..31 in element order.
template <class Block>  // BlockQ5_0 or BlockQ5_1
HWY_INLINE W32 Q5Levels(const Block& b) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs));
  const __m256i nib = _mm256_and_si256(
      _mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1), _mm256_set1_epi8(0x0F));
  uint32_t qh;
  std::memcpy(&qh, b.qh, 4);
#if HWY_TARGET <= HWY_AVX3
  const __m256i hb = _mm256_maskz_mov_epi8(static_cast<__mmask32>(qh), _mm256_set1_epi8(0x10));
#else
  const __m256i shuf = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3,
                                        3, 3, 3, 3, 3, 3, 3);
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
  const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(qh)), shuf);
  const __m256i hb = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit), _mm256_set1_epi8(0x10));
#endif
  return {_mm256_or_si256(nib, hb)};
}
// Q6_K: the four runs of 32 levels (0..63) of one half super-block.
HWY_INLINE void Q6Levels(const uint8_t* ql, const uint8_t* qh, W32 u[4]) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
  const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
  const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh));
  u[0].v = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(h, 4), m30));
  u[1].v = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(h, 2), m30));
  u[2].v = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(h, m30));
  u[3].v = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                           _mm256_and_si256(_mm256_srli_epi16(h, 2), m30));
}
// Lane k: sc[2k] * bs[2k] + sc[2k + 1] * bs[2k + 1].
HWY_INLINE ISum PairDot16(const int8_t* sc, const int16_t* bs) {
  const __m256i s = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc)));
  return {_mm256_madd_epi16(s, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bs)))};
}
HWY_INLINE Acc8 ZeroAcc() { return {_mm256_setzero_ps()}; }
HWY_INLINE void Fma(Acc8& a, ISum s, float scale) {
  a.v = _mm256_fmadd_ps(_mm256_set1_ps(scale), _mm256_cvtepi32_ps(s.v), a.v);
}
HWY_INLINE float Sum(Acc8 a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

#elif defined(EDGELM_KQ_NEON)

struct W32 {
  uint8x16_t lo, hi;
};
struct ISum {
  int32x4_t lo, hi;
};
struct Acc8 {
  float32x4_t lo, hi;
};
HWY_INLINE ISum IZero() { return {vdupq_n_s32(0), vdupq_n_s32(0)}; }
HWY_INLINE ISum IAdd(ISum a, ISum b) { return {vaddq_s32(a.lo, b.lo), vaddq_s32(a.hi, b.hi)}; }
HWY_INLINE ISum ISub(ISum a, ISum b) { return {vsubq_s32(a.lo, b.lo), vsubq_s32(a.hi, b.hi)}; }
HWY_INLINE ISum IMul32(ISum a) { return {vshlq_n_s32(a.lo, 5), vshlq_n_s32(a.hi, 5)}; }
HWY_INLINE int32_t HSum(ISum a) { return vaddvq_s32(vaddq_s32(a.lo, a.hi)); }
// Sums of four consecutive products (levels <= 63 are exact as signed bytes).
HWY_INLINE int32x4_t Group4(uint8x16_t u, int8x16_t x) {
  const int8x16_t a = vreinterpretq_s8_u8(u);
  const int32x4_t lo = vpaddlq_s16(vmull_s8(vget_low_s8(a), vget_low_s8(x)));
  const int32x4_t hi = vpaddlq_s16(vmull_high_s8(a, x));
  return vpaddq_s32(lo, hi);
}
HWY_INLINE ISum Dot2(W32 u, const int8_t* x, int sa, int sb) {
  return {vmulq_n_s32(Group4(u.lo, vld1q_s8(x)), sa), vmulq_n_s32(Group4(u.hi, vld1q_s8(x + 16)), sb)};
}
HWY_INLINE ISum DotAcc(ISum init, W32 u, const int8_t* x) { return IAdd(init, Dot2(u, x, 1, 1)); }
HWY_INLINE W32 Const32(uint8_t c) { return {vdupq_n_u8(c), vdupq_n_u8(c)}; }
HWY_INLINE W32 Nib(const uint8_t* q, bool hi) {
  const uint8x16_t a = vld1q_u8(q), b = vld1q_u8(q + 16);
  if (hi) return {vshrq_n_u8(a, 4), vshrq_n_u8(b, 4)};
  const uint8x16_t m = vdupq_n_u8(0x0F);
  return {vandq_u8(a, m), vandq_u8(b, m)};
}
HWY_INLINE W32 Bits2(const uint8_t* q, int shift) {
  const int8x16_t s = vdupq_n_s8(static_cast<int8_t>(-shift));
  const uint8x16_t m = vdupq_n_u8(3);
  return {vandq_u8(vshlq_u8(vld1q_u8(q), s), m), vandq_u8(vshlq_u8(vld1q_u8(q + 16), s), m)};
}
HWY_INLINE W32 OrBit(W32 u, const uint8_t* h, int bit, uint8_t value) {
  const uint8x16_t m = vdupq_n_u8(static_cast<uint8_t>(1 << bit)), val = vdupq_n_u8(value);
  return {vorrq_u8(u.lo, vandq_u8(vtstq_u8(vld1q_u8(h), m), val)),
          vorrq_u8(u.hi, vandq_u8(vtstq_u8(vld1q_u8(h + 16), m), val))};
}
HWY_INLINE ISum Dot16(const Bytes16& b, const int16_t* bs) {
  const int8x16_t s8 = vreinterpretq_s8_u32(vcombine_u32(vcreate_u32(b.w[0] | uint64_t{b.w[1]} << 32),
                                                         vcreate_u32(b.w[2] | uint64_t{b.w[3]} << 32)));
  const int16x8_t s0 = vmovl_s8(vget_low_s8(s8)), s1 = vmovl_high_s8(s8);
  const int16x8_t b0 = vld1q_s16(bs), b1 = vld1q_s16(bs + 8);
  return {vpaddq_s32(vmull_s16(vget_low_s16(s0), vget_low_s16(b0)), vmull_high_s16(s0, b0)),
          vpaddq_s32(vmull_s16(vget_low_s16(s1), vget_low_s16(b1)), vmull_high_s16(s1, b1))};
}
template <class Block>  // BlockQ5_0 or BlockQ5_1
HWY_INLINE W32 Q5Levels(const Block& b) {
  const uint8x16_t q = vld1q_u8(b.qs);
  uint32_t qh;
  std::memcpy(&qh, b.qh, 4);
  const uint8x16_t bytes = vreinterpretq_u8_u32(vdupq_n_u32(qh));
  static const uint8_t kIdxLo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};
  static const uint8_t kIdxHi[16] = {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3};
  static const uint8_t kBit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
  const uint8x16_t bit = vld1q_u8(kBit), m10 = vdupq_n_u8(0x10);
  const uint8x16_t hlo = vandq_u8(vtstq_u8(vqtbl1q_u8(bytes, vld1q_u8(kIdxLo)), bit), m10);
  const uint8x16_t hhi = vandq_u8(vtstq_u8(vqtbl1q_u8(bytes, vld1q_u8(kIdxHi)), bit), m10);
  return {vorrq_u8(vandq_u8(q, vdupq_n_u8(0x0F)), hlo), vorrq_u8(vshrq_n_u8(q, 4), hhi)};
}
HWY_INLINE void Q6Levels(const uint8_t* ql, const uint8_t* qh, W32 u[4]) {
  const uint8x16_t m4 = vdupq_n_u8(0x0F), m30 = vdupq_n_u8(0x30);
  const uint8x16_t l0[2] = {vld1q_u8(ql), vld1q_u8(ql + 16)};
  const uint8x16_t l1[2] = {vld1q_u8(ql + 32), vld1q_u8(ql + 48)};
  const uint8x16_t h[2] = {vld1q_u8(qh), vld1q_u8(qh + 16)};
  uint8x16_t r[4][2];
  for (int i = 0; i < 2; ++i) {
    r[0][i] = vorrq_u8(vandq_u8(l0[i], m4), vandq_u8(vshlq_n_u8(h[i], 4), m30));
    r[1][i] = vorrq_u8(vandq_u8(l1[i], m4), vandq_u8(vshlq_n_u8(h[i], 2), m30));
    r[2][i] = vorrq_u8(vshrq_n_u8(l0[i], 4), vandq_u8(h[i], m30));
    r[3][i] = vorrq_u8(vshrq_n_u8(l1[i], 4), vandq_u8(vshrq_n_u8(h[i], 2), m30));
  }
  for (int k = 0; k < 4; ++k) u[k] = {r[k][0], r[k][1]};
}
HWY_INLINE ISum PairDot16(const int8_t* sc, const int16_t* bs) {
  const int8x16_t s8 = vld1q_s8(sc);
  const int16x8_t s0 = vmovl_s8(vget_low_s8(s8)), s1 = vmovl_high_s8(s8);
  const int16x8_t b0 = vld1q_s16(bs), b1 = vld1q_s16(bs + 8);
  return {vpaddq_s32(vmull_s16(vget_low_s16(s0), vget_low_s16(b0)), vmull_high_s16(s0, b0)),
          vpaddq_s32(vmull_s16(vget_low_s16(s1), vget_low_s16(b1)), vmull_high_s16(s1, b1))};
}
HWY_INLINE Acc8 ZeroAcc() { return {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)}; }
HWY_INLINE void Fma(Acc8& a, ISum s, float scale) {
  a.lo = vfmaq_n_f32(a.lo, vcvtq_f32_s32(s.lo), scale);
  a.hi = vfmaq_n_f32(a.hi, vcvtq_f32_s32(s.hi), scale);
}
HWY_INLINE float Sum(Acc8 a) {
  const float32x4_t s = vaddq_f32(a.lo, a.hi);
  const float32x2_t t = vadd_f32(vget_low_f32(s), vget_high_f32(s));
  return vget_lane_f32(t, 0) + vget_lane_f32(t, 1);
}

#else  // plain C++ (SSE4, EMU128, scalar): the reference's arithmetic, lane by lane

struct W32 {
  uint8_t b[32];
};
struct ISum {
  int32_t g[8];
};
struct Acc8 {
  float a[8];
};
HWY_INLINE ISum IZero() { return ISum{}; }
HWY_INLINE ISum IAdd(ISum a, const ISum& b) {
  for (int j = 0; j < 8; ++j) a.g[j] += b.g[j];
  return a;
}
HWY_INLINE ISum ISub(ISum a, const ISum& b) {
  for (int j = 0; j < 8; ++j) a.g[j] -= b.g[j];
  return a;
}
HWY_INLINE ISum IMul32(ISum a) {
  for (int j = 0; j < 8; ++j) a.g[j] *= 32;
  return a;
}
HWY_INLINE int32_t HSum(const ISum& a) {
  int32_t s = 0;
  for (int j = 0; j < 8; ++j) s += a.g[j];
  return s;
}
HWY_INLINE ISum Dot2(const W32& u, const int8_t* x, int sa, int sb) {
  ISum r{};
  for (int i = 0; i < 32; ++i) r.g[i / 4] += int32_t{u.b[i]} * x[i];
  for (int j = 0; j < 8; ++j) r.g[j] *= j < 4 ? sa : sb;
  return r;
}
HWY_INLINE ISum DotAcc(const ISum& init, const W32& u, const int8_t* x) { return IAdd(init, Dot2(u, x, 1, 1)); }
HWY_INLINE W32 Const32(uint8_t c) {
  W32 r;
  std::memset(r.b, c, 32);
  return r;
}
HWY_INLINE W32 Nib(const uint8_t* q, bool hi) {
  W32 r;
  for (int i = 0; i < 32; ++i) r.b[i] = static_cast<uint8_t>(hi ? q[i] >> 4 : q[i] & 0x0F);
  return r;
}
HWY_INLINE W32 Bits2(const uint8_t* q, int shift) {
  W32 r;
  for (int i = 0; i < 32; ++i) r.b[i] = static_cast<uint8_t>((q[i] >> shift) & 3);
  return r;
}
HWY_INLINE W32 OrBit(W32 u, const uint8_t* h, int bit, uint8_t value) {
  for (int i = 0; i < 32; ++i) u.b[i] = static_cast<uint8_t>(u.b[i] | (((h[i] >> bit) & 1) * value));
  return u;
}
HWY_INLINE ISum Dot16(const Bytes16& b, const int16_t* bs) {
  ISum r;
  for (int k = 0; k < 8; ++k)
    r.g[k] = Byte(b, 2 * k) * int32_t{bs[2 * k]} + Byte(b, 2 * k + 1) * int32_t{bs[2 * k + 1]};
  return r;
}
template <class Block>  // BlockQ5_0 or BlockQ5_1
HWY_INLINE W32 Q5Levels(const Block& b) {
  uint32_t qh;
  std::memcpy(&qh, b.qh, 4);
  W32 r;
  for (int j = 0; j < 16; ++j) {
    r.b[j] = static_cast<uint8_t>((b.qs[j] & 0x0F) | (((qh >> j) & 1) << 4));
    r.b[j + 16] = static_cast<uint8_t>((b.qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4));
  }
  return r;
}
HWY_INLINE void Q6Levels(const uint8_t* ql, const uint8_t* qh, W32 u[4]) {
  for (int i = 0; i < 32; ++i) {
    u[0].b[i] = static_cast<uint8_t>((ql[i] & 0x0F) | ((qh[i] & 3) << 4));
    u[1].b[i] = static_cast<uint8_t>((ql[i + 32] & 0x0F) | (((qh[i] >> 2) & 3) << 4));
    u[2].b[i] = static_cast<uint8_t>((ql[i] >> 4) | (((qh[i] >> 4) & 3) << 4));
    u[3].b[i] = static_cast<uint8_t>((ql[i + 32] >> 4) | (((qh[i] >> 6) & 3) << 4));
  }
}
HWY_INLINE ISum PairDot16(const int8_t* sc, const int16_t* bs) {
  ISum r;
  for (int k = 0; k < 8; ++k) r.g[k] = sc[2 * k] * int32_t{bs[2 * k]} + sc[2 * k + 1] * int32_t{bs[2 * k + 1]};
  return r;
}
HWY_INLINE Acc8 ZeroAcc() { return Acc8{}; }
HWY_INLINE void Fma(Acc8& a, const ISum& s, float scale) {
  for (int j = 0; j < 8; ++j) a.a[j] = std::fma(scale, static_cast<float>(s.g[j]), a.a[j]);
}
HWY_INLINE float Sum(const Acc8& a) {
  const float a0 = a.a[0] + a.a[4], a1 = a.a[1] + a.a[5], a2 = a.a[2] + a.a[6], a3 = a.a[3] + a.a[7];
  return (a0 + a2) + (a1 + a3);
}

#endif

#if !defined(EDGELM_KQ_X86)
struct Scales16 {
  int s[16];
};
HWY_INLINE Scales16 ScalesOf(const Bytes16& b) {
  Scales16 r;
  for (int k = 0; k < 16; ++k) r.s[k] = Byte(b, k);
  return r;
}
HWY_INLINE ISum Dot2S(W32 u, const int8_t* x, const Scales16& s, int v) {
  return Dot2(u, x, s.s[2 * v], s.s[2 * v + 1]);
}
#endif

// ---------------------------------------------------------------------------------------------
// Tiles: R consecutive weight rows (row_bytes apart) times TT tokens (xq_stride apart); writes
// y[t * y_stride + r]. kAlt picks the batch order (Q4_K 4-token tiles, Q6_K tiled).

template <int R, int TT>
HWY_INLINE void TileQ5_0(const std::byte* w0, size_t row_bytes, const std::byte* xq, size_t xq_stride, int64_t n,
                         float* y, size_t y_stride) {
  const int64_t nb = n / kQK;
  Acc8 acc[R][TT];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < TT; ++t) acc[r][t] = ZeroAcc();
  for (int64_t b = 0; b < nb; ++b) {
    const BlockQ8_0* xb[TT];
    ISum neg16[TT];  // the levels' offset: -16 * (group sums of x)
    float dx[TT];
    for (int t = 0; t < TT; ++t) {
      xb[t] = reinterpret_cast<const BlockQ8_0*>(xq + t * xq_stride) + b;
      neg16[t] = ISub(IZero(), Dot2(Const32(16), xb[t]->qs, 1, 1));
      dx[t] = HalfToFloat(xb[t]->d);
    }
    for (int r = 0; r < R; ++r) {
      const BlockQ5_0& wb = reinterpret_cast<const BlockQ5_0*>(w0 + static_cast<size_t>(r) * row_bytes)[b];
      const W32 u = Q5Levels(wb);
      const float dw = HalfToFloat(wb.d);
      for (int t = 0; t < TT; ++t) Fma(acc[r][t], DotAcc(neg16[t], u, xb[t]->qs), dw * dx[t]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < TT; ++t) y[t * y_stride + r] = Sum(acc[r][t]);
}

// Q5_1 (one order): per block the exact integer sum, then sum += dw * dx * isum + m * s.
template <int R, int TT>
HWY_INLINE void TileQ5_1(const std::byte* w0, size_t row_bytes, const std::byte* xq, size_t xq_stride, int64_t n,
                         float* y, size_t y_stride) {
  const int64_t nb = n / kQK;
  float sum[R][TT] = {};
  for (int64_t b = 0; b < nb; ++b) {
    const BlockQ8_1* xb[TT];
    float dx[TT], sx[TT];
    for (int t = 0; t < TT; ++t) {
      xb[t] = reinterpret_cast<const BlockQ8_1*>(xq + t * xq_stride) + b;
      dx[t] = HalfToFloat(xb[t]->d);
      sx[t] = HalfToFloat(xb[t]->s);
    }
    for (int r = 0; r < R; ++r) {
      const BlockQ5_1& wb = reinterpret_cast<const BlockQ5_1*>(w0 + static_cast<size_t>(r) * row_bytes)[b];
      const W32 u = Q5Levels(wb);
      const float dw = HalfToFloat(wb.d), mw = HalfToFloat(wb.m);
      for (int t = 0; t < TT; ++t) {
        const float isum = static_cast<float>(HSum(DotAcc(IZero(), u, xb[t]->qs)));
        sum[r][t] += dw * dx[t] * isum + mw * sx[t];
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < TT; ++t) y[t * y_stride + r] = sum[r][t];
}

#if defined(EDGELM_KQ_X86)
// Q4_K's paired order for a tile of 4 tokens with the float steps in "token lanes": lane t of
// an xmm register belongs to token t, so each token's FMAs are the reference's (same operands,
// same sequence), four at a time. The per-pair sums of the four tokens come out of one
// horizontal-add transpose; the min sums m * bsum are below 2^24, exact in float.
template <int R>
HWY_INLINE void TileQ4_KPaired4(const std::byte* w0, size_t row_bytes, const std::byte* xq, size_t xq_stride,
                                int64_t n, float* y, size_t y_stride) {
  constexpr int TT = 4;
  const int64_t nb = n / kQK_K;
  __m128 acc[R], accm[R];
  for (int r = 0; r < R; ++r) acc[r] = accm[r] = _mm_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const BlockQ8_K* xb[TT];
    for (int t = 0; t < TT; ++t) xb[t] = reinterpret_cast<const BlockQ8_K*>(xq + t * xq_stride) + b;
    const __m128 dx = _mm_setr_ps(xb[0]->d, xb[1]->d, xb[2]->d, xb[3]->d);
    __m128 bsum[8];  // per sub-block of 32: the four tokens' activation sums
    for (int j = 0; j < 8; ++j) {
      alignas(16) float v[TT];
      for (int t = 0; t < TT; ++t) v[t] = static_cast<float>(int32_t{xb[t]->bsums[2 * j]} + xb[t]->bsums[2 * j + 1]);
      bsum[j] = _mm_load_ps(v);
    }
    for (int r = 0; r < R; ++r) {
      const BlockQ4_K& wb = reinterpret_cast<const BlockQ4_K*>(w0 + static_cast<size_t>(r) * row_bytes)[b];
      int sc[8], m[8];
      for (int j = 0; j < 8; ++j) {
        const auto [sj, mj] = q4_k_scale_min(wb.scales, j);
        sc[j] = sj;
        m[j] = mj;
      }
      const __m128 d = _mm_mul_ps(_mm_set1_ps(HalfToFloat(wb.d)), dx);
      const __m128 dm = _mm_mul_ps(_mm_set1_ps(HalfToFloat(wb.dmin)), dx);
      for (int c = 0; c < 4; ++c) {
        const W32 lo = Nib(wb.qs + 32 * c, false), hi = Nib(wb.qs + 32 * c, true);
        ISum s[TT];
        for (int t = 0; t < TT; ++t)
          s[t] = IAdd(Dot2(lo, xb[t]->qs + 64 * c, sc[2 * c], sc[2 * c]),
                      Dot2(hi, xb[t]->qs + 64 * c + 32, sc[2 * c + 1], sc[2 * c + 1]));
        const __m256i s0123 =
            _mm256_hadd_epi32(_mm256_hadd_epi32(s[0].v, s[1].v), _mm256_hadd_epi32(s[2].v, s[3].v));
        const __m128i isum = _mm_add_epi32(_mm256_castsi256_si128(s0123), _mm256_extracti128_si256(s0123, 1));
        const __m128 msum = _mm_add_ps(_mm_mul_ps(_mm_set1_ps(static_cast<float>(m[2 * c])), bsum[2 * c]),
                                       _mm_mul_ps(_mm_set1_ps(static_cast<float>(m[2 * c + 1])), bsum[2 * c + 1]));
        acc[r] = _mm_fmadd_ps(_mm_cvtepi32_ps(isum), d, acc[r]);
        accm[r] = _mm_fmadd_ps(msum, dm, accm[r]);
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    alignas(16) float out[TT];
    _mm_store_ps(out, _mm_sub_ps(acc[r], accm[r]));
    for (int t = 0; t < TT; ++t) y[t * y_stride + r] = out[t];
  }
}
#endif

template <bool kAlt, int R, int TT>
HWY_INLINE void TileQ4_K(const std::byte* w0, size_t row_bytes, const std::byte* xq, size_t xq_stride, int64_t n,
                         float* y, size_t y_stride) {
  const int64_t nb = n / kQK_K;
  float acc[R][TT] = {}, accm[R][TT] = {};
  for (int64_t b = 0; b < nb; ++b) {
    const BlockQ8_K* xb[TT];
    int32_t bs[TT][8];  // activation sums of each sub-block of 32
    for (int t = 0; t < TT; ++t) {
      xb[t] = reinterpret_cast<const BlockQ8_K*>(xq + t * xq_stride) + b;
      for (int j = 0; j < 8; ++j) bs[t][j] = int32_t{xb[t]->bsums[2 * j]} + xb[t]->bsums[2 * j + 1];
    }
    for (int r = 0; r < R; ++r) {
      const BlockQ4_K& wb = reinterpret_cast<const BlockQ4_K*>(w0 + static_cast<size_t>(r) * row_bytes)[b];
      int sc[8], m[8];
      for (int j = 0; j < 8; ++j) {
        const auto [s, mm] = q4_k_scale_min(wb.scales, j);
        sc[j] = s;
        m[j] = mm;
      }
      const float dw = HalfToFloat(wb.d), dmw = HalfToFloat(wb.dmin);
      ISum isum[TT];
      for (int t = 0; t < TT; ++t) isum[t] = IZero();
      for (int c = 0; c < 4; ++c) {
        const W32 lo = Nib(wb.qs + 32 * c, false), hi = Nib(wb.qs + 32 * c, true);
        for (int t = 0; t < TT; ++t) {
          const ISum s = IAdd(Dot2(lo, xb[t]->qs + 64 * c, sc[2 * c], sc[2 * c]),
                              Dot2(hi, xb[t]->qs + 64 * c + 32, sc[2 * c + 1], sc[2 * c + 1]));
          if constexpr (kAlt) {  // one float step per pair of sub-blocks
            const int32_t msum = m[2 * c] * bs[t][2 * c] + m[2 * c + 1] * bs[t][2 * c + 1];
            acc[r][t] = std::fma(static_cast<float>(HSum(s)), dw * xb[t]->d, acc[r][t]);
            accm[r][t] = std::fma(static_cast<float>(msum), dmw * xb[t]->d, accm[r][t]);
          } else {
            isum[t] = IAdd(isum[t], s);
          }
        }
      }
      if constexpr (!kAlt) {
        for (int t = 0; t < TT; ++t) {
          int32_t msum = 0;
          for (int j = 0; j < 8; ++j) msum += m[j] * bs[t][j];
          acc[r][t] = std::fma(static_cast<float>(HSum(isum[t])), dw * xb[t]->d, acc[r][t]);
          accm[r][t] = std::fma(static_cast<float>(msum), dmw * xb[t]->d, accm[r][t]);
        }
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < TT; ++t) y[t * y_stride + r] = acc[r][t] - accm[r][t];
}

template <bool kAlt, int R, int TT>
HWY_INLINE void TileQ6_K(const std::byte* w0, size_t row_bytes, const std::byte* xq, size_t xq_stride, int64_t n,
                         float* y, size_t y_stride) {
  const int64_t nb = n / kQK_K;
  Acc8 acc[R][TT];
  float sum[R][TT] = {};
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < TT; ++t) acc[r][t] = ZeroAcc();
  for (int64_t b = 0; b < nb; ++b) {
    const BlockQ8_K* xb[TT];
    for (int t = 0; t < TT; ++t) xb[t] = reinterpret_cast<const BlockQ8_K*>(xq + t * xq_stride) + b;
    for (int r = 0; r < R; ++r) {
      const BlockQ6_K& wb = reinterpret_cast<const BlockQ6_K*>(w0 + static_cast<size_t>(r) * row_bytes)[b];
      ISum lanes[TT];
      for (int t = 0; t < TT; ++t) lanes[t] = IZero();
      for (int h = 0; h < 2; ++h) {
        W32 u[4];
        Q6Levels(wb.ql + 64 * h, wb.qh + 32 * h, u);
        for (int q = 0; q < 4; ++q) {
          const int v = 4 * h + q;
          for (int t = 0; t < TT; ++t)
            lanes[t] = IAdd(lanes[t], Dot2(u[q], xb[t]->qs + 32 * v, wb.scales[2 * v], wb.scales[2 * v + 1]));
        }
      }
      const float dw = HalfToFloat(wb.d);
      for (int t = 0; t < TT; ++t) {
        const ISum l = ISub(lanes[t], IMul32(PairDot16(wb.scales, xb[t]->bsums)));
        if constexpr (kAlt) {
          sum[r][t] = std::fma(static_cast<float>(HSum(l)) * dw, xb[t]->d, sum[r][t]);
        } else {
          Fma(acc[r][t], l, xb[t]->d * dw);
        }
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < TT; ++t) y[t * y_stride + r] = kAlt ? sum[r][t] : Sum(acc[r][t]);
}

// Q2_K, Q3_K and Q5_K (one order each, for every token): per super-block the exact integer
// sums, then the reference's float step (no FMA):
//   Q2_K / Q5_K: sum += dw * dx * isum - dmin * dx * msum
//   Q3_K:        sum += dw * dx * isum
// Each 32-element run v of a super-block is one Dot2 (Q2_K / Q3_K: sub-blocks 2v and 2v + 1
// of 16; Q5_K: sub-block v of 32). A tile's float steps are done together, pair i = r * TT + t
// of (row, token); x86 and NEON do four pairs at once in the lanes of a 128-bit register (the
// same operations on the same operands, lane by lane).
#if defined(EDGELM_KQ_X86)
HWY_INLINE __m128i HSum4(const ISum* s) {  // lane i: HSum(s[i])
  const __m256i s01 = _mm256_hadd_epi32(s[0].v, s[1].v), s23 = _mm256_hadd_epi32(s[2].v, s[3].v);
  const __m256i s0123 = _mm256_hadd_epi32(s01, s23);
  return _mm_add_epi32(_mm256_castsi256_si128(s0123), _mm256_extracti128_si256(s0123, 1));
}
#elif defined(EDGELM_KQ_NEON)
HWY_INLINE int32x4_t HSum4(const ISum* s) {
  int32x4_t a[4];
  for (int i = 0; i < 4; ++i) a[i] = vaddq_s32(s[i].lo, s[i].hi);
  return vpaddq_s32(vpaddq_s32(a[0], a[1]), vpaddq_s32(a[2], a[3]));
}
#endif

// sum[i] += dw[i] * dx[i] * isum_i (- dmw[i] * dx[i] * msum_i with kMin), isum_i = HSum(is[i]).
template <int N, bool kMin>
HWY_INLINE void FloatSteps(float* sum, const ISum* is, const ISum* ms, const float* dw, const float* dmw,
                           const float* dx) {
  int i = 0;
#if defined(EDGELM_KQ_X86)
  for (; i + 4 <= N; i += 4) {
    const __m128 x = _mm_loadu_ps(dx + i);
    __m128 step = _mm_mul_ps(_mm_mul_ps(_mm_loadu_ps(dw + i), x), _mm_cvtepi32_ps(HSum4(is + i)));
    if constexpr (kMin)
      step = _mm_sub_ps(step, _mm_mul_ps(_mm_mul_ps(_mm_loadu_ps(dmw + i), x), _mm_cvtepi32_ps(HSum4(ms + i))));
    _mm_storeu_ps(sum + i, _mm_add_ps(_mm_loadu_ps(sum + i), step));
  }
#elif defined(EDGELM_KQ_NEON)
  for (; i + 4 <= N; i += 4) {
    const float32x4_t x = vld1q_f32(dx + i);
    float32x4_t step = vmulq_f32(vmulq_f32(vld1q_f32(dw + i), x), vcvtq_f32_s32(HSum4(is + i)));
    if constexpr (kMin)
      step = vsubq_f32(step, vmulq_f32(vmulq_f32(vld1q_f32(dmw + i), x), vcvtq_f32_s32(HSum4(ms + i))));
    vst1q_f32(sum + i, vaddq_f32(vld1q_f32(sum + i), step));
  }
#endif
  for (; i < N; ++i) {
    const float isum = static_cast<float>(HSum(is[i]));
    if constexpr (kMin) {
      sum[i] += dw[i] * dx[i] * isum - dmw[i] * dx[i] * static_cast<float>(HSum(ms[i]));
    } else {
      sum[i] += dw[i] * dx[i] * isum;
    }
  }
}

// The super-block walk of Q2_K, Q3_K and Q5_K: for each weight block of each row, `row` fills
// the TT integer sums (and, with kMin, the TT min sums against the Q8_K bsums) and gives the
// block's d (and dmin); FloatSteps then does the float part in the reference's order.
template <class Block, bool kMin, int R, int TT, class RowFn>
HWY_INLINE void TileSuperBlocks(const std::byte* w0, size_t row_bytes, const std::byte* xq, size_t xq_stride,
                                int64_t n, float* y, size_t y_stride, const RowFn& row) {
  const int64_t nb = n / kQK_K;
  float sum[R * TT] = {};
  for (int64_t b = 0; b < nb; ++b) {
    const BlockQ8_K* xb[TT];
    for (int t = 0; t < TT; ++t) xb[t] = reinterpret_cast<const BlockQ8_K*>(xq + t * xq_stride) + b;
    ISum is[R * TT], ms[R * TT];
    float dw[R * TT], dmw[R * TT], dx[R * TT];
    for (int r = 0; r < R; ++r) {
      const Block& wb = reinterpret_cast<const Block*>(w0 + static_cast<size_t>(r) * row_bytes)[b];
      float d = 0, dm = 0;
      row(wb, xb, is + r * TT, ms + r * TT, d, dm);
      for (int t = 0; t < TT; ++t) {
        dw[r * TT + t] = d;
        dmw[r * TT + t] = dm;
        dx[r * TT + t] = xb[t]->d;
      }
    }
    FloatSteps<R * TT, kMin>(sum, is, ms, dw, dmw, dx);
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < TT; ++t) y[t * y_stride + r] = sum[r * TT + t];
}

template <int R, int TT>
HWY_INLINE void TileQ2_K(const std::byte* w0, size_t row_bytes, const std::byte* xq, size_t xq_stride, int64_t n,
                         float* y, size_t y_stride) {
  TileSuperBlocks<BlockQ2_K, true, R, TT>(
      w0, row_bytes, xq, xq_stride, n, y, y_stride,
      [](const BlockQ2_K& wb, const BlockQ8_K* const* xb, ISum* isum, ISum* msum, float& d, float& dm) {
        Bytes16 sc, mn;  // low nibbles: scales; high nibbles: mins
        for (int k = 0; k < 4; ++k) {
          const uint32_t w = Load32(wb.scales + 4 * k);
          sc.w[k] = w & 0x0F0F0F0Fu;
          mn.w[k] = (w >> 4) & 0x0F0F0F0Fu;
        }
        const Scales16 scales = ScalesOf(sc);
        for (int t = 0; t < TT; ++t) isum[t] = IZero();
        for (int v = 0; v < 8; ++v) {
          const W32 u = Bits2(wb.qs + 32 * (v / 4), 2 * (v % 4));
          for (int t = 0; t < TT; ++t) isum[t] = IAdd(isum[t], Dot2S(u, xb[t]->qs + 32 * v, scales, v));
        }
        for (int t = 0; t < TT; ++t) msum[t] = Dot16(mn, xb[t]->bsums);
        d = HalfToFloat(wb.d);
        dm = HalfToFloat(wb.dmin);
      });
}

// Q3_K: levels biased by 4 (0..7), the bias taken back through the activation sums:
// isum = sum_v Dot2(levels + 4) - sum_j (4 * sc_j) * bsum_j (4 * sc_j fits in int8). The 6-bit
// scales (see q3_k_scale) are unpacked four at a time in 32-bit words.
template <int R, int TT>
HWY_INLINE void TileQ3_K(const std::byte* w0, size_t row_bytes, const std::byte* xq, size_t xq_stride, int64_t n,
                         float* y, size_t y_stride) {
  TileSuperBlocks<BlockQ3_K, false, R, TT>(
      w0, row_bytes, xq, xq_stride, n, y, y_stride,
      [](const BlockQ3_K& wb, const BlockQ8_K* const* xb, ISum* isum, ISum*, float& d, float&) {
        const uint32_t a0 = Load32(wb.scales), a1 = Load32(wb.scales + 4), a2 = Load32(wb.scales + 8);
        const uint32_t m4 = 0x0F0F0F0Fu, m2 = 0x03030303u;
        const uint32_t biased[4] = {(a0 & m4) | ((a2 & m2) << 4), (a1 & m4) | (((a2 >> 2) & m2) << 4),
                                    ((a0 >> 4) & m4) | (((a2 >> 4) & m2) << 4),
                                    ((a1 >> 4) & m4) | (((a2 >> 6) & m2) << 4)};
        Bytes16 sc, sc4;  // the scales (biased - 32, sign-extended from 6 bits), and 4 times them
        for (int k = 0; k < 4; ++k) {
          const uint32_t t = biased[k] ^ 0x20202020u, sign = t & 0x20202020u;
          sc.w[k] = t | (sign << 1) | (sign << 2);
          sc4.w[k] = (biased[k] << 2) ^ 0x80808080u;
        }
        const Scales16 scales = ScalesOf(sc);
        for (int t = 0; t < TT; ++t) isum[t] = ISub(IZero(), Dot16(sc4, xb[t]->bsums));
        for (int v = 0; v < 8; ++v) {
          const W32 u = OrBit(Bits2(wb.qs + 32 * (v / 4), 2 * (v % 4)), wb.hmask, v, 4);
          for (int t = 0; t < TT; ++t) isum[t] = IAdd(isum[t], Dot2S(u, xb[t]->qs + 32 * v, scales, v));
        }
        d = HalfToFloat(wb.d);
      });
}

// Q5_K: the 6-bit scales and mins (see q4_k_scale_min) unpacked four at a time in 32-bit words,
// each doubled (sub-block v of 32 spans both halves of run v, and two bsums).
template <int R, int TT>
HWY_INLINE void TileQ5_K(const std::byte* w0, size_t row_bytes, const std::byte* xq, size_t xq_stride, int64_t n,
                         float* y, size_t y_stride) {
  TileSuperBlocks<BlockQ5_K, true, R, TT>(
      w0, row_bytes, xq, xq_stride, n, y, y_stride,
      [](const BlockQ5_K& wb, const BlockQ8_K* const* xb, ISum* isum, ISum* msum, float& d, float& dm) {
        const uint32_t a0 = Load32(wb.scales), a1 = Load32(wb.scales + 4), a2 = Load32(wb.scales + 8);
        const uint32_t m6 = 0x3F3F3F3Fu, m4 = 0x0F0F0F0Fu, m2 = 0x03030303u;
        const Scales16 scales = ScalesOf(Dup8(a0 & m6, (a2 & m4) | (((a0 >> 6) & m2) << 4)));
        const Bytes16 mins = Dup8(a1 & m6, ((a2 >> 4) & m4) | (((a1 >> 6) & m2) << 4));
        for (int t = 0; t < TT; ++t) isum[t] = IZero();
        for (int v = 0; v < 8; ++v) {
          const W32 u = OrBit(Nib(wb.qs + 32 * (v / 2), v % 2 != 0), wb.qh, v, 16);
          for (int t = 0; t < TT; ++t) isum[t] = IAdd(isum[t], Dot2S(u, xb[t]->qs + 32 * v, scales, v));
        }
        for (int t = 0; t < TT; ++t) msum[t] = Dot16(mins, xb[t]->bsums);
        d = HalfToFloat(wb.d);
        dm = HalfToFloat(wb.dmin);
      });
}

// ---------------------------------------------------------------------------------------------
// Drivers.

enum class KType { kQ5_0, kQ5_1, kQ2_K, kQ3_K, kQ4_K, kQ5_K, kQ6_K };

template <KType K, bool kAlt, int R, int TT>
HWY_INLINE void Tile(const std::byte* w0, size_t row_bytes, const std::byte* xq, size_t xq_stride, int64_t n, float* y,
                     size_t y_stride) {
  if constexpr (K == KType::kQ5_0) {
    TileQ5_0<R, TT>(w0, row_bytes, xq, xq_stride, n, y, y_stride);
  } else if constexpr (K == KType::kQ5_1) {
    TileQ5_1<R, TT>(w0, row_bytes, xq, xq_stride, n, y, y_stride);
  } else if constexpr (K == KType::kQ2_K) {
    TileQ2_K<R, TT>(w0, row_bytes, xq, xq_stride, n, y, y_stride);
  } else if constexpr (K == KType::kQ3_K) {
    TileQ3_K<R, TT>(w0, row_bytes, xq, xq_stride, n, y, y_stride);
  } else if constexpr (K == KType::kQ5_K) {
    TileQ5_K<R, TT>(w0, row_bytes, xq, xq_stride, n, y, y_stride);
  } else if constexpr (K == KType::kQ4_K) {
#if defined(EDGELM_KQ_X86)
    if constexpr (kAlt && TT == 4) {
      TileQ4_KPaired4<R>(w0, row_bytes, xq, xq_stride, n, y, y_stride);
      return;
    }
#endif
    TileQ4_K<kAlt, R, TT>(w0, row_bytes, xq, xq_stride, n, y, y_stride);
  } else {
    TileQ6_K<kAlt, R, TT>(w0, row_bytes, xq, xq_stride, n, y, y_stride);
  }
}

// Register budget: 32 vector registers with AVX-512 (used by its 256-bit code too) and on NEON,
// 16 with AVX2. Q5_0's tile keeps R x TT float-lane accumulators; the K-quants' fewer.
#if (HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3) || defined(EDGELM_KQ_NEON)
constexpr int kVecRows = 4, kTileToks = 4;
template <KType K>
constexpr int kTileRows = K == KType::kQ5_0 ? 4 : 2;
#elif defined(EDGELM_KQ_X86)
constexpr int kVecRows = 4, kTileToks = 4;
template <KType K>
constexpr int kTileRows = 2;
#else
constexpr int kVecRows = 2, kTileToks = 4;
template <KType K>
constexpr int kTileRows = 1;
#endif
constexpr int64_t kPrefetchTiles = 3;  // as simd_quant.cpp: into L2, three tiles ahead

HWY_INLINE void PrefetchRange(const std::byte* p, size_t bytes) {
  for (size_t i = 0; i < bytes; i += 64) __builtin_prefetch(p + i, 0, 2);
}

// One token, rows [r0, r1).
template <KType K, bool kAlt>
void MatVecRows(const std::byte* w, size_t row_bytes, const std::byte* x, int64_t n, float* y, int64_t r0,
                int64_t r1) {
  const size_t tile_bytes = kVecRows * row_bytes;
  const std::byte* end = w + r1 * row_bytes;
  int64_t r = r0;
  for (; r + kVecRows <= r1; r += kVecRows) {
    const std::byte* ahead = w + r * row_bytes + kPrefetchTiles * tile_bytes;
    if (ahead + tile_bytes <= end) PrefetchRange(ahead, tile_bytes);
    Tile<K, kAlt, kVecRows, 1>(w + r * row_bytes, row_bytes, x, 0, n, y + r, 0);
  }
  for (; r < r1; ++r) Tile<K, kAlt, 1, 1>(w + r * row_bytes, row_bytes, x, 0, n, y + r, 0);
}

// Tokens [t0, t1) in tiles of kTileToks (the rest one at a time), all in order kAlt.
template <KType K, bool kAlt>
void MatMatRows(const std::byte* w, size_t row_bytes, const std::byte* xq, size_t xq_stride, int64_t n, float* y,
                size_t y_stride, int64_t t0, int64_t t1, int64_t r0, int64_t r1) {
  int64_t t = t0;
  for (; t + kTileToks <= t1; t += kTileToks) {
    const std::byte* xt = xq + t * xq_stride;
    float* yt = y + t * y_stride;
    int64_t r = r0;
    for (; r + kTileRows<K> <= r1; r += kTileRows<K>)
      Tile<K, kAlt, kTileRows<K>, kTileToks>(w + r * row_bytes, row_bytes, xt, xq_stride, n, yt + r, y_stride);
    for (; r < r1; ++r) Tile<K, kAlt, 1, kTileToks>(w + r * row_bytes, row_bytes, xt, xq_stride, n, yt + r, y_stride);
  }
  for (; t < t1; ++t) MatVecRows<K, kAlt>(w, row_bytes, xq + t * xq_stride, n, y + t * y_stride, r0, r1);
}

#if HWY_TARGET == HWY_AVX3_DL
// Q5_0 prefill on AVX-512 VNNI in "token lanes" (as simd_quant.cpp's TokenLanesGemm): lane t of
// a zmm register belongs to token t of a group of 16 and each of a row's eight group lanes
// (elements 4k..4k+3 of every block) has its own accumulator, so every token's arithmetic is
// the reference's. A weight dword (four levels 0..31) is broadcast, and one vpdpbusd advances
// the 16 tokens' group-k sums from -16 * (their group-k activation sums).
constexpr int kLaneToks = 16, kLaneRows = 2;
constexpr int64_t kLaneMinTokens = 8;

struct Q5LaneScratch {
  std::vector<int32_t> x;      // [group][block][k][lane]: the 4 activation bytes of dword k
  std::vector<int32_t> xcorr;  // [group][block][k][lane]: -16 * their sum
  std::vector<float> d;        // [group][block][lane]: dx
  std::vector<uint8_t> w;      // [row][block][32]: levels
  std::vector<float> wd;       // [row][block]
};

HWY_INLINE __m512i Dpbusd512(__m512i acc, __m512i u, __m512i s) {
  asm("vpdpbusd %[s], %[u], %[acc]" : [acc] "+v"(acc) : [u] "v"(u), [s] "vm"(s));
  return acc;
}

void Q5_0TokenLanes(const TensorView& w, const std::byte* xq, size_t xq_stride, float* y, size_t y_stride,
                    int64_t n_tok, int64_t r0, int64_t r1) {
  static thread_local Q5LaneScratch p;
  const int64_t nb = w.ne[0] / kQK;
  const size_t row_bytes = w.row_bytes();
  const int64_t groups = (n_tok + kLaneToks - 1) / kLaneToks;
  const size_t cells = static_cast<size_t>(groups * nb * 8 * kLaneToks);
  p.x.assign(cells, 0);  // padding lanes: x = 0, d = 0
  p.xcorr.assign(cells, 0);
  p.d.assign(static_cast<size_t>(groups * nb * kLaneToks), 0.0f);
  for (int64_t t = 0; t < n_tok; ++t) {
    const int64_t g = t / kLaneToks, lane = t % kLaneToks;
    const BlockQ8_0* xb = reinterpret_cast<const BlockQ8_0*>(xq + t * xq_stride);
    for (int64_t b = 0; b < nb; ++b) {
      const size_t gb = static_cast<size_t>(g * nb + b);
      for (int k = 0; k < 8; ++k) {
        const size_t cell = (gb * 8 + k) * kLaneToks + lane;
        std::memcpy(&p.x[cell], xb[b].qs + 4 * k, 4);
        const int8_t* q = xb[b].qs + 4 * k;
        p.xcorr[cell] = -16 * (int32_t{q[0]} + q[1] + q[2] + q[3]);
      }
      p.d[gb * kLaneToks + lane] = HalfToFloat(xb[b].d);
    }
  }
  for (int64_t r = r0; r < r1; r += kLaneRows) {
    const int rows = static_cast<int>(std::min<int64_t>(kLaneRows, r1 - r));
    p.w.assign(static_cast<size_t>(kLaneRows * nb * kQK), 0);  // padding rows: zero weights
    p.wd.assign(static_cast<size_t>(kLaneRows * nb), 0.0f);
    for (int i = 0; i < rows; ++i) {
      const BlockQ5_0* wb = reinterpret_cast<const BlockQ5_0*>(w.data + static_cast<size_t>(r + i) * row_bytes);
      for (int64_t b = 0; b < nb; ++b) {
        const size_t rb = static_cast<size_t>(i * nb + b);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(&p.w[rb * kQK]), Q5Levels(wb[b]).v);
        p.wd[rb] = HalfToFloat(wb[b].d);
      }
    }
    for (int64_t g = 0; g < groups; ++g) {
      __m512 acc[kLaneRows][8];
      for (int i = 0; i < kLaneRows; ++i)
        for (int k = 0; k < 8; ++k) acc[i][k] = _mm512_setzero_ps();
      for (int64_t b = 0; b < nb; ++b) {
        const size_t gb = static_cast<size_t>(g * nb + b);
        const __m512 dx = _mm512_loadu_ps(&p.d[gb * kLaneToks]);
        __m512 scale[kLaneRows];
        for (int i = 0; i < kLaneRows; ++i)
          scale[i] = _mm512_mul_ps(_mm512_set1_ps(p.wd[static_cast<size_t>(i * nb + b)]), dx);
        for (int k = 0; k < 8; ++k) {
          const size_t cell = (gb * 8 + k) * kLaneToks;
          const __m512i x = _mm512_loadu_si512(&p.x[cell]);
          const __m512i init = _mm512_loadu_si512(&p.xcorr[cell]);
          for (int i = 0; i < kLaneRows; ++i) {
            int32_t wdw;
            std::memcpy(&wdw, &p.w[static_cast<size_t>((i * nb + b) * kQK + 4 * k)], 4);
            const __m512i isum = Dpbusd512(init, _mm512_set1_epi32(wdw), x);
            acc[i][k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), scale[i], acc[i][k]);
          }
        }
      }
      const int64_t toks = std::min<int64_t>(kLaneToks, n_tok - g * kLaneToks);
      for (int i = 0; i < rows; ++i) {  // the reference's lane sum
        const __m512 a0 = _mm512_add_ps(acc[i][0], acc[i][4]), a1 = _mm512_add_ps(acc[i][1], acc[i][5]);
        const __m512 a2 = _mm512_add_ps(acc[i][2], acc[i][6]), a3 = _mm512_add_ps(acc[i][3], acc[i][7]);
        alignas(64) float lanes[kLaneToks];
        _mm512_store_ps(lanes, _mm512_add_ps(_mm512_add_ps(a0, a2), _mm512_add_ps(a1, a3)));
        for (int64_t t = 0; t < toks; ++t) y[(g * kLaneToks + t) * y_stride + r + i] = lanes[t];
      }
    }
  }
}
#endif  // HWY_TARGET == HWY_AVX3_DL

void MatmulKQuant(const TensorView& w, const std::byte* xq, size_t xq_stride, float* y, size_t y_stride,
                  int64_t n_tok, int64_t r0, int64_t r1) {
  const int64_t n = w.ne[0];
  const size_t rb = w.row_bytes();
  switch (w.type) {
    case DType::Q5_0:  // one order for every token
#if HWY_TARGET == HWY_AVX3_DL
      if (n_tok >= kLaneMinTokens) return Q5_0TokenLanes(w, xq, xq_stride, y, y_stride, n_tok, r0, r1);
#endif
      return MatMatRows<KType::kQ5_0, false>(w.data, rb, xq, xq_stride, n, y, y_stride, 0, n_tok, r0, r1);
    case DType::Q5_1:
      return MatMatRows<KType::kQ5_1, false>(w.data, rb, xq, xq_stride, n, y, y_stride, 0, n_tok, r0, r1);
    case DType::Q2_K:  // one order for every token
      return MatMatRows<KType::kQ2_K, false>(w.data, rb, xq, xq_stride, n, y, y_stride, 0, n_tok, r0, r1);
    case DType::Q3_K:
      return MatMatRows<KType::kQ3_K, false>(w.data, rb, xq, xq_stride, n, y, y_stride, 0, n_tok, r0, r1);
    case DType::Q5_K:
      return MatMatRows<KType::kQ5_K, false>(w.data, rb, xq, xq_stride, n, y, y_stride, 0, n_tok, r0, r1);
    case DType::Q4_K: {  // 4-token tiles in the paired order, the n_tok % 4 left over one at a time
      const int64_t tiled = n_tok - n_tok % 4;
      MatMatRows<KType::kQ4_K, true>(w.data, rb, xq, xq_stride, n, y, y_stride, 0, tiled, r0, r1);
      for (int64_t t = tiled; t < n_tok; ++t)
        MatVecRows<KType::kQ4_K, false>(w.data, rb, xq + t * xq_stride, n, y + t * y_stride, r0, r1);
      return;
    }
    case DType::Q6_K:
      if (n_tok >= 8) return MatMatRows<KType::kQ6_K, true>(w.data, rb, xq, xq_stride, n, y, y_stride, 0, n_tok, r0, r1);
      return MatMatRows<KType::kQ6_K, false>(w.data, rb, xq, xq_stride, n, y, y_stride, 0, n_tok, r0, r1);
    default: throw Error("internal: no K-quant matmul for " + std::string(dtype_name(w.type)));
  }
}

template <KType K>
float VecDot(int64_t n, const void* w, const void* x) {
  float out;
  Tile<K, false, 1, 1>(static_cast<const std::byte*>(w), 0, static_cast<const std::byte*>(x), 0, n, &out, 0);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Q8_K activation quantization, bit-identical to q8_k_from_float: d from the first element of
// largest magnitude (NaNs ignored), q = min(127, round-half-even(x * -127 / max)), and 0 where
// that product is not finite.
namespace hn = hwy::HWY_NAMESPACE;

void QuantizeQ8_K(const float* src, void* dst, int64_t n) {
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::Rebind<int8_t, decltype(di)> d8;
  const size_t N = hn::Lanes(df);
  BlockQ8_K* blocks = static_cast<BlockQ8_K*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float* x = src + i * kQK_K;
    BlockQ8_K& b = blocks[i];
    auto vmax = hn::Zero(df);
    for (size_t j = 0; j < kQK_K; j += N) {
      const auto v = hn::LoadU(df, x + j);
      vmax = hn::Max(vmax, hn::IfThenElseZero(hn::Eq(v, v), hn::Abs(v)));
    }
    const float amax = hn::GetLane(hn::MaxOfLanes(df, vmax));
    if (amax == 0) {
      std::memset(&b, 0, sizeof(BlockQ8_K));
      continue;
    }
    float max = 0;
    for (int j = 0; j < kQK_K; ++j) {
      if (std::fabs(x[j]) == amax) {
        max = x[j];
        break;
      }
    }
    const float iscale = -127.0f / max;
    const auto vs = hn::Set(df, iscale);
    const auto v127 = hn::Set(di, 127);
    for (size_t j = 0; j < kQK_K; j += N) {
      const auto v = hn::Mul(hn::LoadU(df, x + j), vs);
      // Non-finite products (an infinite x, or 1 / tiny max overflowing) give 0, as in the
      // reference; finite ones are within +-127.00002 here, never near its pin at 2^22.
      const auto finite = hn::RebindMask(di, hn::Lt(hn::Abs(v), hn::Set(df, 4194304.0f)));
      const auto q = hn::Min(hn::IfThenElseZero(finite, hn::NearestInt(v)), v127);
      hn::StoreU(hn::DemoteTo(d8, q), d8, b.qs + j);
    }
    for (int g = 0; g < kQK_K / 16; ++g) {
      int sum = 0;
      for (int j = 0; j < 16; ++j) sum += b.qs[16 * g + j];
      b.bsums[g] = static_cast<int16_t>(sum);
    }
    b.d = 1 / iscale;
  }
}

}  // namespace kq

const simd::KQuantKernels* GetKQuantKernels() {
  static const simd::KQuantKernels k = [] {
    simd::KQuantKernels q;
    q.q8_k = *reference_kquant_ops(DType::Q8_K);
    q.q8_k.from_float = kq::QuantizeQ8_K;
    q.q5_0 = *reference_kquant_ops(DType::Q5_0);
    q.q5_0.vec_dot = kq::VecDot<kq::KType::kQ5_0>;
    q.q5_1 = *reference_kquant_ops(DType::Q5_1);
    q.q5_1.vec_dot = kq::VecDot<kq::KType::kQ5_1>;
    q.q4_k = *reference_kquant_ops(DType::Q4_K);
    q.q4_k.vec_dot = kq::VecDot<kq::KType::kQ4_K>;
    q.q2_k = *reference_kquant_ops(DType::Q2_K);
    q.q2_k.vec_dot = kq::VecDot<kq::KType::kQ2_K>;
    q.q3_k = *reference_kquant_ops(DType::Q3_K);
    q.q3_k.vec_dot = kq::VecDot<kq::KType::kQ3_K>;
    q.q5_k = *reference_kquant_ops(DType::Q5_K);
    q.q5_k.vec_dot = kq::VecDot<kq::KType::kQ5_K>;
    q.q6_k = *reference_kquant_ops(DType::Q6_K);
    q.q6_k.vec_dot = kq::VecDot<kq::KType::kQ6_K>;
    q.matmul = kq::MatmulKQuant;
    return q;
  }();
  return &k;
}

}  // namespace edgelm::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "kernels/simd_dispatch.hpp"

namespace edgelm::kernels::simd {

HWY_EXPORT(GetKQuantKernels);

const KQuantKernels& kquant_kernels(int64_t target) {
  return *HWY_DISPATCH_TABLE(GetKQuantKernels)[dispatch_index(target)]();
}

}  // namespace edgelm::kernels::simd
#endif  // HWY_ONCE
