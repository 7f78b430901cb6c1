// Float kernels, compiled once per Highway target: F32 / F16 / BF16 dot and matrix products,
// the element-wise operations of a transformer block, and attention over the F16 KV cache.
// Results differ from the scalar references only in summation order (and, for exp, by the
// approximation's ulp error); conversions to half precision are bit-identical.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "edgelm/error.hpp"
#include "kernels/simd.hpp"
#include "tensor/fp16.hpp"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/simd_float.cpp"
#include "hwy/aligned_allocator.h"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"

HWY_BEFORE_NAMESPACE();
namespace edgelm::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;
using DU32 = hn::RebindToUnsigned<DF>;
using DU16 = hn::Rebind<uint16_t, DF>;  // half as many bytes: one u16 per float lane

// Highway converts halves with F16C on AVX2/AVX-512 and natively on NEON; its emulation on
// other targets truncates instead of rounding, so those use the scalar conversions.
#undef EDGELM_NATIVE_F16  // set per target (this file is compiled once per target)
#if (HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2) || (HWY_ARCH_ARM && HWY_TARGET != HWY_SCALAR)
#define EDGELM_NATIVE_F16 1
#endif

HWY_INLINE VF LoadHalf(const uint16_t* p) {
  const DF df;
#if defined(EDGELM_NATIVE_F16)
  const hn::Rebind<hwy::float16_t, DF> dh;
  return hn::PromoteTo(df, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p)));
#else
  HWY_ALIGN float tmp[hn::MaxLanes(DF())];
  for (size_t i = 0; i < hn::Lanes(df); ++i) tmp[i] = fp16_to_f32(p[i]);
  return hn::Load(df, tmp);
#endif
}

HWY_INLINE void StoreHalf(VF v, uint16_t* p) {
#if defined(EDGELM_NATIVE_F16)
  const hn::Rebind<hwy::float16_t, DF> dh;
  hn::StoreU(hn::DemoteTo(dh, v), dh, reinterpret_cast<hwy::float16_t*>(p));
#else
  const DF df;
  HWY_ALIGN float tmp[hn::MaxLanes(DF())];
  hn::Store(v, df, tmp);
  for (size_t i = 0; i < hn::Lanes(df); ++i) p[i] = f32_to_fp16(tmp[i]);
#endif
}

// v rounded to half precision and back (how llama.cpp's F16 operands see a float).
HWY_INLINE VF RoundToHalf(VF v) {
  HWY_ALIGN uint16_t h[hn::MaxLanes(DF())];
  StoreHalf(v, h);
  return LoadHalf(h);
}

// bf16 is the top half of a float: widen and shift, exact on every target.
HWY_INLINE VF LoadBF16(const uint16_t* p) {
  const DF df;
  const DU32 du32;
  return hn::BitCast(df, hn::ShiftLeft<16>(hn::PromoteTo(du32, hn::LoadU(DU16(), p))));
}

HWY_INLINE float ReduceSum(VF v) { return hn::GetLane(hn::SumOfLanes(DF(), v)); }

// a * b + c rounded once. Highway's MulAdd is fused wherever the CPU has FMA (AVX2, AVX-512,
// NEON); its one-lane SCALAR target multiplies and adds, so that target fuses lane by lane.
HWY_INLINE VF Fma(VF a, VF b, VF c) {
#if HWY_TARGET == HWY_SCALAR
  const DF df;
  return hn::Set(df, std::fma(hn::GetLane(a), hn::GetLane(b), hn::GetLane(c)));
#else
  return hn::MulAdd(a, b, c);
#endif
}

