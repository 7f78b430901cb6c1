// Scalar references for Q5_0, Q5_1, the K-quants and Q8_K: the oracle for faster kernels, and
// the quantizers `edgelm quantize` uses.
//
// The quantizers follow the published llama.cpp reference algorithms, so that a model we
// quantize is the model llama.cpp would have made, byte for byte (tests/kernels/test_kquants.cpp
// compares with the llama-cpp-python wheel's quantize_row_*_ref):
//  * Q5_0 / Q5_1: one scale (and min) per block of 32 from the block's extremes.
//  * Q4_K / Q5_K / Q2_K ("scale + min" types): each sub-block gets a weighted least-squares fit
//    x ~ scale * q + min (min <= 0), searched over a small range of candidate step sizes around
//    (max - min) / nmax; the per-sub-block scales and mins are then quantized against the
//    largest of each (6 bits in Q4_K/Q5_K, 4 bits in Q2_K) and the elements re-rounded with the
//    scales actually stored.
//  * Q6_K ("symmetric" type): each sub-block of 16 gets the scale minimising the x^2-weighted
//    error over 19 candidate step sizes around max / nmax (sign taken from the element of
//    largest magnitude); scales quantized to 8 bits against the largest.
//  * Q3_K: symmetric like Q6_K, but each sub-block starts from the max-based grid and refines
//    its levels by coordinate descent (one element at a time moves to the level that best fits
//    the least-squares scale of the others); 6-bit scales against the largest.
//  * Q8_K: symmetric, 127 steps on the element of largest magnitude, with per-16 sums.
// Arithmetic is float, in the same order as the reference, because the rounding decisions (and
// therefore the bytes) depend on it.

// No fused multiply-adds (set before any include, so every function here agrees): with them the
// rounding decisions, and so the bytes, would depend on the build's target (-march=native,
// ARM64). Without them every IEEE machine quantizes alike.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "kernels/reference_kquants.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/quantize_fits.hpp"
#include "tensor/blocks.hpp"
#include "tensor/fp16.hpp"
#include "tensor/kquant_blocks.hpp"

