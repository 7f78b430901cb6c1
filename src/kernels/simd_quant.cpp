// Int8 kernels for the block-quantized weight types (Q4_0, Q4_1, Q8_0) and the 8-bit
// activation formats they pair with (Q8_0, Q8_1), compiled once per Highway target.
//
// Exactness. The model feeds every matrix product through an 8-bit activation quantizer, so
// a last-bit difference in a dot product can move a later activation by a whole quantization
// step. These kernels therefore reproduce the scalar references (reference_types.cpp) bit for
// bit: the activation quantizer uses the same operations, and each dot product keeps eight
// float lanes, lane j holding elements 4j..4j+3 of every block, adds each block with one fused
// multiply-add by dw * dx, sums the lanes in the same fixed order, and adds Q4_1's m * s terms
// block by block. (SSE4 has no FMA: its results may differ in the last bit.)
//
// The int8 step is the hot loop of the whole engine:
//   * AVX-512 VNNI (Highway's AVX3_DL): vpdpbusd multiplies unsigned by signed bytes and adds
//     each group of four straight into an int32 lane -- exactly the lane layout above. Q4
//     nibbles are unsigned already; Q4_0's "-8" becomes a per-activation-group correction.
//   * AVX2 / AVX-512 without VNNI: vpmaddubsw (u8 x s8 -> pairs in int16) + vpmaddwd, the same
//     lanes. No saturation is possible: |pair| <= 2 * 128 * 127 < 32767.
//   * SSE4: the same on two 16-byte halves (lanes 0-3 and 4-7).
//   * NEON: vmull_s8 + pairwise adds build the same group sums.
// Decode (one token) walks four weight rows at a time so each activation block is loaded once
// per four rows; on x86 the four are a quarter of the range apart (four long streams, see
// MatVecQ8Rows), elsewhere side by side. Several tokens (prefill) use register tiles of rows x
// tokens; on AVX3_DL a tile puts 16 tokens in the 16 lanes of zmm registers
// ("token lanes"), so one vpdpbusd advances 16 tokens' group sums at once.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "edgelm/error.hpp"
#include "kernels/simd.hpp"
#include "tensor/blocks.hpp"
#include "tensor/fp16.hpp"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/simd_quant.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace edgelm::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// foreach_target.h compiles this file once per target: reset the per-target switches.
#undef EDGELM_X86_256
#undef EDGELM_X86_128
#undef EDGELM_NEON
#undef EDGELM_TOKEN_LANES
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
#define EDGELM_X86_256 1
#elif HWY_ARCH_X86 && HWY_TARGET <= HWY_SSSE3
#define EDGELM_X86_128 1
#elif HWY_TARGET == HWY_NEON && HWY_ARCH_ARM_A64
#define EDGELM_NEON 1
#endif

HWY_INLINE float HalfToFloat(uint16_t h) {
#if defined(EDGELM_X86_256)
  return _cvtsh_ss(h);  // F16C is part of Highway's AVX2 and AVX-512 targets
#elif HWY_ARCH_ARM_A64
  __fp16 f;
  std::memcpy(&f, &h, sizeof f);
  return static_cast<float>(f);
#else
  return fp16_to_f32(h);
#endif
}

// ---------------------------------------------------------------------------------------------
// Per-target primitives on one block of 32 bytes:
//   Blk   the block in registers
//   ISum  eight int32 group sums (lane j = elements 4j..4j+3)
//   Acc8  eight float lanes of a dot product
#if defined(EDGELM_X86_256)

struct Blk {
  __m256i v;
};
struct ISum {
  __m256i v;
};
struct Acc8 {
  __m256 v;
};
HWY_INLINE Blk LoadBlk(const void* p) { return {_mm256_loadu_si256(static_cast<const __m256i*>(p))}; }
HWY_INLINE Blk SetBlk(int8_t b) { return {_mm256_set1_epi8(b)}; }
// 16 bytes of nibble pairs -> 32 unsigned bytes 0..15 (low nibbles first, as in the block).
HWY_INLINE Blk Nibbles(const uint8_t* qs) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1);
  return {_mm256_and_si256(both, _mm256_set1_epi8(0x0F))};
}
// Group sums of u[i] * s[i], u unsigned bytes, s signed bytes.
HWY_INLINE ISum DotU(Blk u, Blk s) {
#if HWY_TARGET == HWY_AVX3_DL
  // Highway's AVX3_DL target also enables AVX-VNNI, for which GCC would emit the VEX form of
  // vpdpbusd; CPUs with AVX-512 VNNI but without AVX-VNNI (e.g. AMD Zen 4) fault on it. The
  // asm pins the EVEX encoding that every AVX3_DL CPU has.
  __m256i acc = _mm256_setzero_si256();
  asm("%{evex%} vpdpbusd %[s], %[u], %[acc]" : [acc] "+v"(acc) : [u] "v"(u.v), [s] "vm"(s.v));
  return {acc};
#else
  return {_mm256_madd_epi16(_mm256_maddubs_epi16(u.v, s.v), _mm256_set1_epi16(1))};
#endif
}
// Group sums of w[i] * x[i], both signed: |w| times x with w's sign.
HWY_INLINE ISum DotS(Blk w, Blk x) { return DotU({_mm256_sign_epi8(w.v, w.v)}, {_mm256_sign_epi8(x.v, w.v)}); }
HWY_INLINE ISum SubI(ISum a, ISum b) { return {_mm256_sub_epi32(a.v, b.v)}; }
HWY_INLINE Acc8 ZeroAcc() { return {_mm256_setzero_ps()}; }
HWY_INLINE void Fma(Acc8& a, ISum s, __m256 scale) { a.v = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s.v), scale, a.v); }
HWY_INLINE void Fma(Acc8& a, ISum s, float scale) { Fma(a, s, _mm256_set1_ps(scale)); }
// (a0 + a2) + (a1 + a3) with aj = lane j + lane j+4.
HWY_INLINE float Sum(Acc8 a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

#elif defined(EDGELM_X86_128)

struct Blk {
  __m128i lo, hi;  // elements 0..15 and 16..31
};
struct ISum {
  __m128i lo, hi;  // groups 0..3 and 4..7
};
struct Acc8 {
  __m128 lo, hi;
};
HWY_INLINE Blk LoadBlk(const void* p) {
  const auto* q = static_cast<const __m128i*>(p);
  return {_mm_loadu_si128(q), _mm_loadu_si128(q + 1)};
}
HWY_INLINE Blk SetBlk(int8_t b) { return {_mm_set1_epi8(b), _mm_set1_epi8(b)}; }
HWY_INLINE Blk Nibbles(const uint8_t* qs) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i m = _mm_set1_epi8(0x0F);
  return {_mm_and_si128(q, m), _mm_and_si128(_mm_srli_epi16(q, 4), m)};
}
HWY_INLINE ISum DotU(Blk u, Blk s) {
  const __m128i one = _mm_set1_epi16(1);
  return {_mm_madd_epi16(_mm_maddubs_epi16(u.lo, s.lo), one), _mm_madd_epi16(_mm_maddubs_epi16(u.hi, s.hi), one)};
}
HWY_INLINE ISum DotS(Blk w, Blk x) {
  return DotU({_mm_sign_epi8(w.lo, w.lo), _mm_sign_epi8(w.hi, w.hi)},
              {_mm_sign_epi8(x.lo, w.lo), _mm_sign_epi8(x.hi, w.hi)});
}
HWY_INLINE ISum SubI(ISum a, ISum b) { return {_mm_sub_epi32(a.lo, b.lo), _mm_sub_epi32(a.hi, b.hi)}; }
HWY_INLINE Acc8 ZeroAcc() { return {_mm_setzero_ps(), _mm_setzero_ps()}; }
HWY_INLINE void Fma(Acc8& a, ISum s, float scale) {  // no FMA on SSE4: multiply, then add
  const __m128 sc = _mm_set1_ps(scale);
  a.lo = _mm_add_ps(_mm_mul_ps(_mm_cvtepi32_ps(s.lo), sc), a.lo);
  a.hi = _mm_add_ps(_mm_mul_ps(_mm_cvtepi32_ps(s.hi), sc), a.hi);
}
HWY_INLINE float Sum(Acc8 a) {
  __m128 s = _mm_add_ps(a.lo, a.hi);
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)));
}