// exp_poly (kernels.hpp) on every lane, bit for bit where the target has fused multiply-add.
HWY_INLINE VF ExpPoly(VF x) {
  const DF df;
  const hn::RebindToSigned<DF> di;
  const VF shift = hn::Set(df, 0x1.8p23f);
  const VF n = hn::Sub(Fma(x, hn::Set(df, 0x1.715476p+0f), shift), shift);
  VF b = Fma(hn::Neg(n), hn::Set(df, 0x1.62e4p-1f), x);
  b = Fma(hn::Neg(n), hn::Set(df, 0x1.7f7d1cp-20f), b);
  const VF u = hn::Mul(b, b);
  const VF j = Fma(
      Fma(Fma(hn::Set(df, 0x1.0e4020p-7f), b, hn::Set(df, 0x1.573e2ep-5f)), u,
                 Fma(hn::Set(df, 0x1.555e66p-3f), b, hn::Set(df, 0x1.fffdb6p-2f))),
      u, Fma(hn::Set(df, 0x1.ffffecp-1f), b, hn::Set(df, 1.0f)));
  const auto big = hn::Gt(hn::Abs(n), hn::Set(df, 192.0f));
  // j * 2^e1 * 2^e2 with e1 = floor(n / 2), as exp_poly does; lanes with |n| > 192 (and NaN,
  // whose j is NaN) never use the exponents' value.
  const auto ni = hn::ConvertTo(di, hn::IfThenZeroElse(big, n));
  const auto e1 = hn::ShiftRight<1>(ni);
  const auto e2 = hn::Sub(ni, e1);
  const auto bias = hn::Set(di, 127);
  const VF p1 = hn::BitCast(df, hn::ShiftLeft<23>(hn::Add(e1, bias)));
  const VF p2 = hn::BitCast(df, hn::ShiftLeft<23>(hn::Add(e2, bias)));
  const VF res = hn::Mul(hn::Mul(j, p1), p2);
  const VF alt = hn::IfThenZeroElse(hn::Le(n, hn::Zero(df)), hn::Set(df, HUGE_VALF));
  return hn::IfThenElse(big, alt, res);
}

// reduce16 (kernels.hpp) of sixteen vectors, lane by lane.
HWY_INLINE VF Reduce16(const VF* a) {
  VF b[8];
  for (int i = 0; i < 8; ++i) b[i] = hn::Add(a[i], a[i + 8]);
  for (int i = 0; i < 4; ++i) b[i] = hn::Add(b[i], b[i + 4]);
  return hn::Add(hn::Add(b[0], b[2]), hn::Add(b[1], b[3]));
}

// ---------------------------------------------------------------------------------------------
// GEMM (kernels::gemm): C = [C +] op(A) op(B) in the loop nest of a packed matrix product.
// B is packed per (k block, column block) into panels of kGemmNR columns, k-major; A per (row
// block, k block) into panels of kGemmMR rows, k-major; a register tile of kGemmMR rows x
// kGemmNR columns (two vectors) then runs down a panel pair with one broadcast and two
// multiply-adds per row and k. Panels are zero-padded, so the tile never reads past its data;
// a tile that overhangs C is stored through a buffer.
constexpr int64_t kGemmMR = 6;
constexpr int64_t kGemmNR = 2 * static_cast<int64_t>(hn::MaxLanes(DF()));
constexpr int64_t kGemmMC = 16 * kGemmMR;   // rows of A per packed block (L2)
constexpr int64_t kGemmNC = 256 * kGemmNR;  // columns of B per packed block (L3)

// Lines [l0, l0 + nl) of an operand, depth [k0, k0 + kc), into panels of P lines: per k, P
// consecutive lines (zeros past the last). Element (line l, depth k) is x[k * ld + l] when
// `along_lines` (the lines run along memory), else x[l * ld + k]. A's lines are its rows m,
// B's its columns n.
template <int64_t P>
void GemmPack(const float* x, size_t ld, bool along_lines, int64_t l0, int64_t nl, int64_t k0, int64_t kc, float* out) {
  for (int64_t lp = 0; lp < nl; lp += P) {
    const int64_t lines = std::min(P, nl - lp);
    float* panel = out + lp * kc;
    if (along_lines) {  // P contiguous floats per k
      for (int64_t k = 0; k < kc; ++k) {
        const float* src = x + (k0 + k) * ld + l0 + lp;
        float* dst = panel + k * P;
        std::copy_n(src, lines, dst);
        std::fill(dst + lines, dst + P, 0.0f);
      }
    } else {  // each line is a row of x
      for (int64_t l = 0; l < P; ++l) {
        const float* src = x + (l0 + lp + l) * ld + k0;
        for (int64_t k = 0; k < kc; ++k) panel[k * P + l] = l < lines ? src[k] : 0.0f;
      }
    }
  }
}