namespace edgelm::kernels {
namespace {

// Truncation toward zero into [lo, hi] (the legacy formats round by adding 0.5 and truncating).
int trunc_clamped(float v, int lo, int hi) {
  if (!(v >= static_cast<float>(lo))) return lo;  // also catches NaN
  if (v >= static_cast<float>(hi)) return hi;
  return static_cast<int>(v);
}

// Eight float lanes added as ggml's hsum_float_8 adds an AVX register: (a0 + a4) + (a2 + a6),
// plus (a1 + a5) + (a3 + a7).
float reduce_lanes8(const float* a) {
  const float a0 = a[0] + a[4], a1 = a[1] + a[5], a2 = a[2] + a[6], a3 = a[3] + a[7];
  return (a0 + a2) + (a1 + a3);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Per-group fits and K-quant last steps, shared with the importance-weighted quantizers
// (quantize_fits.hpp)

float fit_scale_offset(int n, int nmax, const float* x, const float* w, uint8_t* L,
                       float* neg_min, float rmin, float rdelta, int nstep, bool use_abs) {
  float lo = x[0], hi = x[0];
  float sum_w = w[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (lo > 0) lo = 0;  // the offset only ever shifts down: positive groups keep 0 as a level
  if (hi == lo) {
    std::fill(L, L + n, uint8_t{0});
    *neg_min = -lo;
    return 0.0f;
  }
  auto error_of = [&](float scale, float offset, const uint8_t* levels) {
    float err = 0;
    for (int i = 0; i < n; ++i) {
      const float diff = scale * levels[i] + offset - x[i];
      err += w[i] * (use_abs ? std::fabs(diff) : diff * diff);
    }
    return err;
  };

  float iscale = nmax / (hi - lo);
  float scale = 1 / iscale;
  float offset = lo;
  for (int i = 0; i < n; ++i) L[i] = static_cast<uint8_t>(clamp_int(nearest_int(iscale * (x[i] - lo)), 0, nmax));
  float best = error_of(scale, offset, L);

  uint8_t trial[32];
  for (int k = 0; k <= nstep; ++k) {
    iscale = (rmin + rdelta * k + nmax) / (hi - offset);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = clamp_int(nearest_int(iscale * (x[i] - offset)), 0, nmax);
      trial[i] = static_cast<uint8_t>(l);
      sum_l += w[i] * l;
      sum_l2 += w[i] * l * l;
      sum_xl += w[i] * l * x[i];
    }
    const float det = sum_w * sum_l2 - sum_l * sum_l;
    if (det > 0) {
      float s = (sum_w * sum_xl - sum_x * sum_l) / det;
      float m = (sum_l2 * sum_x - sum_l * sum_xl) / det;
      if (m > 0) {  // the best offset would be positive: pin it to 0 and refit the scale alone
        m = 0;
        s = sum_xl / sum_l2;
      }
      const float err = error_of(s, m, trial);
      if (err < best) {
        std::copy(trial, trial + n, L);
        best = err;
        scale = s;
        offset = m;
      }
    }
  }
  *neg_min = -offset;
  return scale;
}

float fit_symmetric(int n, int nmax, const float* x, const float* w, uint8_t* L) {
  float amax;
  const float max = largest_magnitude(n, x, &amax);
  if (amax < kGroupMaxEps) {
    std::fill(L, L + n, uint8_t{0});
    return 0.0f;
  }
  auto project = [&](float iscale, float& sumlx, float& suml2) {
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1);
      const float wi = w ? w[i] : x[i] * x[i];
      sumlx += wi * x[i] * l;
      suml2 += wi * l * l;
    }
  };
  auto assign = [&](float iscale) {
    for (int i = 0; i < n; ++i) {
      L[i] = static_cast<uint8_t>(nmax + clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1));
    }
  };
  float iscale = -nmax / max;
  float sumlx, suml2;
  project(iscale, sumlx, suml2);
  assign(iscale);
  float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;  // = sumlx^2 / suml2, the part of sum(w x^2) the fit explains
  for (int k = -9; k <= 9; ++k) {
    if (k == 0) continue;
    iscale = -(nmax + 0.1f * k) / max;
    project(iscale, sumlx, suml2);
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      assign(iscale);
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

namespace {

// Re-rounding of the "scale + min" K-quants (Q4_K / Q5_K) against the stored 6-bit scales.
template <class Block>
void scale_min_reround(const float* x, const Block& y, uint8_t* L, int nmax) {
  const float d_all = fp16_to_f32(y.d), dmin_all = fp16_to_f32(y.dmin);
  for (int j = 0; j < 8; ++j) {
    const auto [sc, m] = q4_k_scale_min(y.scales, j);
    const float d = d_all * sc;
    if (d == 0) continue;  // the levels from the fit stand: they all decode to -dm anyway
    const float dm = dmin_all * m;
    for (int i = 0; i < 32; ++i) {
      L[32 * j + i] = static_cast<uint8_t>(clamp_int(nearest_int((x[32 * j + i] + dm) / d), 0, nmax));
    }
  }
}

// Re-rounding of the symmetric K-quants (Q3_K / Q6_K) against their stored scales: each of the
// 16 groups of 16 gets levels in [-bias, bias - 1], stored with + bias.
template <class ScaleOf>
void symmetric_reround(const float* x, float d_all, ScaleOf scale_of, int bias, uint8_t* L) {
  for (int j = 0; j < 16; ++j) {
    const float d = d_all * scale_of(j);
    if (d == 0) continue;
    for (int l = 0; l < 16; ++l) {
      L[16 * j + l] = static_cast<uint8_t>(clamp_int(nearest_int(x[16 * j + l] / d), -bias, bias - 1) + bias);
    }
  }
}

}  // namespace

void q2_k_requantize(const float* x, BlockQ2_K& y, uint8_t* L) {
  const float d_all = fp16_to_f32(y.d), dmin_all = fp16_to_f32(y.dmin);
  for (int j = 0; j < 16; ++j) {
    const float d = d_all * (y.scales[j] & 0x0F);
    if (d == 0) continue;
    const float dm = dmin_all * (y.scales[j] >> 4);
    for (int l = 0; l < 16; ++l) {
      L[16 * j + l] = static_cast<uint8_t>(clamp_int(nearest_int((x[16 * j + l] + dm) / d), 0, 3));
    }
  }
  std::memset(y.qs, 0, sizeof(y.qs));
  for (int e = 0; e < kQK_K; ++e) {
    y.qs[32 * (e / 128) + e % 32] |= static_cast<uint8_t>(L[e] << (2 * ((e / 32) % 4)));
  }
}

void q3_k_requantize(const float* x, BlockQ3_K& y, uint8_t* L) {
  symmetric_reround(x, fp16_to_f32(y.d), [&](int j) { return q3_k_scale(y.scales, j); }, 4, L);
  std::memset(y.hmask, 0, sizeof(y.hmask));
  std::memset(y.qs, 0, sizeof(y.qs));
  for (int e = 0; e < kQK_K; ++e) {
    if (L[e] > 3) y.hmask[e % 32] |= static_cast<uint8_t>(1 << (e / 32));
    y.qs[32 * (e / 128) + e % 32] |= static_cast<uint8_t>((L[e] & 3) << (2 * ((e / 32) % 4)));
  }
}

void q4_k_requantize(const float* x, BlockQ4_K& y, uint8_t* L) {
  scale_min_reround(x, y, L, 15);
  for (int e = 0; e < kQK_K; e += 64) {
    for (int l = 0; l < 32; ++l) y.qs[e / 2 + l] = static_cast<uint8_t>(L[e + l] | (L[e + 32 + l] << 4));
  }
}

void q5_k_requantize(const float* x, BlockQ5_K& y, uint8_t* L) {
  scale_min_reround(x, y, L, 31);
  std::memset(y.qh, 0, sizeof(y.qh));
  for (int e = 0; e < kQK_K; e += 64) {
    for (int l = 0; l < 32; ++l) {
      y.qs[e / 2 + l] = static_cast<uint8_t>((L[e + l] & 0x0F) | ((L[e + 32 + l] & 0x0F) << 4));
    }
  }
  for (int e = 0; e < kQK_K; ++e) {
    if (L[e] > 15) y.qh[e % 32] |= static_cast<uint8_t>(1 << (e / 32));
  }
}

void q6_k_finish(const float* x, const float* scales, BlockQ6_K& y, uint8_t* L) {
  float max_abs;
  const float max_scale = largest_magnitude(16, scales, &max_abs);
  if (max_abs < kGroupMaxEps) {
    std::memset(&y, 0, sizeof(y));
    return;
  }
  const float iscale = -128.0f / max_scale;
  y.d = f32_to_fp16(1 / iscale);
  for (int j = 0; j < 16; ++j) y.scales[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[j])));
  symmetric_reround(x, fp16_to_f32(y.d), [&](int j) { return int{y.scales[j]}; }, 32, L);
  std::memset(y.ql, 0, sizeof(y.ql));
  std::memset(y.qh, 0, sizeof(y.qh));
  for (int e = 0; e < kQK_K; ++e) {
    const int half = e / 128, r = e % 128;
    y.ql[64 * half + r % 64] |= static_cast<uint8_t>((L[e] & 0x0F) << (4 * (r / 64)));
    y.qh[32 * half + r % 32] |= static_cast<uint8_t>((L[e] >> 4) << (2 * (r / 32)));
  }
}