#elif defined(EDGELM_NEON)

struct Blk {
  int8x16_t lo, hi;
};
struct ISum {
  int32x4_t lo, hi;
};
struct Acc8 {
  float32x4_t lo, hi;
};
HWY_INLINE Blk LoadBlk(const void* p) {
  const auto* q = static_cast<const int8_t*>(p);
  return {vld1q_s8(q), vld1q_s8(q + 16)};
}
HWY_INLINE Blk SetBlk(int8_t b) { return {vdupq_n_s8(b), vdupq_n_s8(b)}; }
HWY_INLINE Blk Nibbles(const uint8_t* qs) {
  const uint8x16_t q = vld1q_u8(qs);
  return {vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0F))), vreinterpretq_s8_u8(vshrq_n_u8(q, 4))};
}
// Sums of four consecutive products: widening multiply, then two pairwise additions.
HWY_INLINE int32x4_t Group4(int8x16_t a, int8x16_t b) {
  const int32x4_t lo = vpaddlq_s16(vmull_s8(vget_low_s8(a), vget_low_s8(b)));
  const int32x4_t hi = vpaddlq_s16(vmull_high_s8(a, b));
  return vpaddq_s32(lo, hi);
}
// Unsigned operands are nibbles or small constants (< 128): exact as signed bytes.
HWY_INLINE ISum DotS(Blk w, Blk x) { return {Group4(w.lo, x.lo), Group4(w.hi, x.hi)}; }
HWY_INLINE ISum DotU(Blk u, Blk s) { return DotS(u, s); }
HWY_INLINE ISum SubI(ISum a, ISum b) { return {vsubq_s32(a.lo, b.lo), vsubq_s32(a.hi, b.hi)}; }
HWY_INLINE Acc8 ZeroAcc() { return {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)}; }
HWY_INLINE void Fma(Acc8& a, ISum s, float scale) {
  a.lo = vfmaq_n_f32(a.lo, vcvtq_f32_s32(s.lo), scale);
  a.hi = vfmaq_n_f32(a.hi, vcvtq_f32_s32(s.hi), scale);
}
HWY_INLINE float Sum(Acc8 a) {
  const float32x4_t s = vaddq_f32(a.lo, a.hi);                             // a0 .. a3
  const float32x2_t t = vadd_f32(vget_low_f32(s), vget_high_f32(s));      // a0+a2, a1+a3
  return vget_lane_f32(t, 0) + vget_lane_f32(t, 1);
}

#else  // one-lane fallback (HWY_SCALAR / EMU128): plain C++ in the reference's order