// The register tile: C[0..rows) x [0..cols) = [C +] panel_a^T panel_b over kc.
HWY_NOINLINE void GemmTile(int64_t kc, const float* HWY_RESTRICT pa, const float* HWY_RESTRICT pb, size_t pb_stride,
                           float* c, size_t ldc, int64_t rows, int64_t cols, bool add) {
  const DF df;
  const size_t L = hn::Lanes(df);
  VF acc0[kGemmMR], acc1[kGemmMR];
  for (int r = 0; r < kGemmMR; ++r) acc0[r] = acc1[r] = hn::Zero(df);
  for (int64_t k = 0; k < kc; ++k) {
    const VF b0 = hn::LoadU(df, pb);
    const VF b1 = hn::LoadU(df, pb + L);
    for (int r = 0; r < kGemmMR; ++r) {
      const VF a = hn::Set(df, pa[r]);
      acc0[r] = hn::MulAdd(a, b0, acc0[r]);
      acc1[r] = hn::MulAdd(a, b1, acc1[r]);
    }
    pa += kGemmMR;
    pb += pb_stride;
  }
  if (rows == kGemmMR && cols == kGemmNR) {
    for (int r = 0; r < kGemmMR; ++r) {
      float* cr = c + r * ldc;
      if (add) {
        hn::StoreU(hn::Add(hn::LoadU(df, cr), acc0[r]), df, cr);
        hn::StoreU(hn::Add(hn::LoadU(df, cr + L), acc1[r]), df, cr + L);
      } else {
        hn::StoreU(acc0[r], df, cr);
        hn::StoreU(acc1[r], df, cr + L);
      }
    }
    return;
  }
  HWY_ALIGN float tile[kGemmMR * kGemmNR];
  for (int r = 0; r < kGemmMR; ++r) {
    hn::Store(acc0[r], df, tile + r * kGemmNR);
    hn::Store(acc1[r], df, tile + r * kGemmNR + L);
  }
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j) c[r * ldc + j] = add ? c[r * ldc + j] + tile[r * kGemmNR + j] : tile[r * kGemmNR + j];
}

void Gemm(const GemmArgs& g) {
  const int64_t M = g.m1 - g.m0, N = g.n1 - g.n0;
  if (M <= 0 || N <= 0) return;
  if (g.K <= 0) {
    if (!g.accumulate)
      for (int64_t m = g.m0; m < g.m1; ++m) std::fill_n(g.c + m * g.ldc + g.n0, N, 0.0f);
    return;
  }
  const int64_t kc_max = std::min(kGemmKBlock, g.K);
  const int64_t nc_max = std::min(kGemmNC, (N + kGemmNR - 1) / kGemmNR * kGemmNR);
  const int64_t mc_max = std::min(kGemmMC, (M + kGemmMR - 1) / kGemmMR * kGemmMR);
  thread_local hwy::AlignedFreeUniquePtr<float[]> pack_a, pack_b;
  thread_local size_t cap_a = 0, cap_b = 0;
  const size_t need_a = static_cast<size_t>(mc_max * kc_max), need_b = static_cast<size_t>(nc_max * kc_max);
  if (cap_a < need_a) pack_a = hwy::AllocateAligned<float>(cap_a = need_a);
  if (cap_b < need_b) pack_b = hwy::AllocateAligned<float>(cap_b = need_b);
  for (int64_t j0 = g.n0; j0 < g.n1; j0 += kGemmNC) {
    const int64_t nc = std::min(kGemmNC, g.n1 - j0);
    for (int64_t k0 = 0; k0 < g.K; k0 += kGemmKBlock) {
      const int64_t kc = std::min(kGemmKBlock, g.K - k0);
      const bool add = g.accumulate || k0 > 0;
      // B's whole panels are read in place where its rows run along n (and their stride is not
      // a multiple of 1 KiB, whose rows would share L1 sets); the rest is packed.
      const bool direct = !g.trans_b && g.ldb % 256 != 0;
      const int64_t packed_from = direct ? nc / kGemmNR * kGemmNR : 0;
      if (packed_from < nc)
        GemmPack<kGemmNR>(g.b, g.ldb, !g.trans_b, j0 + packed_from, nc - packed_from, k0, kc, pack_b.get());
      for (int64_t i0 = g.m0; i0 < g.m1; i0 += kGemmMC) {
        const int64_t mc = std::min(kGemmMC, g.m1 - i0);
        GemmPack<kGemmMR>(g.a, g.lda, g.trans_a, i0, mc, k0, kc, pack_a.get());
        for (int64_t jp = 0; jp < nc; jp += kGemmNR) {
          const bool in_place = jp < packed_from;
          const float* pb = in_place ? g.b + k0 * g.ldb + j0 + jp : pack_b.get() + (jp - packed_from) * kc;
          const size_t pb_stride = in_place ? g.ldb : static_cast<size_t>(kGemmNR);
          for (int64_t ip = 0; ip < mc; ip += kGemmMR)
            GemmTile(kc, pack_a.get() + ip * kc, pb, pb_stride, g.c + (i0 + ip) * g.ldc + j0 + jp, g.ldc,
                     std::min(kGemmMR, mc - ip), std::min(kGemmNR, nc - jp), add);
        }
      }
    }
  }
}