namespace {

// ---------------------------------------------------------------------------------------------
// Reference-only fits

// Q3_K's sub-block fit: start from the max-based grid, then up to 5 sweeps of coordinate
// descent where each element moves to the level nearest x[i] / scale' (scale' being the
// least-squares scale of the other elements) if that increases the explained signal
// sumlx^2 / suml2 (x^2-weighted). L receives levels biased by nmax.
float fit_symmetric_refined(int n, int nmax, const float* x, uint8_t* L) {
  float amax;
  const float max = largest_magnitude(n, x, &amax);
  if (amax < kGroupMaxEps) {
    std::fill(L, L + n, uint8_t{0});
    return 0.0f;
  }
  const float iscale = -nmax / max;
  int l[16];
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    l[i] = clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * l[i];
    suml2 += w * l[i] * l[i];
  }
  for (int sweep = 0; sweep < 5; ++sweep) {
    int changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      float slx = sumlx - w * x[i] * l[i];  // the sums without element i
      if (slx <= 0) continue;
      float sl2 = suml2 - w * l[i] * l[i];
      const int cand = clamp_int(nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
      if (cand == l[i]) continue;
      slx += w * x[i] * cand;
      sl2 += w * cand * cand;
      if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
        l[i] = cand;
        sumlx = slx;
        suml2 = sl2;
        ++changed;
      }
    }
    if (changed == 0) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<uint8_t>(l[i] + nmax);
  return sumlx / suml2;
}

// Mean-magnitude-plus-magnitude weights of a 32-element sub-block (Q4_K / Q5_K): large elements
// matter more, but no element's weight collapses to zero.
void magnitude_weights(const float* x, float* w) {
  float sum_x2 = 0;
  for (int l = 0; l < 32; ++l) sum_x2 += x[l] * x[l];
  const float av_x = std::sqrt(sum_x2 / 32);
  for (int l = 0; l < 32; ++l) w[l] = av_x + std::fabs(x[l]);
}