struct Blk {
  uint8_t b[32];
};
struct ISum {
  int32_t g[8];
};
struct Acc8 {
  float a[8];
};
HWY_INLINE Blk LoadBlk(const void* p) {
  Blk r;
  std::memcpy(r.b, p, 32);
  return r;
}
HWY_INLINE Blk SetBlk(int8_t v) {
  Blk r;
  std::memset(r.b, static_cast<uint8_t>(v), 32);
  return r;
}
HWY_INLINE Blk Nibbles(const uint8_t* qs) {
  Blk r;
  for (int j = 0; j < 16; ++j) {
    r.b[j] = qs[j] & 0x0F;
    r.b[j + 16] = qs[j] >> 4;
  }
  return r;
}
HWY_INLINE ISum DotU(const Blk& u, const Blk& s) {
  ISum r{};
  for (int j = 0; j < 32; ++j) r.g[j / 4] += int32_t{u.b[j]} * static_cast<int8_t>(s.b[j]);
  return r;
}
HWY_INLINE ISum DotS(const Blk& w, const Blk& x) {
  ISum r{};
  for (int j = 0; j < 32; ++j) r.g[j / 4] += int32_t{static_cast<int8_t>(w.b[j])} * static_cast<int8_t>(x.b[j]);
  return r;
}
HWY_INLINE ISum SubI(ISum a, const ISum& b) {
  for (int j = 0; j < 8; ++j) a.g[j] -= b.g[j];
  return a;
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

// ---------------------------------------------------------------------------------------------
// Weight types: how a weight block meets an activation block.
struct TypeQ4_0 {
  using W = BlockQ4_0;
  using X = BlockQ8_0;
};
struct TypeQ4_1 {
  using W = BlockQ4_1;
  using X = BlockQ8_1;
};
struct TypeQ8_0 {
  using W = BlockQ8_0;
  using X = BlockQ8_0;
};
template <class T>
constexpr bool kIsQ4_0 = std::is_same_v<T, TypeQ4_0>;
template <class T>
constexpr bool kIsQ4_1 = std::is_same_v<T, TypeQ4_1>;
template <class T>
constexpr bool kIsQ8_0 = std::is_same_v<T, TypeQ8_0>;

// Per-activation-block values shared by every weight row. (Constructors are written out:
// GCC gives implicit ones no target attribute, and they could then not inline Highway's.)
struct XPrep {
  HWY_INLINE XPrep() {}
  Blk q;
  float d = 0, s = 0;  // s: Q4_1's d * sum(q) as stored in the block
  ISum sum8;           // Q4_0: group sums of 8 * q (the nibbles' offset)
};

template <class T>
HWY_INLINE XPrep PrepX(const typename T::X& xb) {
  XPrep p;
  p.q = LoadBlk(xb.qs);
  p.d = HalfToFloat(xb.d);
  if constexpr (kIsQ4_1<T>) p.s = HalfToFloat(xb.s);
  if constexpr (kIsQ4_0<T>) p.sum8 = DotU(SetBlk(8), p.q);
  return p;
}

template <class T>
HWY_INLINE ISum BlockDot(const typename T::W& wb, const XPrep& x) {
  if constexpr (kIsQ8_0<T>) {
    return DotS(LoadBlk(wb.qs), x.q);
  } else if constexpr (kIsQ4_0<T>) {
    return SubI(DotU(Nibbles(wb.qs), x.q), x.sum8);
  } else {
    return DotU(Nibbles(wb.qs), x.q);
  }
}

// One (weight row, activation row) dot product in the reference's order.
struct DotAcc {
  HWY_INLINE DotAcc() : acc(ZeroAcc()) {}
  Acc8 acc;
  float offs = 0;  // Q4_1: sum of m * s, block by block
};

template <class T>
HWY_INLINE void AddBlock(DotAcc& a, const typename T::W& wb, const XPrep& x) {
  Fma(a.acc, BlockDot<T>(wb, x), HalfToFloat(wb.d) * x.d);
  if constexpr (kIsQ4_1<T>) a.offs += HalfToFloat(wb.m) * x.s;
}

template <class T>
HWY_INLINE float Result(const DotAcc& a) {
  if constexpr (kIsQ4_1<T>) return Sum(a.acc) + a.offs;
  return Sum(a.acc);
}

// R consecutive weight rows times one activation row: out[r] = W[r] . x.
template <class T, int R>
HWY_INLINE void MatVecTile(const std::byte* w0, size_t row_bytes, const typename T::X* x, int64_t nb, float* out) {
  using W = typename T::W;
  DotAcc acc[R];
  for (int64_t b = 0; b < nb; ++b) {
    const XPrep xp = PrepX<T>(x[b]);
    for (int r = 0; r < R; ++r)
      AddBlock<T>(acc[r], reinterpret_cast<const W*>(w0 + static_cast<size_t>(r) * row_bytes)[b], xp);
  }
  for (int r = 0; r < R; ++r) out[r] = Result<T>(acc[r]);
}

// R rows times TT tokens: y[t * y_stride + r] for the tile.
template <class T, int R, int TT>
HWY_INLINE void MatMatTile(const std::byte* w0, size_t row_bytes, const std::byte* xq, size_t xq_stride,
                           int64_t nb, float* y, size_t y_stride) {
  using W = typename T::W;
  using X = typename T::X;
  DotAcc acc[R][TT];
  for (int64_t b = 0; b < nb; ++b) {
    XPrep xp[TT];
    for (int t = 0; t < TT; ++t) xp[t] = PrepX<T>(reinterpret_cast<const X*>(xq + t * xq_stride)[b]);
    for (int r = 0; r < R; ++r) {
      const W& wb = reinterpret_cast<const W*>(w0 + static_cast<size_t>(r) * row_bytes)[b];
      for (int t = 0; t < TT; ++t) AddBlock<T>(acc[r][t], wb, xp[t]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < TT; ++t) y[t * y_stride + r] = Result<T>(acc[r][t]);
}

// Register budget: 16 vector registers below AVX-512, 32 with it (and on NEON).
#if HWY_TARGET <= HWY_AVX3 && HWY_ARCH_X86
constexpr int kTileRows = 4, kTileToks = 4;
#elif defined(EDGELM_X86_256) || defined(EDGELM_NEON)
constexpr int kTileRows = 2, kTileToks = 4;
#else
constexpr int kTileRows = 2, kTileToks = 2;
#endif
constexpr int kVecRows = 4;

// Decode streams the weights from DRAM once per token and is bound by how many cache misses
// are in flight. Each tile asks for the tile kPrefetchTiles ahead, into L2 rather than L1
// (locality 2: prefetcht1 on x86, PLDL2KEEP on Arm): on Zen 4 this took single-thread decode
// of SmolLM2 from 88 to ~140 tokens/s, where prefetching into L1 (or further ahead) made it
// slower than no prefetch at all.
constexpr int64_t kPrefetchTiles = 3;

HWY_INLINE void PrefetchRange(const std::byte* p, size_t bytes) {
  for (size_t i = 0; i < bytes; i += 64) __builtin_prefetch(p + i, 0, 2);
}

// Q8_0 decode does little arithmetic per byte, so it runs at the speed the weights stream in.
// A tile of several rows reads them side by side, as several short streams (a 576-column row
// is 612 bytes) that the hardware prefetcher does not follow, and prefetching whole tiles in
// software then fills the core's miss buffers (perf: ~40 % of the kernel's samples on the
// prefetch). Decode on x86 therefore reads its rows as long sequential streams, which the
// hardware prefetcher follows: four rows a quarter of the range apart (MatVecQ8Rows, and
// MatVecRows for Q4_0 / Q4_1); one software prefetch per row, kStreamAhead bytes on, starts each
// stream at every matrix. Q4_1 one-thread generation of SmolLM2, four rows side by side -> four
// far rows: 137 -> 149 tokens/s (two threads 246 -> 268).
constexpr size_t kStreamAhead = 2048;

// Rows [r0, r1) as four long streams: four(ra, step, i, q) for rows i, i + q, i + 2q, i + 3q
// (ra = row i, step = q rows in bytes) over the first quarter q of the range, each stream
// started with one software prefetch; then one(row, i) for the 0-3 rows left over.
template <class Four, class One>
HWY_INLINE void ForFarRows(const std::byte* w, size_t row_bytes, int64_t r0, int64_t r1, const Four& four,
                           const One& one) {
  const std::byte* end = w + r1 * row_bytes;
  const int64_t q = (r1 - r0) / 4;
  const size_t qb = static_cast<size_t>(q) * row_bytes;
  for (int64_t i = r0; i < r0 + q; ++i) {
    const std::byte* ra = w + i * row_bytes;
    if (ra + 3 * qb + kStreamAhead < end)
      for (int k = 0; k < 4; ++k) __builtin_prefetch(ra + k * qb + kStreamAhead, 0, 2);
    four(ra, qb, i, q);
  }
  for (int64_t i = r0 + 4 * q; i < r1; ++i) one(w + i * row_bytes, i);
}

#if defined(EDGELM_X86_256)
// Decode on AVX2 / AVX-512, same arithmetic as MatVecTile with the scale products dw * dx
// (and Q4_1's m * s) formed eight blocks at a time: activation scales converted once per call,
// the weight scales of eight blocks packed into one vector (PackHalves8), one multiply, then one
// lane broadcast per block. Q4 does more vector work per block than Q8_0, so here the lanes go
// through a store and broadcast loads (load ports) rather than permutes (vector ports): 16.9 vs
// 15.5 GB/s in L2.
struct XScales {
  std::vector<float> d, s;  // per block: dx, and Q4_1's s
};

// Q8_0 decode, four rows at a time: rows i, i + q, i + 2q, i + 3q for a quarter q of the
// range, each its own chain in the reference's order. One row alone is one fused multiply-add
// chain (4 cycles a block); four independent chains let the core overlap them. The four rows
// are far apart, so they are four long sequential streams, which the hardware prefetcher
// follows (rows side by side are short interleaved streams, and it does not: 8 GB/s in a
// layer-shaped microbenchmark). Per block: on AVX-512 VNNI, (w ^ 0x80) is the unsigned operand
// of vpdpbusd, whose accumulator starts at -128 * the activation group sum, so the group sums
// are the reference's exactly with two instructions fewer than the sign trick. The scales
// dw * dx of eight blocks are one multiply: the eight halves are packed in two general
// registers (no store-to-load round trip, no gather), converted together, and each block takes
// its lane with one permute. The activation blocks are copied once per call into 64-byte
// records, so no activation load splits a cache line. Zen 4, one 576x576 matrix in L2: 41 GB/s
// (two rows, a scale per block) -> 55 GB/s; SmolLM2 Q8_0 one-thread generation +10-12 %.
//
// One activation block as MatVecQ8 reads it: the 32 bytes and (AVX3_DL) the eight
// -128 * group sums.
struct alignas(64) Q8X {
  int8_t q[32];
  int32_t corr[8];
};
struct Q8Act {
  std::vector<float> d;  // per block: dx
  std::vector<Q8X> x;
};

HWY_INLINE void PrepQ8Act(const BlockQ8_0* x, int64_t nb, Q8Act& p) {
  p.d.resize(static_cast<size_t>(nb));
  p.x.resize(static_cast<size_t>(nb));
  for (int64_t b = 0; b < nb; ++b) {
    p.d[b] = HalfToFloat(x[b].d);
    std::memcpy(p.x[b].q, x[b].qs, 32);
#if HWY_TARGET == HWY_AVX3_DL
    const ISum g = DotU(SetBlk(1), LoadBlk(x[b].qs));  // the group sums of x
    _mm256_store_si256(reinterpret_cast<__m256i*>(p.x[b].corr), _mm256_mullo_epi32(g.v, _mm256_set1_epi32(-128)));
#endif
  }
}

HWY_INLINE ISum DotQ8(const BlockQ8_0& wb, const Q8X& xb, Blk x) {
#if HWY_TARGET == HWY_AVX3_DL
  __m256i acc = _mm256_load_si256(reinterpret_cast<const __m256i*>(xb.corr));
  const __m256i u = _mm256_xor_si256(LoadBlk(wb.qs).v, _mm256_set1_epi8(static_cast<char>(0x80)));
  asm("%{evex%} vpdpbusd %[s], %[u], %[acc]" : [acc] "+v"(acc) : [u] "v"(u), [s] "v"(x.v));
  return {acc};
#else
  (void)xb;
  return DotS(LoadBlk(wb.qs), x);
#endif
}

HWY_INLINE __m256 ScaleQ8(const BlockQ8_0& wb, __m256 dx) {
  uint16_t h;
  std::memcpy(&h, &wb.d, sizeof h);
  return _mm256_mul_ps(_mm256_cvtph_ps(_mm_set1_epi16(static_cast<short>(h))), dx);
}

// R rows (4, or 1 for the last few) at once, each its own accumulator: y[k] = row k . x.
template <int R>
HWY_INLINE void MatVecQ8(const BlockQ8_0* const (&rows)[R], const Q8X* HWY_RESTRICT xs, const float* HWY_RESTRICT d,
                         int64_t nb, float* const (&y)[R]) {
  Acc8 acc[R];
  for (int k = 0; k < R; ++k) acc[k] = ZeroAcc();
  int64_t b = 0;
  for (; b + 8 <= nb; b += 8) {
    const __m256 dx8 = _mm256_loadu_ps(&d[b]);
    __m256 sc[R];
    for (int k = 0; k < R; ++k) {  // PackHalves8 inline: through the helper GCC's code is slower (52 vs 55 GB/s)
      uint64_t h[2] = {0, 0};
      for (int j = 0; j < 8; ++j) {
        uint16_t v;
        std::memcpy(&v, &rows[k][b + j].d, sizeof v);
        h[j >> 2] |= static_cast<uint64_t>(v) << (16 * (j & 3));
      }
      const __m128i hv = _mm_set_epi64x(static_cast<long long>(h[1]), static_cast<long long>(h[0]));
      sc[k] = _mm256_mul_ps(_mm256_cvtph_ps(hv), dx8);
    }
    for (int j = 0; j < 8; ++j) {
      const Blk xq = {_mm256_load_si256(reinterpret_cast<const __m256i*>(xs[b + j].q))};
      for (int k = 0; k < R; ++k)
        Fma(acc[k], DotQ8(rows[k][b + j], xs[b + j], xq), _mm256_permutevar8x32_ps(sc[k], _mm256_set1_epi32(j)));
    }
  }
  for (; b < nb; ++b) {
    const Blk xq = {_mm256_load_si256(reinterpret_cast<const __m256i*>(xs[b].q))};
    const __m256 dx = _mm256_broadcast_ss(&d[b]);
    for (int k = 0; k < R; ++k) Fma(acc[k], DotQ8(rows[k][b], xs[b], xq), ScaleQ8(rows[k][b], dx));
  }
  for (int k = 0; k < R; ++k) *y[k] = Sum(acc[k]);
}

void MatVecQ8Rows(const std::byte* w, size_t row_bytes, const BlockQ8_0* x, int64_t nb, float* y, int64_t r0,
                  int64_t r1) {
  static thread_local Q8Act p;
  PrepQ8Act(x, nb, p);
  const Q8X* xs = p.x.data();
  const float* d = p.d.data();
  ForFarRows(
      w, row_bytes, r0, r1,
      [&](const std::byte* ra, size_t qb, int64_t i, int64_t q) {
        MatVecQ8<4>({reinterpret_cast<const BlockQ8_0*>(ra), reinterpret_cast<const BlockQ8_0*>(ra + qb),
                     reinterpret_cast<const BlockQ8_0*>(ra + 2 * qb), reinterpret_cast<const BlockQ8_0*>(ra + 3 * qb)},
                    xs, d, nb, {y + i, y + i + q, y + i + 2 * q, y + i + 3 * q});
      },
      [&](const std::byte* row, int64_t i) {
        MatVecQ8<1>({reinterpret_cast<const BlockQ8_0*>(row)}, xs, d, nb, {y + i});
      });
}

// Eight halves stride bytes apart, packed through two general registers: one scalar load per
// half (no store-to-load round trip, which stalls when eight 2-byte stores are read back as one
// vector; no gather, slower on Zen 4).
HWY_INLINE __m128i PackHalves8(const std::byte* p, size_t stride) {
  uint64_t h[2] = {0, 0};
  for (int j = 0; j < 8; ++j) {
    uint16_t v;
    std::memcpy(&v, p + j * stride, sizeof v);
    h[j >> 2] |= static_cast<uint64_t>(v) << (16 * (j & 3));
  }
  return _mm_set_epi64x(static_cast<long long>(h[1]), static_cast<long long>(h[0]));
}

// R rows row_step bytes apart (far apart on x86, see MatVecRows) times one activation row:
// out[r * out_step] = W[r] . x.
template <class T, int R>
HWY_INLINE void MatVecTile8(const std::byte* w0, size_t row_step, const typename T::X* x, const XScales& xs,
                            int64_t nb, float* out, int64_t out_step = 1) {
  using W = typename T::W;
  DotAcc acc[R];
  int64_t b = 0;
  for (; b + 8 <= nb; b += 8) {
    const __m256 dx = _mm256_loadu_ps(&xs.d[b]);
    alignas(32) float scale[R][8], ms[R][8];
    for (int r = 0; r < R; ++r) {
      const std::byte* wb = w0 + static_cast<size_t>(r) * row_step + b * sizeof(W);
      const __m256 dw = _mm256_cvtph_ps(PackHalves8(wb + offsetof(W, d), sizeof(W)));
      _mm256_store_ps(scale[r], _mm256_mul_ps(dw, dx));
      if constexpr (kIsQ4_1<T>) {  // the eight m * s, added to offs one by one in block order below
        const __m256 m = _mm256_cvtph_ps(PackHalves8(wb + offsetof(W, m), sizeof(W)));
        _mm256_store_ps(ms[r], _mm256_mul_ps(m, _mm256_loadu_ps(&xs.s[b])));
      }
    }
    for (int j = 0; j < 8; ++j) {
      XPrep xp;
      xp.q = LoadBlk(x[b + j].qs);
      if constexpr (kIsQ4_0<T>) xp.sum8 = DotU(SetBlk(8), xp.q);
      for (int r = 0; r < R; ++r) {
        const W& wb = reinterpret_cast<const W*>(w0 + static_cast<size_t>(r) * row_step)[b + j];
        Fma(acc[r].acc, BlockDot<T>(wb, xp), _mm256_broadcast_ss(&scale[r][j]));
        if constexpr (kIsQ4_1<T>) acc[r].offs += ms[r][j];
      }
    }
  }
  for (; b < nb; ++b) {
    const XPrep xp = PrepX<T>(x[b]);
    for (int r = 0; r < R; ++r)
      AddBlock<T>(acc[r], reinterpret_cast<const W*>(w0 + static_cast<size_t>(r) * row_step)[b], xp);
  }
  for (int r = 0; r < R; ++r) out[r * out_step] = Result<T>(acc[r]);
}
#endif  // EDGELM_X86_256

template <class T>
void MatVecRows(const std::byte* w, size_t row_bytes, const std::byte* x, int64_t nb, float* y, int64_t r0,
                int64_t r1) {
  const auto* xb = reinterpret_cast<const typename T::X*>(x);
#if defined(EDGELM_X86_256)
  if constexpr (kIsQ8_0<T>) {
    MatVecQ8Rows(w, row_bytes, xb, nb, y, r0, r1);
  } else {
    static thread_local XScales xs;
    xs.d.resize(static_cast<size_t>(nb));
    if constexpr (kIsQ4_1<T>) xs.s.resize(static_cast<size_t>(nb));
    for (int64_t b = 0; b < nb; ++b) {
      xs.d[b] = HalfToFloat(xb[b].d);
      if constexpr (kIsQ4_1<T>) xs.s[b] = HalfToFloat(xb[b].s);
    }
    static_assert(kVecRows == 4, "ForFarRows walks four rows at a time");
    ForFarRows(
        w, row_bytes, r0, r1,
        [&](const std::byte* ra, size_t qb, int64_t i, int64_t q) {
          MatVecTile8<T, kVecRows>(ra, qb, xb, xs, nb, y + i, q);
        },
        [&](const std::byte* row, int64_t i) { MatVecTile8<T, 1>(row, row_bytes, xb, xs, nb, y + i); });
  }
#else
  const size_t tile_bytes = kVecRows * row_bytes;
  const std::byte* end = w + r1 * row_bytes;
  int64_t r = r0;
  for (; r + kVecRows <= r1; r += kVecRows) {
    const std::byte* ahead = w + r * row_bytes + kPrefetchTiles * tile_bytes;
    if (ahead + tile_bytes <= end) PrefetchRange(ahead, tile_bytes);
    MatVecTile<T, kVecRows>(w + r * row_bytes, row_bytes, xb, nb, y + r);
  }
  for (; r < r1; ++r) MatVecTile<T, 1>(w + r * row_bytes, row_bytes, xb, nb, y + r);
#endif
}

template <class T>
void MatMatRows(const std::byte* w, size_t row_bytes, const std::byte* xq, size_t xq_stride, int64_t nb, float* y,
                size_t y_stride, int64_t n_tok, int64_t r0, int64_t r1) {
  int64_t t = 0;
  for (; t + kTileToks <= n_tok; t += kTileToks) {
    const std::byte* xt = xq + t * xq_stride;
    float* yt = y + t * y_stride;
    int64_t r = r0;
    for (; r + kTileRows <= r1; r += kTileRows)
      MatMatTile<T, kTileRows, kTileToks>(w + r * row_bytes, row_bytes, xt, xq_stride, nb, yt + r, y_stride);
    for (; r < r1; ++r) MatMatTile<T, 1, kTileToks>(w + r * row_bytes, row_bytes, xt, xq_stride, nb, yt + r, y_stride);
  }
  for (; t < n_tok; ++t) MatVecRows<T>(w, row_bytes, xq + t * xq_stride, nb, y + t * y_stride, r0, r1);
}

// ---------------------------------------------------------------------------------------------
// AVX-512 VNNI "token lanes" GEMM: lane t of a zmm register belongs to token t of a group of
// 16, and each of a row's eight group lanes (see Exactness) gets its own zmm accumulator, so
// every token's arithmetic is the reference's. The activations are repacked so that dword k
// of every token's block sits side by side; a weight dword is broadcast and one vpdpbusd
// advances the 16 tokens' group-k sums.
//   Q4_0 / Q4_1: nibbles are the unsigned operand (broadcast), activations the signed one;
//                Q4_0's -8 * sum(x) per group starts the sum.
//   Q8_0:        activations + 128 are the unsigned operand, the signed weight dword is
//                broadcast from memory ({1to16}); -128 * sum(w) per group starts the sum.
#if HWY_TARGET == HWY_AVX3_DL
#define EDGELM_TOKEN_LANES 1
constexpr int kLaneToks = 16;
constexpr int kLaneRows = 2;
constexpr int64_t kLaneMinTokens = 6;

// Repacked activations of all tokens and one unpacked row tile. Thread-local: each thread of a
// matmul repacks the (small) activations itself rather than synchronising with the others.
struct LaneScratch {
  std::vector<int32_t> x;     // [group][block][k][lane]: the 4 bytes of dword k (Q8_0: + 128)
  std::vector<int32_t> xcorr; // [group][block][k][lane]: Q4_0's -8 * sum of dword k
  std::vector<float> d, s;    // [group][block][lane]: dx, Q4_1's s
  std::vector<uint8_t> w;     // [row][block][32]: nibbles (Q4) or signed bytes (Q8_0)
  std::vector<int32_t> wcorr; // [row][block][k]: Q8_0's -128 * sum of dword k
  std::vector<float> wd, wm;  // [row][block]
};

template <class T>
void PackActivations(const std::byte* xq, size_t xq_stride, int64_t n_tok, int64_t nb, LaneScratch& p) {
  using X = typename T::X;
  const int64_t groups = (n_tok + kLaneToks - 1) / kLaneToks;
  const size_t cells = static_cast<size_t>(groups * nb * 8 * kLaneToks);
  // Padding lanes hold x = 0 (Q8_0: the biased 0x80 bytes) and d = s = 0.
  p.x.assign(cells, kIsQ8_0<T> ? static_cast<int32_t>(0x80808080u) : 0);
  if constexpr (kIsQ4_0<T>) p.xcorr.assign(cells, 0);
  p.d.assign(static_cast<size_t>(groups * nb * kLaneToks), 0.0f);
  if constexpr (kIsQ4_1<T>) p.s.assign(static_cast<size_t>(groups * nb * kLaneToks), 0.0f);
  for (int64_t t = 0; t < n_tok; ++t) {
    const int64_t g = t / kLaneToks, lane = t % kLaneToks;
    const X* xb = reinterpret_cast<const X*>(xq + t * xq_stride);
    for (int64_t b = 0; b < nb; ++b) {
      const size_t gb = static_cast<size_t>(g * nb + b);
      for (int k = 0; k < 8; ++k) {
        const size_t cell = (gb * 8 + k) * kLaneToks + lane;
        uint32_t v;
        std::memcpy(&v, xb[b].qs + 4 * k, 4);
        if constexpr (kIsQ8_0<T>) v ^= 0x80808080u;
        p.x[cell] = static_cast<int32_t>(v);
        if constexpr (kIsQ4_0<T>) {
          const int8_t* q = xb[b].qs + 4 * k;
          p.xcorr[cell] = -8 * (int32_t{q[0]} + q[1] + q[2] + q[3]);
        }
      }
      p.d[gb * kLaneToks + lane] = HalfToFloat(xb[b].d);
      if constexpr (kIsQ4_1<T>) p.s[gb * kLaneToks + lane] = HalfToFloat(xb[b].s);
    }
  }
}

template <class T>
void UnpackRows(const std::byte* w0, size_t row_bytes, int rows, int64_t nb, LaneScratch& p) {
  using W = typename T::W;
  p.w.assign(static_cast<size_t>(kLaneRows * nb * kQK), 0);  // padding rows: zero weights
  if constexpr (kIsQ8_0<T>) p.wcorr.assign(static_cast<size_t>(kLaneRows * nb * 8), 0);
  p.wd.assign(static_cast<size_t>(kLaneRows * nb), 0.0f);
  if constexpr (kIsQ4_1<T>) p.wm.assign(static_cast<size_t>(kLaneRows * nb), 0.0f);
  for (int r = 0; r < rows; ++r) {
    const W* wb = reinterpret_cast<const W*>(w0 + static_cast<size_t>(r) * row_bytes);
    for (int64_t b = 0; b < nb; ++b) {
      const size_t rb = static_cast<size_t>(r * nb + b);
      if constexpr (kIsQ8_0<T>) {
        std::memcpy(&p.w[rb * kQK], wb[b].qs, kQK);
        for (int k = 0; k < 8; ++k) {
          const int8_t* q = wb[b].qs + 4 * k;
          p.wcorr[rb * 8 + k] = -128 * (int32_t{q[0]} + q[1] + q[2] + q[3]);
        }
      } else {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(&p.w[rb * kQK]), Nibbles(wb[b].qs).v);
      }
      p.wd[rb] = HalfToFloat(wb[b].d);
      if constexpr (kIsQ4_1<T>) p.wm[rb] = HalfToFloat(wb[b].m);
    }
  }
}

// acc + (u8 lanes of u) x (s8 lanes of s), per dword. zmm operands have only the EVEX form.
HWY_INLINE __m512i Dpbusd(__m512i acc, __m512i u, __m512i s) {
  asm("vpdpbusd %[s], %[u], %[acc]" : [acc] "+v"(acc) : [u] "v"(u), [s] "vm"(s));
  return acc;
}
// acc + (u8 lanes of u) x (the signed dword at w, broadcast to all lanes).
HWY_INLINE __m512i DpbusdBcast(__m512i acc, __m512i u, const uint8_t* w) {
  asm("vpdpbusd %[w]%{1to16%}, %[u], %[acc]"
      : [acc] "+v"(acc)
      : [u] "v"(u), [w] "m"(*reinterpret_cast<const int32_t*>(w)));
  return acc;
}

template <class T>
void TokenLanesGemm(const TensorView& w, const std::byte* xq, size_t xq_stride, float* y, size_t y_stride,
                    int64_t n_tok, int64_t r0, int64_t r1) {
  static thread_local LaneScratch p;
  const int64_t nb = w.ne[0] / kQK;
  const size_t row_bytes = w.row_bytes();
  PackActivations<T>(xq, xq_stride, n_tok, nb, p);
  const int64_t groups = (n_tok + kLaneToks - 1) / kLaneToks;
  for (int64_t r = r0; r < r1; r += kLaneRows) {
    const int rows = static_cast<int>(std::min<int64_t>(kLaneRows, r1 - r));
    UnpackRows<T>(w.data + r * row_bytes, row_bytes, rows, nb, p);
    for (int64_t g = 0; g < groups; ++g) {
      __m512 acc[kLaneRows][8];
      __m512 offs[kLaneRows];
      for (int i = 0; i < kLaneRows; ++i) {
        for (int k = 0; k < 8; ++k) acc[i][k] = _mm512_setzero_ps();
        offs[i] = _mm512_setzero_ps();
      }
      for (int64_t b = 0; b < nb; ++b) {
        const size_t gb = static_cast<size_t>(g * nb + b);
        const __m512 dx = _mm512_loadu_ps(&p.d[gb * kLaneToks]);
        __m512 scale[kLaneRows];
        for (int i = 0; i < kLaneRows; ++i)
          scale[i] = _mm512_mul_ps(_mm512_set1_ps(p.wd[static_cast<size_t>(i * nb + b)]), dx);
        for (int k = 0; k < 8; ++k) {
          const size_t cell = (gb * 8 + k) * kLaneToks;
          const __m512i x = _mm512_loadu_si512(&p.x[cell]);
          for (int i = 0; i < kLaneRows; ++i) {
            const uint8_t* wr = &p.w[static_cast<size_t>((i * nb + b) * kQK + 4 * k)];
            __m512i isum;
            if constexpr (kIsQ8_0<T>) {
              isum = DpbusdBcast(_mm512_set1_epi32(p.wcorr[static_cast<size_t>((i * nb + b) * 8 + k)]), x, wr);
            } else {
              int32_t wd;
              std::memcpy(&wd, wr, 4);
              const __m512i init = kIsQ4_0<T> ? _mm512_loadu_si512(&p.xcorr[cell]) : _mm512_setzero_si512();
              isum = Dpbusd(init, _mm512_set1_epi32(wd), x);
            }
            acc[i][k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), scale[i], acc[i][k]);
          }
        }
        if constexpr (kIsQ4_1<T>) {
          const __m512 sx = _mm512_loadu_ps(&p.s[gb * kLaneToks]);
          for (int i = 0; i < kLaneRows; ++i)  // m * s, then add: the reference's rounding
            offs[i] = _mm512_add_ps(offs[i], _mm512_mul_ps(_mm512_set1_ps(p.wm[static_cast<size_t>(i * nb + b)]), sx));
        }
      }
      const int64_t toks = std::min<int64_t>(kLaneToks, n_tok - g * kLaneToks);
      for (int i = 0; i < rows; ++i) {
        const __m512 a0 = _mm512_add_ps(acc[i][0], acc[i][4]), a1 = _mm512_add_ps(acc[i][1], acc[i][5]);
        const __m512 a2 = _mm512_add_ps(acc[i][2], acc[i][6]), a3 = _mm512_add_ps(acc[i][3], acc[i][7]);
        __m512 sum = _mm512_add_ps(_mm512_add_ps(a0, a2), _mm512_add_ps(a1, a3));
        if constexpr (kIsQ4_1<T>) sum = _mm512_add_ps(sum, offs[i]);
        alignas(64) float lanes[kLaneToks];
        _mm512_store_ps(lanes, sum);
        for (int64_t t = 0; t < toks; ++t) y[(g * kLaneToks + t) * y_stride + r + i] = lanes[t];
      }
    }
  }
}
#endif  // HWY_TARGET == HWY_AVX3_DL

template <class T>
void MatmulT(const TensorView& w, const std::byte* xq, size_t xq_stride, float* y, size_t y_stride, int64_t n_tok,
             int64_t r0, int64_t r1) {
  const int64_t nb = w.ne[0] / kQK;
  const size_t row_bytes = w.row_bytes();
#if defined(EDGELM_TOKEN_LANES)
  if (n_tok >= kLaneMinTokens) {
    TokenLanesGemm<T>(w, xq, xq_stride, y, y_stride, n_tok, r0, r1);
    return;
  }
#endif
  if (n_tok == 1) {
    MatVecRows<T>(w.data, row_bytes, xq, nb, y, r0, r1);
  } else {
    MatMatRows<T>(w.data, row_bytes, xq, xq_stride, nb, y, y_stride, n_tok, r0, r1);
  }
}

void MatmulQuant(const TensorView& w, const std::byte* xq, size_t xq_stride, float* y, size_t y_stride,
                 int64_t n_tok, int64_t r0, int64_t r1) {
  switch (w.type) {
    case DType::Q4_0: return MatmulT<TypeQ4_0>(w, xq, xq_stride, y, y_stride, n_tok, r0, r1);
    case DType::Q4_1: return MatmulT<TypeQ4_1>(w, xq, xq_stride, y, y_stride, n_tok, r0, r1);
    case DType::Q8_0: return MatmulT<TypeQ8_0>(w, xq, xq_stride, y, y_stride, n_tok, r0, r1);
    default: throw Error("internal: no int8 matmul for " + std::string(dtype_name(w.type)));
  }
}

template <class T>
float VecDot(int64_t n, const void* w, const void* x) {
  float out;
  MatVecTile<T, 1>(static_cast<const std::byte*>(w), 0, static_cast<const typename T::X*>(x), n / kQK, &out);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Activation quantization, bit-identical to the references: d = max|x| / 127,
// q = round-to-nearest-even(x * (127 / max|x|)).
template <bool kSum>
HWY_INLINE void QuantizeBlock(const float* x, int8_t* qs, uint16_t* d_out, uint16_t* s_out) {
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::Rebind<int8_t, decltype(di)> d8;
  const size_t N = hn::Lanes(df);
  auto vmax = hn::Zero(df);
  for (size_t i = 0; i < kQK; i += N) vmax = hn::Max(vmax, hn::Abs(hn::LoadU(df, x + i)));
  const float amax = hn::GetLane(hn::MaxOfLanes(df, vmax));
  const float d = amax / 127.0f;
  const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
  const auto vid = hn::Set(df, id);
  auto vsum = hn::Zero(di);
  for (size_t i = 0; i < kQK; i += N) {
    const auto q = hn::NearestInt(hn::Mul(hn::LoadU(df, x + i), vid));
    if constexpr (kSum) vsum = hn::Add(vsum, q);
    hn::StoreU(hn::DemoteTo(d8, q), d8, qs + i);
  }
  *d_out = f32_to_fp16(d);
  if constexpr (kSum) {
    const int32_t sum = hn::GetLane(hn::SumOfLanes(di, vsum));
    *s_out = f32_to_fp16(static_cast<float>(sum) * d);
  }
}

void QuantizeQ8_0(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8_0*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i) QuantizeBlock<false>(src + i * kQK, b[i].qs, &b[i].d, nullptr);
}

void QuantizeQ8_1(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8_1*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i) QuantizeBlock<true>(src + i * kQK, b[i].qs, &b[i].d, &b[i].s);
}