// Float32 weights times at least this many tokens go through Gemm.
constexpr int64_t kGemmMinTokens = 4;

// ---------------------------------------------------------------------------------------------
// Dot products: w and x of the same float type.
enum class FKind { F32, F16, BF16 };

template <FKind K>
HWY_INLINE VF LoadAs(const void* p, size_t i) {
  if constexpr (K == FKind::F32) {
    return hn::LoadU(DF(), static_cast<const float*>(p) + i);
  } else if constexpr (K == FKind::F16) {
    return LoadHalf(static_cast<const uint16_t*>(p) + i);
  } else {
    return LoadBF16(static_cast<const uint16_t*>(p) + i);
  }
}

template <FKind K>
HWY_INLINE float ScalarAt(const void* p, size_t i) {
  if constexpr (K == FKind::F32) {
    return static_cast<const float*>(p)[i];
  } else if constexpr (K == FKind::F16) {
    return fp16_to_f32(static_cast<const uint16_t*>(p)[i]);
  } else {
    return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
  }
}

template <FKind K>
constexpr size_t ElemBytes() {
  return K == FKind::F32 ? 4 : 2;
}

// R rows (row_bytes apart) times one activation row.
template <FKind K, int R>
HWY_INLINE void DotRows(const std::byte* w, size_t row_bytes, const void* x, int64_t n, float* out) {
  const DF df;
  const size_t N = hn::Lanes(df);
  VF acc[R];
  for (int r = 0; r < R; ++r) acc[r] = hn::Zero(df);
  size_t i = 0;
  for (; i + N <= static_cast<size_t>(n); i += N) {
    const VF xv = LoadAs<K>(x, i);
    for (int r = 0; r < R; ++r) acc[r] = hn::MulAdd(LoadAs<K>(w + r * row_bytes, i), xv, acc[r]);
  }
  for (int r = 0; r < R; ++r) {
    float s = ReduceSum(acc[r]);
    for (size_t j = i; j < static_cast<size_t>(n); ++j) s += ScalarAt<K>(w + r * row_bytes, j) * ScalarAt<K>(x, j);
    out[r] = s;
  }
}

template <FKind K>
float VecDot(int64_t n, const void* w, const void* x) {
  float out;
  DotRows<K, 1>(static_cast<const std::byte*>(w), 0, x, n, &out);
  return out;
}

template <FKind K>
void MatmulF(const TensorView& w, const std::byte* xq, size_t xq_stride, float* y, size_t y_stride,
             int64_t n_tok, int64_t r0, int64_t r1) {
  constexpr int R = 4;
  const int64_t n = w.ne[0];
  const size_t rb = w.row_bytes();
  if constexpr (K == FKind::F32) {
    if (n_tok >= kGemmMinTokens) {  // y = x W^T as a packed matrix product
      Gemm({.trans_b = true, .K = n, .a = reinterpret_cast<const float*>(xq), .lda = xq_stride / sizeof(float),
            .b = reinterpret_cast<const float*>(w.data), .ldb = static_cast<size_t>(n), .c = y, .ldc = y_stride,
            .m0 = 0, .m1 = n_tok, .n0 = r0, .n1 = r1});
      return;
    }
  }
  for (int64_t t = 0; t < n_tok; ++t) {
    const std::byte* x = xq + t * xq_stride;
    float* yt = y + t * y_stride;
    int64_t r = r0;
    for (; r + R <= r1; r += R) {
      float out[R];
      DotRows<K, R>(w.data + r * rb, rb, x, n, out);
      for (int i = 0; i < R; ++i) yt[r + i] = out[i];
    }
    for (; r < r1; ++r) DotRows<K, 1>(w.data + r * rb, rb, x, n, &yt[r]);
  }
}