// Shared by Q4_K and Q5_K: sub-block fits, then the 6-bit scale/min quantization. Writes d, dmin
// and scales; L gets the fits' levels (0..nmax).
template <class Block>
void quantize_scale_min_superblock(const float* x, Block& y, uint8_t* L, int nmax, float rmin,
                                   int nstep) {
  float scales[8], mins[8], w[32];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    magnitude_weights(x + 32 * j, w);
    scales[j] = fit_scale_offset(32, nmax, x + 32 * j, w, L + 32 * j, &mins[j], rmin, 0.1f, nstep, false);
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
  std::memset(y.scales, 0, sizeof(y.scales));
  for (int j = 0; j < 8; ++j) {
    const int ls = std::min(63, nearest_int(inv_scale * scales[j]));
    const int lm = std::min(63, nearest_int(inv_min * mins[j]));
    q4_k_pack_scale_min(y.scales, j, ls, lm);
  }
  y.d = f32_to_fp16(max_scale / 63.0f);
  y.dmin = f32_to_fp16(max_min / 63.0f);
}

// ---------------------------------------------------------------------------------------------
// Q5_0 / Q5_1

// The 32 levels (0..31) of a Q5_0 / Q5_1 block: the inverse of pack_q5.
template <class Block>
void q5_levels(const Block& b, int* q) {
  uint32_t qh;
  std::memcpy(&qh, b.qh, 4);
  for (int j = 0; j < 16; ++j) {
    q[j] = (b.qs[j] & 0x0F) | (((qh >> j) & 1) << 4);
    q[j + 16] = (b.qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
  }
}

void q5_0_to_float(const void* src, float* dst, int64_t n) {
  const BlockQ5_0* b = static_cast<const BlockQ5_0*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, dst += kQK) {
    const float d = fp16_to_f32(b[i].d);
    int q[kQK];
    q5_levels(b[i], q);
    for (int j = 0; j < kQK; ++j) dst[j] = (q[j] - 16) * d;
  }
}
// As Q4_0: d from the element of largest magnitude, which maps to -16.
void q5_0_from_float(const float* src, void* dst, int64_t n) {
  BlockQ5_0* b = static_cast<BlockQ5_0*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float* x = src + i * kQK;
    float amax;
    const float max = largest_magnitude(kQK, x, &amax);
    const float d = max / -16.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    b[i].d = f32_to_fp16(d);
    uint8_t L[kQK];
    for (int j = 0; j < kQK; ++j) {
      L[j] = static_cast<uint8_t>(trunc_clamped(x[j] * id + 16.5f, 0, 31));
    }
    pack_q5(b[i], L);
  }
}
// llama.cpp's order (its x86 vector dot product and its tiled batch product agree): eight float
// lanes, lane j summing elements 4j..4j+3 of each block with one fused multiply-add by dw * dx,
// then the pairwise horizontal sum of reduce_lanes8.
float q5_0_dot(int64_t n, const void* w, const void* x) {
  const BlockQ5_0* a = static_cast<const BlockQ5_0*>(w);
  const BlockQ8_0* b = static_cast<const BlockQ8_0*>(x);
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t i = 0; i < n / kQK; ++i) {
    uint32_t qh;
    std::memcpy(&qh, a[i].qh, 4);
    const float d = fp16_to_f32(a[i].d) * fp16_to_f32(b[i].d);
    for (int j = 0; j < 8; ++j) {
      int32_t s = 0;
      for (int e = 4 * j; e < 4 * j + 4; ++e) {
        const int lo = e < 16 ? (a[i].qs[e] & 0x0F) : (a[i].qs[e - 16] >> 4);
        s += ((lo | (((qh >> e) & 1) << 4)) - 16) * b[i].qs[e];
      }
      acc[j] = std::fma(d, static_cast<float>(s), acc[j]);
    }
  }
  return reduce_lanes8(acc);
}

void q5_1_to_float(const void* src, float* dst, int64_t n) {
  const BlockQ5_1* b = static_cast<const BlockQ5_1*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, dst += kQK) {
    const float d = fp16_to_f32(b[i].d);
    const float m = fp16_to_f32(b[i].m);
    int q[kQK];
    q5_levels(b[i], q);
    for (int j = 0; j < kQK; ++j) dst[j] = q[j] * d + m;
  }
}
// Asymmetric: the block's [min, max] split into 31 steps.
void q5_1_from_float(const float* src, void* dst, int64_t n) {
  BlockQ5_1* b = static_cast<BlockQ5_1*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float* x = src + i * kQK;
    float lo = x[0], hi = x[0];
    for (int j = 1; j < kQK; ++j) {
      lo = std::min(lo, x[j]);
      hi = std::max(hi, x[j]);
    }
    const float d = (hi - lo) / 31.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    b[i].d = f32_to_fp16(d);
    b[i].m = f32_to_fp16(lo);
    uint8_t L[kQK];
    for (int j = 0; j < kQK; ++j) {
      L[j] = static_cast<uint8_t>(trunc_clamped((x[j] - lo) * id + 0.5f, 0, 31));
    }
    pack_q5(b[i], L);
  }
}
float q5_1_dot(int64_t n, const void* w, const void* x) {
  const BlockQ5_1* a = static_cast<const BlockQ5_1*>(w);
  const BlockQ8_1* b = static_cast<const BlockQ8_1*>(x);
  float sum = 0;
  for (int64_t i = 0; i < n / kQK; ++i) {
    int q[kQK];
    q5_levels(a[i], q);
    int32_t s = 0;
    for (int j = 0; j < kQK; ++j) s += q[j] * b[i].qs[j];
    // sum_j (d_w q_j + m_w) d_x p_j = d_w d_x sum q_j p_j + m_w * (d_x sum p_j)
    sum += fp16_to_f32(a[i].d) * fp16_to_f32(b[i].d) * static_cast<float>(s) +
           fp16_to_f32(a[i].m) * fp16_to_f32(b[i].s);
  }
  return sum;
}