// Dequantization is only used for single rows (the token embedding), so the references serve.
const simd::QuantKernels* GetQuantKernels() {
  static const simd::QuantKernels k = [] {
    simd::QuantKernels q;
    q.q8_0 = *reference_ops(DType::Q8_0);
    q.q8_0.from_float = QuantizeQ8_0;
    q.q8_0.vec_dot = VecDot<TypeQ8_0>;
    q.q8_1 = *reference_ops(DType::Q8_1);
    q.q8_1.from_float = QuantizeQ8_1;
    q.q4_0 = *reference_ops(DType::Q4_0);
    q.q4_0.vec_dot = VecDot<TypeQ4_0>;
    q.q4_1 = *reference_ops(DType::Q4_1);
    q.q4_1.vec_dot = VecDot<TypeQ4_1>;
    q.matmul = MatmulQuant;
#if defined(EDGELM_X86_128)
    q.exact = false;  // no fused multiply-add
#else
    q.exact = true;
#endif
    return q;
  }();
  return &k;
}

}  // namespace edgelm::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "kernels/simd_dispatch.hpp"

namespace edgelm::kernels::simd {

HWY_EXPORT(GetQuantKernels);

const QuantKernels& quant_kernels(int64_t target) {
  return *HWY_DISPATCH_TABLE(GetQuantKernels)[dispatch_index(target)]();
}

std::vector<int64_t> compiled_targets() { return supported_compiled_targets(); }

}  // namespace edgelm::kernels::simd
#endif  // HWY_ONCE