void MatmulFloat(const TensorView& w, const std::byte* xq, size_t xq_stride, float* y,
                 size_t y_stride, int64_t n_tok, int64_t r0, int64_t r1) {
  switch (w.type) {
    case DType::F32: return MatmulF<FKind::F32>(w, xq, xq_stride, y, y_stride, n_tok, r0, r1);
    case DType::F16: return MatmulF<FKind::F16>(w, xq, xq_stride, y, y_stride, n_tok, r0, r1);
    case DType::BF16: return MatmulF<FKind::BF16>(w, xq, xq_stride, y, y_stride, n_tok, r0, r1);
    default: throw Error("internal: no float matmul for " + std::string(dtype_name(w.type)));
  }
}

void F16FromFloat(const float* src, void* dst, int64_t n) {
  const DF df;
  const size_t N = hn::Lanes(df);
  auto* d = static_cast<uint16_t*>(dst);
  int64_t i = 0;
  for (; i + static_cast<int64_t>(N) <= n; i += N) StoreHalf(hn::LoadU(df, src + i), d + i);
  for (; i < n; ++i) d[i] = f32_to_fp16(src[i]);
}

void F16ToFloat(const void* src, float* dst, int64_t n) {
  const DF df;
  const size_t N = hn::Lanes(df);
  const auto* s = static_cast<const uint16_t*>(src);
  int64_t i = 0;
  for (; i + static_cast<int64_t>(N) <= n; i += N) hn::StoreU(LoadHalf(s + i), df, dst + i);
  for (; i < n; ++i) dst[i] = fp16_to_f32(s[i]);
}

void ToF16(const float* src, uint16_t* dst, int64_t n) { F16FromFloat(src, dst, n); }

// ---------------------------------------------------------------------------------------------
// Element-wise operations.
// The sum of squares adds float products in double, as the reference does; only the order of
// the (exact-to-53-bit) additions differs.
void RmsNorm(const float* x, const float* w, float* out, int64_t n, float eps) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  double ss = 0;
  int64_t i = 0;
#if HWY_TARGET != HWY_SCALAR
  const hn::Half<DF> dh;
  const hn::Repartition<double, DF> dd;
  auto s0 = hn::Zero(dd), s1 = hn::Zero(dd);
  for (; i + N <= n; i += N) {
    const VF v = hn::LoadU(df, x + i);
    const VF p = hn::Mul(v, v);
    s0 = hn::Add(s0, hn::PromoteTo(dd, hn::LowerHalf(dh, p)));
    s1 = hn::Add(s1, hn::PromoteTo(dd, hn::UpperHalf(dh, p)));
  }
  ss = hn::GetLane(hn::SumOfLanes(dd, hn::Add(s0, s1)));
#endif
  for (; i < n; ++i) ss += static_cast<double>(x[i] * x[i]);
  const float scale = 1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(n)) + eps);
  const VF vs = hn::Set(df, scale);
  i = 0;
  for (; i + N <= n; i += N) {
    VF v = hn::Mul(hn::LoadU(df, x + i), vs);
    if (w) v = hn::Mul(v, hn::LoadU(df, w + i));
    hn::StoreU(v, df, out + i);
  }
  for (; i < n; ++i) out[i] = w ? x[i] * scale * w[i] : x[i] * scale;
}

void Softmax(float* x, int64_t n) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  float mx = -INFINITY;
  int64_t i = 0;
  if (n >= N) {
    VF vm = hn::Set(df, -INFINITY);
    for (; i + N <= n; i += N) vm = hn::Max(vm, hn::LoadU(df, x + i));
    mx = hn::GetLane(hn::MaxOfLanes(df, vm));
  }
  for (; i < n; ++i) mx = std::max(mx, x[i]);
  const VF vmx = hn::Set(df, mx);
  VF vsum = hn::Zero(df);
  i = 0;
  for (; i + N <= n; i += N) {
    const VF e = hn::CallExp(df, hn::Sub(hn::LoadU(df, x + i), vmx));
    hn::StoreU(e, df, x + i);
    vsum = hn::Add(vsum, e);
  }
  double sum = ReduceSum(vsum);
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  const VF vinv = hn::Set(df, inv);
  i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::Mul(hn::LoadU(df, x + i), vinv), df, x + i);
  for (; i < n; ++i) x[i] *= inv;
}