// ---------------------------------------------------------------------------------------------
// Q8_K (activations for the K-quants)

void q8_k_to_float(const void* src, float* dst, int64_t n) {
  const BlockQ8_K* b = static_cast<const BlockQ8_K*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i, dst += kQK_K) {
    for (int j = 0; j < kQK_K; ++j) dst[j] = b[i].d * b[i].qs[j];
  }
}
// The element of largest magnitude maps to -127 (never -128, so that a product of two quants
// fits the signed 8x8 -> 16-bit SIMD multiplies without saturating).
void q8_k_from_float(const float* src, void* dst, int64_t n) {
  BlockQ8_K* b = static_cast<BlockQ8_K*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float* x = src + i * kQK_K;
    float amax;
    const float max = largest_magnitude(kQK_K, x, &amax);
    if (amax == 0) {
      std::memset(&b[i], 0, sizeof(BlockQ8_K));
      continue;
    }
    const float iscale = -127.0f / max;
    for (int j = 0; j < kQK_K; ++j) b[i].qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[j])));
    for (int g = 0; g < kQK_K / 16; ++g) {
      int sum = 0;
      for (int j = 0; j < 16; ++j) sum += b[i].qs[16 * g + j];
      b[i].bsums[g] = static_cast<int16_t>(sum);
    }
    b[i].d = 1 / iscale;
  }
}

// ---------------------------------------------------------------------------------------------
// Q2_K

void q2_k_to_float(const void* src, float* dst, int64_t n) {
  const BlockQ2_K* b = static_cast<const BlockQ2_K*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i, dst += kQK_K) {
    const float d = fp16_to_f32(b[i].d), dmin = fp16_to_f32(b[i].dmin);
    for (int e = 0; e < kQK_K; ++e) {
      const int sc = b[i].scales[e / 16];
      const int q = (b[i].qs[32 * (e / 128) + e % 32] >> (2 * ((e / 32) % 4))) & 3;
      const float dl = d * (sc & 0x0F), ml = dmin * (sc >> 4);
      dst[e] = dl * q - ml;
    }
  }
}
void q2_k_from_float(const float* src, void* dst, int64_t n) {
  BlockQ2_K* b = static_cast<BlockQ2_K*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float* x = src + i * kQK_K;
    BlockQ2_K& y = b[i];
    uint8_t L[kQK_K];
    float scales[16], mins[16], w[16];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 16; ++j) {
      for (int l = 0; l < 16; ++l) w[l] = std::fabs(x[16 * j + l]);
      // With only 4 levels the error is taken in absolute value: squared error lets a single
      // large element pull the whole grid.
      scales[j] = fit_scale_offset(16, 3, x + 16 * j, w, L + 16 * j, &mins[j], -0.5f, 0.1f, 15, true);
      max_scale = std::max(max_scale, scales[j]);
      max_min = std::max(max_min, mins[j]);
    }
    std::memset(y.scales, 0, sizeof(y.scales));
    if (max_scale > 0) {
      const float iscale = 15.0f / max_scale;
      for (int j = 0; j < 16; ++j) y.scales[j] = static_cast<uint8_t>(std::min(15, nearest_int(iscale * scales[j])));
      y.d = f32_to_fp16(max_scale / 15.0f);
    } else {
      y.d = f32_to_fp16(0.0f);
    }
    if (max_min > 0) {
      const float iscale = 15.0f / max_min;
      for (int j = 0; j < 16; ++j) {
        y.scales[j] = static_cast<uint8_t>(y.scales[j] | (std::min(15, nearest_int(iscale * mins[j])) << 4));
      }
      y.dmin = f32_to_fp16(max_min / 15.0f);
    } else {
      y.dmin = f32_to_fp16(0.0f);
    }
    q2_k_requantize(x, y, L);
  }
}
float q2_k_dot(int64_t n, const void* w, const void* x) {
  const BlockQ2_K* a = static_cast<const BlockQ2_K*>(w);
  const BlockQ8_K* b = static_cast<const BlockQ8_K*>(x);
  float sum = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    int32_t isum = 0, msum = 0;
    for (int j = 0; j < 16; ++j) {
      int32_t s = 0;
      for (int l = 0; l < 16; ++l) {
        const int e = 16 * j + l;
        s += ((a[i].qs[32 * (e / 128) + e % 32] >> (2 * ((e / 32) % 4))) & 3) * int32_t{b[i].qs[e]};
      }
      isum += (a[i].scales[j] & 0x0F) * s;
      msum += (a[i].scales[j] >> 4) * int32_t{b[i].bsums[j]};
    }
    sum += fp16_to_f32(a[i].d) * b[i].d * static_cast<float>(isum) -
           fp16_to_f32(a[i].dmin) * b[i].d * static_cast<float>(msum);
  }
  return sum;
}