void Rope(float* x, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float* cs, const float* sn,
          bool neox) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const int64_t half = n_rot / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* xh = x + h * head_dim;
    int64_t i = 0;
    if (neox) {  // pairs (i, i + n_rot/2): two contiguous halves, plain vector code
      for (; i + N <= half; i += N) {
        const VF x0 = hn::LoadU(df, xh + i), x1 = hn::LoadU(df, xh + half + i);
        const VF c = hn::LoadU(df, cs + i), s = hn::LoadU(df, sn + i);
        hn::StoreU(Fma(x0, c, hn::Neg(hn::Mul(x1, s))), df, xh + i);
        hn::StoreU(Fma(x0, s, hn::Mul(x1, c)), df, xh + half + i);
      }
    }
    for (; i < half; ++i) {
      const int64_t a = neox ? i : 2 * i;
      const int64_t b = neox ? i + half : 2 * i + 1;
      const float x0 = xh[a], x1 = xh[b];
      xh[a] = std::fma(x0, cs[i], -(x1 * sn[i]));
      xh[b] = std::fma(x0, sn[i], x1 * cs[i]);
    }
  }
}

void SwiGlu(const float* gate, const float* up, float* out, int64_t n) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const VF one = hn::Set(df, 1.0f);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const VF g = hn::LoadU(df, gate + i);
    const VF e = ExpPoly(hn::Neg(g));
    hn::StoreU(hn::Mul(hn::Div(g, hn::Add(one, e)), hn::LoadU(df, up + i)), df, out + i);
  }
  for (; i < n; ++i) out[i] = gate[i] / (1.0f + exp_poly(-gate[i])) * up[i];
}

void GeGlu(const float* gate, const float* up, float* out, int64_t n) {
  int64_t i = 0;
#if defined(EDGELM_NATIVE_F16)
  const DF df;
  const hn::RebindToSigned<DF> di;
  const hn::Rebind<hwy::float16_t, DF> dh;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const float* table = gelu_table_f32();
  const VF lo = hn::Set(df, -10.0f), hi = hn::Set(df, 10.0f);
  for (; i + N <= n; i += N) {
    const VF g = hn::LoadU(df, gate + i), u = hn::LoadU(df, up + i);
    const auto h = hn::BitCast(DU16(), hn::DemoteTo(dh, g));  // round to nearest even, as f32_to_fp16
    const VF t = hn::GatherIndex(df, table, hn::BitCast(di, hn::PromoteTo(DU32(), h)));
    const VF y = hn::IfThenElse(hn::Ge(g, hi), hn::Mul(g, u), hn::IfThenZeroElse(hn::Le(g, lo), hn::Mul(t, u)));
    hn::StoreU(y, df, out + i);
  }
#endif
  geglu(gate + i, up + i, out + i, n - i);
}

void Add(float* y, const float* x, int64_t n) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::Add(hn::LoadU(df, y + i), hn::LoadU(df, x + i)), df, y + i);
  for (; i < n; ++i) y[i] += x[i];
}

// ---------------------------------------------------------------------------------------------
// Attention of a group of query heads over one KV head's F16 cache: attend_reference's
// numerics (kernels.hpp), vectorised across positions (scores) and dimensions (outputs). The
// dot products' lane structure is llama.cpp's: lane l of 16 takes terms l, l + 16, ... (tiled
// order) or lane l of accumulator j takes terms 64c + 16j + l (vector order); here each lane
// becomes one vector of independent dot products, so the sums are the same operations in the
// same order.
constexpr int kMaxGroup = 4;  // query heads processed together (K/V loaded once for all)
constexpr int kBlk = simd::kKeyBlock;
constexpr int kLanes = kAttnLanes;

template <int G>
HWY_INLINE void AttendGroup(const float* q, size_t q_stride, const uint16_t* kt, size_t kt_stride, const uint16_t* v,
                            size_t v_stride, int64_t hd, int n_kv, float scale, float* scores, float* out,
                            size_t out_stride, AttnOrder order) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const int64_t parts = kBlk / N;
  constexpr size_t kMaxHd = 512;
  HWY_ALIGN float qh[G][kMaxHd];
  for (int g = 0; g < G; ++g) {  // queries rounded to half precision, a vector at a time
    int64_t i = 0;
    for (; i + N <= hd; i += N) hn::Store(RoundToHalf(hn::LoadU(df, q + g * q_stride + i)), df, qh[g] + i);
    for (; i < hd; ++i) qh[g][i] = fp16_to_f32(f32_to_fp16(q[g * q_stride + i]));
  }
  const int64_t n_pad = (n_kv + kBlk - 1) / kBlk * kBlk;
  const bool tiled = order == AttnOrder::kBatch && hd % kLanes == 0;
  const int64_t np = tiled ? hd : hd - hd % 64;  // dims summed in vector lanes (vector order)

  // ---- scores: lanes are the block's positions ----
  const VF vscale = hn::Set(df, scale);
  for (int64_t blk = 0; blk * kBlk < n_kv; ++blk) {
    const uint16_t* kb = kt + blk * kt_stride;
    for (int64_t pt = 0; pt < parts; ++pt) {
      VF lane[G][kLanes];
      for (int l = 0; l < kLanes; ++l) {
        if (tiled) {
          VF acc[G];
          for (int g = 0; g < G; ++g) acc[g] = hn::Zero(df);
          for (int64_t i = l; i < hd; i += kLanes) {
            const VF kv = LoadHalf(kb + i * kBlk + pt * N);
            for (int g = 0; g < G; ++g) acc[g] = Fma(kv, hn::Set(df, qh[g][i]), acc[g]);
          }
          for (int g = 0; g < G; ++g) lane[g][l] = acc[g];
        } else {
          VF acc[4][G];
          for (int j = 0; j < 4; ++j)
            for (int g = 0; g < G; ++g) acc[j][g] = hn::Zero(df);
          for (int64_t c = 0; c < np; c += 64) {
            for (int j = 0; j < 4; ++j) {
              const int64_t i = c + 16 * j + l;
              const VF kv = LoadHalf(kb + i * kBlk + pt * N);
              for (int g = 0; g < G; ++g) acc[j][g] = Fma(kv, hn::Set(df, qh[g][i]), acc[j][g]);
            }
          }
          for (int g = 0; g < G; ++g)
            lane[g][l] = hn::Add(hn::Add(acc[0][g], acc[2][g]), hn::Add(acc[1][g], acc[3][g]));
        }
      }
      for (int g = 0; g < G; ++g) {
        float* sc = scores + g * n_pad + blk * kBlk + pt * N;
        const VF r = Reduce16(lane[g]);
        if (np == hd) {
          hn::StoreU(hn::Mul(r, vscale), df, sc);
        } else {  // vector order's leftover dimensions, added in double
          HWY_ALIGN float part[hn::MaxLanes(DF())];
          hn::Store(r, df, part);
          for (int64_t k = 0; k < N; ++k) {
            double sum = part[k];
            const int64_t p = blk * kBlk + pt * N + k;
            for (int64_t i = np; i < hd; ++i)
              sum += static_cast<double>(fp16_to_f32(kb[i * kBlk + p % kBlk]) * qh[g][i]);
            sc[k] = static_cast<float>(sum) * scale;
          }
        }
      }
    }
  }

  // ---- softmax: llama.cpp's exp and its sums of 16 positions, accumulated in double ----
  for (int g = 0; g < G; ++g) {
    float* sc = scores + g * n_pad;
    float mx = -INFINITY;
    for (int p = 0; p < n_kv; ++p) mx = sc[p] > mx ? sc[p] : mx;
    for (int p = n_kv; p < n_pad; ++p) sc[p] = -INFINITY;  // exp gives 0: padding adds nothing
    const VF vmx = hn::Set(df, mx);
    for (int64_t p = 0; p < n_pad; p += N) hn::StoreU(ExpPoly(hn::Sub(hn::LoadU(df, sc + p), vmx)), df, sc + p);
    double sum = 0;
    for (int64_t p = 0; p < n_pad; p += kLanes) sum += static_cast<double>(reduce16(sc + p));
    const VF vinv = hn::Set(df, static_cast<float>(1.0 / sum));
    for (int64_t p = 0; p < n_pad; p += N) {
      hn::StoreU(RoundToHalf(hn::Mul(hn::LoadU(df, sc + p), vinv)), df, sc + p);  // weights rounded to half precision
    }
  }

  // ---- outputs: lanes are dimensions; accumulator m of M takes positions m, m + M, ... ----
  const int M = tiled || order == AttnOrder::kBatch ? kLanes : 64;
  int64_t i = 0;
  for (; i + N <= hd; i += N) {
    VF acc[64][G];
    for (int m = 0; m < M; ++m) {
      for (int g = 0; g < G; ++g) acc[m][g] = hn::Zero(df);
      for (int p = m; p < n_kv; p += M) {
        const VF vv = LoadHalf(v + static_cast<size_t>(p) * v_stride + i);
        for (int g = 0; g < G; ++g) acc[m][g] = Fma(vv, hn::Set(df, scores[g * n_pad + p]), acc[m][g]);
      }
    }
    for (int g = 0; g < G; ++g) {
      VF lane[kLanes];
      for (int l = 0; l < kLanes; ++l)
        lane[l] = M == kLanes ? acc[l][g]
                              : hn::Add(hn::Add(acc[l][g], acc[32 + l][g]), hn::Add(acc[16 + l][g], acc[48 + l][g]));
      hn::StoreU(Reduce16(lane), df, out + g * out_stride + i);
    }
  }
  if (i < hd) {  // dimensions past the last whole vector: the reference's scalar sums
    for (int g = 0; g < G; ++g) {
      for (int64_t d = i; d < hd; ++d) {
        float acc[64] = {};
        for (int p = 0; p < n_kv; ++p)
          acc[p % M] = std::fma(fp16_to_f32(v[static_cast<size_t>(p) * v_stride + d]), scores[g * n_pad + p], acc[p % M]);
        float lane[kLanes];
        for (int l = 0; l < kLanes; ++l)
          lane[l] = M == kLanes ? acc[l] : (acc[l] + acc[32 + l]) + (acc[16 + l] + acc[48 + l]);
        out[g * out_stride + d] = reduce16(lane);
      }
    }
  }
}