// ---------------------------------------------------------------------------------------------
// Q3_K

int q3_k_level(const BlockQ3_K& b, int e) {  // -4..3
  const int lo = (b.qs[32 * (e / 128) + e % 32] >> (2 * ((e / 32) % 4))) & 3;
  const int hi = (b.hmask[e % 32] >> (e / 32)) & 1;
  return lo - (hi ? 0 : 4);
}
void q3_k_to_float(const void* src, float* dst, int64_t n) {
  const BlockQ3_K* b = static_cast<const BlockQ3_K*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i, dst += kQK_K) {
    const float d = fp16_to_f32(b[i].d);
    for (int e = 0; e < kQK_K; ++e) {
      const float dl = d * q3_k_scale(b[i].scales, e / 16);
      dst[e] = dl * q3_k_level(b[i], e);
    }
  }
}
void q3_k_from_float(const float* src, void* dst, int64_t n) {
  BlockQ3_K* b = static_cast<BlockQ3_K*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float* x = src + i * kQK_K;
    BlockQ3_K& y = b[i];
    uint8_t L[kQK_K];
    float scales[16];
    for (int j = 0; j < 16; ++j) scales[j] = fit_symmetric_refined(16, 4, x + 16 * j, L + 16 * j);
    float amax;
    const float max_scale = largest_magnitude(16, scales, &amax);
    std::memset(y.scales, 0, sizeof(y.scales));
    if (max_scale != 0) {
      const float iscale = -32.0f / max_scale;
      for (int j = 0; j < 16; ++j) {
        q3_k_pack_scale(y.scales, j, clamp_int(nearest_int(iscale * scales[j]), -32, 31) + 32);
      }
      y.d = f32_to_fp16(1 / iscale);
    } else {
      y.d = f32_to_fp16(0.0f);
    }
    q3_k_requantize(x, y, L);
  }
}
float q3_k_dot(int64_t n, const void* w, const void* x) {
  const BlockQ3_K* a = static_cast<const BlockQ3_K*>(w);
  const BlockQ8_K* b = static_cast<const BlockQ8_K*>(x);
  float sum = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    int32_t isum = 0;
    for (int j = 0; j < 16; ++j) {
      int32_t s = 0;
      for (int l = 0; l < 16; ++l) s += q3_k_level(a[i], 16 * j + l) * int32_t{b[i].qs[16 * j + l]};
      isum += q3_k_scale(a[i].scales, j) * s;
    }
    sum += fp16_to_f32(a[i].d) * b[i].d * static_cast<float>(isum);
  }
  return sum;
}

// ---------------------------------------------------------------------------------------------
// Q4_K / Q5_K

int q4_k_level(const BlockQ4_K& b, int e) {
  return (b.qs[32 * (e / 64) + e % 32] >> (4 * ((e / 32) % 2))) & 0x0F;
}
int q5_k_level(const BlockQ5_K& b, int e) {
  const int lo = (b.qs[32 * (e / 64) + e % 32] >> (4 * ((e / 32) % 2))) & 0x0F;
  return lo | (((b.qh[e % 32] >> (e / 32)) & 1) << 4);
}

template <class Block, int (*Level)(const Block&, int)>
void scale_min_to_float(const void* src, float* dst, int64_t n) {
  const Block* b = static_cast<const Block*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i, dst += kQK_K) {
    const float d = fp16_to_f32(b[i].d), dmin = fp16_to_f32(b[i].dmin);
    for (int j = 0; j < 8; ++j) {
      const auto [sc, m] = q4_k_scale_min(b[i].scales, j);
      const float d1 = d * sc, m1 = dmin * m;
      for (int l = 0; l < 32; ++l) dst[32 * j + l] = d1 * Level(b[i], 32 * j + l) - m1;
    }
  }
}

void q4_k_from_float(const float* src, void* dst, int64_t n) {
  BlockQ4_K* b = static_cast<BlockQ4_K*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    uint8_t L[kQK_K];
    quantize_scale_min_superblock(src + i * kQK_K, b[i], L, 15, -1.0f, 20);
    q4_k_requantize(src + i * kQK_K, b[i], L);
  }
}
void q5_k_from_float(const float* src, void* dst, int64_t n) {
  BlockQ5_K* b = static_cast<BlockQ5_K*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    uint8_t L[kQK_K];
    quantize_scale_min_superblock(src + i * kQK_K, b[i], L, 31, -0.5f, 15);
    q5_k_requantize(src + i * kQK_K, b[i], L);
  }
}

template <class Block, int (*Level)(const Block&, int)>
float scale_min_dot(int64_t n, const void* w, const void* x) {
  const Block* a = static_cast<const Block*>(w);
  const BlockQ8_K* b = static_cast<const BlockQ8_K*>(x);
  float sum = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    int32_t isum = 0, msum = 0;
    for (int j = 0; j < 8; ++j) {
      const auto [sc, m] = q4_k_scale_min(a[i].scales, j);
      int32_t s = 0;
      for (int l = 0; l < 32; ++l) s += Level(a[i], 32 * j + l) * int32_t{b[i].qs[32 * j + l]};
      isum += sc * s;
      msum += m * (int32_t{b[i].bsums[2 * j]} + b[i].bsums[2 * j + 1]);
    }
    sum += fp16_to_f32(a[i].d) * b[i].d * static_cast<float>(isum) -
           fp16_to_f32(a[i].dmin) * b[i].d * static_cast<float>(msum);
  }
  return sum;
}

// Q4_K in llama.cpp's orders (its x86 build repacks Q4_K rows eight at a time). Per super-block
// the integer sums are exact; `group` sub-blocks of 32 share one float step:
//   group 8 (one token, "gemv"):       acc += isum * (dw * dx), accm += msum * (dmin * dx)
//   group 2 (4-token tiles, "gemm"):   the same per pair of sub-blocks
// each a fused multiply-add, and the result is acc - accm.
template <int group>
float q4_k_dot_grouped(int64_t n, const void* w, const void* x) {
  const BlockQ4_K* a = static_cast<const BlockQ4_K*>(w);
  const BlockQ8_K* b = static_cast<const BlockQ8_K*>(x);
  float acc = 0, accm = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = fp16_to_f32(a[i].d) * b[i].d;
    const float dm = fp16_to_f32(a[i].dmin) * b[i].d;
    for (int j0 = 0; j0 < 8; j0 += group) {
      int32_t isum = 0, msum = 0;
      for (int j = j0; j < j0 + group; ++j) {
        const auto [sc, m] = q4_k_scale_min(a[i].scales, j);
        int32_t s = 0;
        for (int l = 0; l < 32; ++l) s += q4_k_level(a[i], 32 * j + l) * int32_t{b[i].qs[32 * j + l]};
        isum += sc * s;
        msum += m * (int32_t{b[i].bsums[2 * j]} + b[i].bsums[2 * j + 1]);
      }
      acc = std::fma(static_cast<float>(isum), d, acc);
      accm = std::fma(static_cast<float>(msum), dm, accm);
    }
  }
  return acc - accm;
}

// ---------------------------------------------------------------------------------------------
// Q6_K