void Attend(const float* q, size_t q_stride, int n_q, const uint16_t* kt, size_t kt_stride, const uint16_t* v,
            size_t v_stride, int64_t head_dim, int n_kv, float scale, float* scores, float* out, size_t out_stride,
            AttnOrder order) {
  if (head_dim > 512) throw Error("internal: head dimension too large");
  int g = 0;
  for (; g + kMaxGroup <= n_q; g += kMaxGroup)
    AttendGroup<kMaxGroup>(q + g * q_stride, q_stride, kt, kt_stride, v, v_stride, head_dim, n_kv, scale, scores,
                           out + g * out_stride, out_stride, order);
  switch (n_q - g) {
    case 3:
      AttendGroup<3>(q + g * q_stride, q_stride, kt, kt_stride, v, v_stride, head_dim, n_kv, scale, scores,
                     out + g * out_stride, out_stride, order);
      break;
    case 2:
      AttendGroup<2>(q + g * q_stride, q_stride, kt, kt_stride, v, v_stride, head_dim, n_kv, scale, scores,
                     out + g * out_stride, out_stride, order);
      break;
    case 1:
      AttendGroup<1>(q + g * q_stride, q_stride, kt, kt_stride, v, v_stride, head_dim, n_kv, scale, scores,
                     out + g * out_stride, out_stride, order);
      break;
    default: break;
  }
}

const simd::FloatKernels* GetFloatKernels() {
  static const simd::FloatKernels k = [] {
    simd::FloatKernels f;
    f.f32 = *reference_ops(DType::F32);
    f.f32.vec_dot = VecDot<FKind::F32>;
    f.f16 = *reference_ops(DType::F16);
    f.f16.vec_dot = VecDot<FKind::F16>;
    f.f16.from_float = F16FromFloat;
    f.f16.to_float = F16ToFloat;
    f.bf16 = *reference_ops(DType::BF16);
    f.bf16.vec_dot = VecDot<FKind::BF16>;
    f.matmul = MatmulFloat;
    f.rmsnorm = RmsNorm;
    f.softmax = Softmax;
    f.rope = Rope;
    f.swiglu = SwiGlu;
    f.geglu = GeGlu;
    f.add = Add;
    f.to_f16 = ToF16;
    f.attend = Attend;
    f.gemm = Gemm;
    return f;
  }();
  return &k;
}

}  // namespace edgelm::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "kernels/simd_dispatch.hpp"

namespace edgelm::kernels::simd {

void rope_angles(int64_t n_rot, int64_t pos, float freq_base, float freq_scale, float* cs, float* sn) {
  const float theta_scale = std::pow(freq_base, -2.0f / static_cast<float>(n_rot));
  float theta = static_cast<float>(pos) * freq_scale;
  for (int64_t i = 0; i < n_rot / 2; ++i) {
    cs[i] = std::cos(theta);
    sn[i] = std::sin(theta);
    theta *= theta_scale;
  }
}

HWY_EXPORT(GetFloatKernels);

const FloatKernels& float_kernels(int64_t target) {
  return *HWY_DISPATCH_TABLE(GetFloatKernels)[dispatch_index(target)]();
}

}  // namespace edgelm::kernels::simd
#endif  // HWY_ONCE