int q6_k_level(const BlockQ6_K& b, int e) {  // -32..31
  const int half = e / 128, r = e % 128;
  const int lo = (b.ql[64 * half + r % 64] >> (4 * (r / 64))) & 0x0F;
  const int hi = (b.qh[32 * half + r % 32] >> (2 * (r / 32))) & 3;
  return (lo | (hi << 4)) - 32;
}
void q6_k_to_float(const void* src, float* dst, int64_t n) {
  const BlockQ6_K* b = static_cast<const BlockQ6_K*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i, dst += kQK_K) {
    const float d = fp16_to_f32(b[i].d);
    for (int e = 0; e < kQK_K; ++e) {
      const float dl = d * b[i].scales[e / 16];
      dst[e] = dl * q6_k_level(b[i], e);
    }
  }
}
void q6_k_from_float(const float* src, void* dst, int64_t n) {
  BlockQ6_K* b = static_cast<BlockQ6_K*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float* x = src + i * kQK_K;
    uint8_t L[kQK_K];
    float scales[16];
    for (int j = 0; j < 16; ++j) scales[j] = fit_symmetric(16, 32, x + 16 * j, nullptr, L + 16 * j);
    q6_k_finish(x, scales, b[i], L);
  }
}
// Q6_K as llama.cpp's x86 vector dot product sums it (one token, and batches of fewer than 8):
// eight int32 lanes per super-block, lane k holding, for each 32-element run v, the scaled sum of
// its elements 4k..4k+3 (levels 0..63), minus 32 * (sc[2k] * bsum[2k] + sc[2k+1] * bsum[2k+1]);
// each lane then one fused multiply-add by dx * dw, and the lanes summed as reduce_lanes8.
float q6_k_dot(int64_t n, const void* w, const void* x) {
  const BlockQ6_K* a = static_cast<const BlockQ6_K*>(w);
  const BlockQ8_K* b = static_cast<const BlockQ8_K*>(x);
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = b[i].d * fp16_to_f32(a[i].d);
    for (int k = 0; k < 8; ++k) {
      int32_t lane = 0;
      for (int v = 0; v < 8; ++v) {
        int32_t s = 0;
        for (int e = 32 * v + 4 * k; e < 32 * v + 4 * k + 4; ++e) s += (q6_k_level(a[i], e) + 32) * int32_t{b[i].qs[e]};
        lane += a[i].scales[(32 * v + 4 * k) / 16] * s;
      }
      lane -= 32 * (a[i].scales[2 * k] * int32_t{b[i].bsums[2 * k]} + a[i].scales[2 * k + 1] * int32_t{b[i].bsums[2 * k + 1]});
      acc[k] = std::fma(d, static_cast<float>(lane), acc[k]);
    }
  }
  return reduce_lanes8(acc);
}
// Q6_K as llama.cpp's tiled batch product sums it (8 tokens or more): the exact integer sum of
// each super-block times dw, then added into the result as a fused multiply-add by dx.
float q6_k_dot_tiled(int64_t n, const void* w, const void* x) {
  const BlockQ6_K* a = static_cast<const BlockQ6_K*>(w);
  const BlockQ8_K* b = static_cast<const BlockQ8_K*>(x);
  float sum = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    int32_t isum = 0;
    for (int j = 0; j < 16; ++j) {
      int32_t s = 0;
      for (int l = 0; l < 16; ++l) s += q6_k_level(a[i], 16 * j + l) * int32_t{b[i].qs[16 * j + l]};
      isum += a[i].scales[j] * s;
    }
    sum = std::fma(static_cast<float>(isum) * fp16_to_f32(a[i].d), b[i].d, sum);
  }
  return sum;
}

const TypeOps kQ5_0{DType::Q8_0, q5_0_to_float, q5_0_from_float, q5_0_dot};
const TypeOps kQ5_1{DType::Q8_1, q5_1_to_float, q5_1_from_float, q5_1_dot};
const TypeOps kQ8_K{DType::Q8_K, q8_k_to_float, q8_k_from_float, nullptr};
const TypeOps kQ2_K{DType::Q8_K, q2_k_to_float, q2_k_from_float, q2_k_dot};
const TypeOps kQ3_K{DType::Q8_K, q3_k_to_float, q3_k_from_float, q3_k_dot};
const TypeOps kQ4_K{DType::Q8_K, scale_min_to_float<BlockQ4_K, q4_k_level>, q4_k_from_float,
                    q4_k_dot_grouped<8>};
const TypeOps kQ5_K{DType::Q8_K, scale_min_to_float<BlockQ5_K, q5_k_level>, q5_k_from_float,
                    scale_min_dot<BlockQ5_K, q5_k_level>};
const TypeOps kQ6_K{DType::Q8_K, q6_k_to_float, q6_k_from_float, q6_k_dot};

}  // namespace

const TypeOps* reference_kquant_ops(DType t) {
  switch (t) {
    case DType::Q5_0: return &kQ5_0;
    case DType::Q5_1: return &kQ5_1;
    case DType::Q8_K: return &kQ8_K;
    case DType::Q2_K: return &kQ2_K;
    case DType::Q3_K: return &kQ3_K;
    case DType::Q4_K: return &kQ4_K;
    case DType::Q5_K: return &kQ5_K;
    case DType::Q6_K: return &kQ6_K;
    default: return nullptr;
  }
}

VecDotFn reference_batch_dot(DType t, int64_t n_tok, int64_t tok) {
  switch (t) {
    case DType::Q4_K: return tok < n_tok - n_tok % 4 ? q4_k_dot_grouped<2> : q4_k_dot_grouped<8>;
    case DType::Q6_K: return n_tok >= 8 ? q6_k_dot_tiled : q6_k_dot;
    default: return nullptr;
  }
}

}  // namespace edgelm::kernels
