// Importance-weighted quantizers: the rounding error of every element is weighted by how much
// the activations that multiply it matter (a row of the importance matrix), as llama.cpp does
// when given an imatrix. Without weights, the plain reference quantizers in src/kernels are used
// (those are byte-identical with llama.cpp's reference quantizers).
//
// The algorithms are the published llama.cpp ones (facts, re-implemented here); the arithmetic
// runs in the same order so that the bytes match llama.cpp's quantize_* with an imatrix
// (tests/quant/test_weighted_quantizers.cpp checks against fixtures made by ggml itself):
//  * element weights: importance[i] * sqrt(sigma2 + x[i]^2), sigma2 the mean square of the row
//    (legacy types) or 2x / 1x that of the super-block (Q3_K, Q4_K, Q5_K / Q2_K); Q6_K uses the
//    importance alone;
//  * symmetric types (Q4_0, Q5_0, Q3_K sub-blocks, Q6_K sub-blocks): the best of 19 step sizes
//    around max / nmax by weighted least squares ("weighted symmetric fit");
//  * scale + offset types (Q4_1, Q5_1, Q2_K, Q4_K, Q5_K sub-blocks): weighted least-squares fits
//    over 37 grids between the offset and the maximum ("weighted scale-offset fit");
//  * the K-quants' per-sub-block scales (and mins) are themselves quantized by a weighted fit
//    (weights: each sub-block's summed element weights), non-negative for Q2/Q4/Q5_K, symmetric
//    for Q3_K.

// Same reason as the reference quantizers: no fused multiply-adds, or the bytes would depend on
// the build target.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <algorithm>
#include <cmath>
#include <cstring>

#include "edgelm/error.hpp"
#include "edgelm/quant.hpp"
#include "kernels/kernels.hpp"
#include "tensor/blocks.hpp"
#include "tensor/fp16.hpp"
#include "tensor/kquant_blocks.hpp"

namespace edgelm::quant {
namespace {

constexpr float kTiny = 1e-15f;  // a group whose largest magnitude is below this is zero

int round_even(float v) {  // round half to even, pinned far outside any quantization range
  if (!std::isfinite(v)) return 0;
  if (std::fabs(v) > 4194303.0f) return v > 0 ? 4194303 : -4194303;
  return static_cast<int>(std::nearbyint(v));
}
int clampi(int v, int lo, int hi) { return std::min(hi, std::max(lo, v)); }

// Weighted symmetric fit x ~ scale * l, l in [-nmax, nmax - 1]; L gets l + nmax.
float weighted_symmetric(int n, int nmax, const float* x, const float* w, uint8_t* L) {
  float amax = 0, max = 0;
  for (int i = 0; i < n; ++i) {
    const float a = std::fabs(x[i]);
    if (a > amax) {
      amax = a;
      max = x[i];
    }
  }
  if (amax < kTiny) {
    std::fill(L, L + n, uint8_t{0});
    return 0.0f;
  }
  auto sums = [&](float iscale, float& sumlx, float& suml2) {
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = clampi(round_even(iscale * x[i]), -nmax, nmax - 1);
      sumlx += w[i] * x[i] * l;
      suml2 += w[i] * l * l;
    }
  };
  auto levels = [&](float iscale) {
    for (int i = 0; i < n; ++i)
      L[i] = static_cast<uint8_t>(nmax + clampi(round_even(iscale * x[i]), -nmax, nmax - 1));
  };
  float iscale = static_cast<float>(-nmax) / max;
  float sumlx, suml2;
  sums(iscale, sumlx, suml2);
  levels(iscale);
  float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int k = -9; k <= 9; ++k) {
    if (k == 0) continue;
    iscale = -(nmax + 0.1f * k) / max;
    sums(iscale, sumlx, suml2);
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      levels(iscale);
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// Weighted fit x ~ scale * l + offset, l in [0, nmax], offset <= 0 (re-anchored whenever a grid
// wins). Returns the scale; *neg_offset gets -offset.
float weighted_scale_offset(int n, int nmax, const float* x, const float* w, uint8_t* L,
                            float* neg_offset) {
  constexpr float kRmin = -0.9f, kRdelta = 0.05f;
  constexpr int kSteps = 36;
  float lo = x[0], hi = x[0];
  float sum_w = w[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (lo > 0) lo = 0;
  if (hi <= lo) {
    std::fill(L, L + n, uint8_t{0});
    *neg_offset = -lo;
    return 0.0f;
  }
  float iscale = nmax / (hi - lo);
  float scale = 1 / iscale;
  float best = 0;
  for (int i = 0; i < n; ++i) {
    L[i] = static_cast<uint8_t>(clampi(round_even(iscale * (x[i] - lo)), 0, nmax));
    float d = scale * L[i] + lo - x[i];
    d = d * d;
    best += w[i] * d;
  }
  uint8_t trial[32];
  for (int k = 0; k <= kSteps; ++k) {
    iscale = (kRmin + kRdelta * k + nmax) / (hi - lo);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = clampi(round_even(iscale * (x[i] - lo)), 0, nmax);
      trial[i] = static_cast<uint8_t>(l);
      sum_l += w[i] * l;
      sum_l2 += w[i] * l * l;
      sum_xl += w[i] * l * x[i];
    }
    const float det = sum_w * sum_l2 - sum_l * sum_l;
    if (det > 0) {
      float s = (sum_w * sum_xl - sum_x * sum_l) / det;
      float m = (sum_l2 * sum_x - sum_l * sum_xl) / det;
      if (m > 0) {
        m = 0;
        s = sum_xl / sum_l2;
      }
      float err = 0;
      for (int i = 0; i < n; ++i) {
        float d = s * trial[i] + m - x[i];
        d = d * d;
        err += w[i] * d;
      }
      if (err < best) {
        std::copy(trial, trial + n, L);
        best = err;
        scale = s;
        lo = m;
      }
    }
  }
  *neg_offset = -lo;
  return scale;
}

// Weighted fit of non-negative values x ~ scale * l, l in [0, nmax] (the K-quants' sub-block
// scales and mins): the best of 9 step sizes by weighted error, then coordinate descent.
float weighted_positive(int n, int nmax, const float* x, const float* w, uint8_t* L) {
  float max = 0;
  for (int i = 0; i < n; ++i) max = std::max(max, x[i]);
  if (max < kTiny) {
    std::fill(L, L + n, uint8_t{0});
    return 0.0f;
  }
  float iscale = nmax / max;
  for (int i = 0; i < n; ++i) L[i] = static_cast<uint8_t>(round_even(iscale * x[i]));
  float scale = 1 / iscale;
  float best = 0;
  for (int i = 0; i < n; ++i) {
    const float d = x[i] - scale * L[i];
    best += w[i] * d * d;
  }
  for (int k = -4; k <= 4; ++k) {
    if (k == 0) continue;
    const float is = (0.1f * k + nmax) / max;
    const float s = 1 / is;
    float err = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::min(nmax, round_even(is * x[i]));
      const float d = x[i] - s * l;
      err += w[i] * d * d;
    }
    if (err < best) {
      best = err;
      iscale = is;
    }
  }
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::min(nmax, round_even(iscale * x[i]));
    L[i] = static_cast<uint8_t>(l);
    sumlx += w[i] * x[i] * l;
    suml2 += w[i] * l * l;
  }
  for (int sweep = 0; sweep < 5; ++sweep) {
    int changed = 0;
    for (int i = 0; i < n; ++i) {
      float slx = sumlx - w[i] * x[i] * L[i];
      float sl2 = suml2 - w[i] * L[i] * L[i];
      if (slx > 0 && sl2 > 0) {
        const int cand = std::min(nmax, round_even(x[i] * sl2 / slx));
        if (cand != L[i]) {
          slx += w[i] * x[i] * cand;
          sl2 += w[i] * cand * cand;
          if (slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = static_cast<uint8_t>(cand);
            sumlx = slx;
            suml2 = sl2;
            ++changed;
          }
        }
      }
    }
    if (changed == 0) break;
  }
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

float sum_squares(const float* x, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += x[i] * x[i];
  return s;
}
float mean_square(const float* x, int64_t n) { return sum_squares(x, n) / static_cast<float>(n); }

void element_weights(const float* x, const float* imp, float sigma2, int n, float* w) {
  for (int i = 0; i < n; ++i) w[i] = imp[i] * std::sqrt(sigma2 + x[i] * x[i]);
}

// --- legacy 32-element formats ----------------------------------------------------------------

// Q8_0 for weights: llama.cpp's reference rounds half away from zero (roundf), unlike the
// activation quantizer the kernels use (round half to even); ties are common in weights that
// were dequantized from a coarser type, so the weight path must round as the reference does.
void q8_0_weights(const float* x, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ8_0*>(dst);
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* xb = x + b * kQK;
    float amax = 0;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(xb[j]));
    const float d = amax / 127;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[b].d = f32_to_fp16(d);
    for (int j = 0; j < kQK; ++j) {
      const float v = std::round(xb[j] * id);
      y[b].qs[j] = static_cast<int8_t>(std::isfinite(v) ? std::clamp(v, -128.0f, 127.0f) : 0.0f);
    }
  }
}

void q4_0_weighted(const float* x, void* dst, int64_t n, const float* imp) {
  auto* y = static_cast<BlockQ4_0*>(dst);
  const float sigma2 = mean_square(x, n);
  float w[kQK];
  uint8_t L[kQK];
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* xb = x + b * kQK;
    element_weights(xb, imp + b * kQK, sigma2, kQK, w);
    y[b].d = f32_to_fp16(weighted_symmetric(kQK, 8, xb, w, L));
    for (int j = 0; j < 16; ++j) y[b].qs[j] = static_cast<uint8_t>(L[j] | (L[j + 16] << 4));
  }
}

void q4_1_weighted(const float* x, void* dst, int64_t n, const float* imp) {
  auto* y = static_cast<BlockQ4_1*>(dst);
  const float sigma2 = mean_square(x, n);
  float w[kQK];
  uint8_t L[kQK];
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* xb = x + b * kQK;
    element_weights(xb, imp + b * kQK, sigma2, kQK, w);
    float neg_min;
    y[b].d = f32_to_fp16(weighted_scale_offset(kQK, 15, xb, w, L, &neg_min));
    y[b].m = f32_to_fp16(-neg_min);
    for (int j = 0; j < 16; ++j) y[b].qs[j] = static_cast<uint8_t>(L[j] | (L[j + 16] << 4));
  }
}

template <class Block>
void pack_q5(Block& y, const uint8_t* L) {
  uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    y.qs[j] = static_cast<uint8_t>((L[j] & 0x0F) | ((L[j + 16] & 0x0F) << 4));
    qh |= static_cast<uint32_t>((L[j] >> 4) & 1) << j;
    qh |= static_cast<uint32_t>((L[j + 16] >> 4) & 1) << (j + 16);
  }
  std::memcpy(y.qh, &qh, 4);
}

void q5_0_weighted(const float* x, void* dst, int64_t n, const float* imp) {
  auto* y = static_cast<BlockQ5_0*>(dst);
  const float sigma2 = mean_square(x, n);
  float w[kQK];
  uint8_t L[kQK];
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* xb = x + b * kQK;
    element_weights(xb, imp + b * kQK, sigma2, kQK, w);
    y[b].d = f32_to_fp16(weighted_symmetric(kQK, 16, xb, w, L));
    pack_q5(y[b], L);
  }
}

void q5_1_weighted(const float* x, void* dst, int64_t n, const float* imp) {
  auto* y = static_cast<BlockQ5_1*>(dst);
  const float sigma2 = mean_square(x, n);
  float w[kQK];
  uint8_t L[kQK];
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* xb = x + b * kQK;
    element_weights(xb, imp + b * kQK, sigma2, kQK, w);
    float neg_min;
    y[b].d = f32_to_fp16(weighted_scale_offset(kQK, 31, xb, w, L, &neg_min));
    y[b].m = f32_to_fp16(-neg_min);
    pack_q5(y[b], L);
  }
}

// --- K-quants ---------------------------------------------------------------------------------

void q2_k_weighted(const float* x, void* dst, int64_t n, const float* imp) {
  auto* y = static_cast<BlockQ2_K*>(dst);
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K, imp += kQK_K) {
    BlockQ2_K& q = y[b];
    const float sigma2 = mean_square(x, kQK_K);
    uint8_t L[kQK_K], Ls[16], Lm[16];
    float scales[16], mins[16], sw[16], w[16];
    for (int j = 0; j < 16; ++j) {
      element_weights(x + 16 * j, imp + 16 * j, sigma2, 16, w);
      sw[j] = 0;
      for (int l = 0; l < 16; ++l) sw[j] += w[l];
      scales[j] = weighted_scale_offset(16, 3, x + 16 * j, w, L + 16 * j, &mins[j]);
    }
    q.d = f32_to_fp16(weighted_positive(16, 15, scales, sw, Ls));
    q.dmin = f32_to_fp16(weighted_positive(16, 15, mins, sw, Lm));
    const float dm = fp16_to_f32(q.d), mm = fp16_to_f32(q.dmin);
    for (int j = 0; j < 16; ++j) q.scales[j] = static_cast<uint8_t>(Ls[j] | (Lm[j] << 4));
    for (int j = 0; j < 16; ++j) {
      const float d = dm * (q.scales[j] & 0x0F);
      if (d == 0) continue;
      const float m = mm * (q.scales[j] >> 4);
      for (int l = 0; l < 16; ++l)
        L[16 * j + l] = static_cast<uint8_t>(clampi(round_even((x[16 * j + l] + m) / d), 0, 3));
    }
    std::memset(q.qs, 0, sizeof(q.qs));
    for (int e = 0; e < kQK_K; ++e)
      q.qs[32 * (e / 128) + e % 32] |= static_cast<uint8_t>(L[e] << (2 * ((e / 32) % 4)));
  }
}

void q3_k_weighted(const float* x, void* dst, int64_t n, const float* imp) {
  auto* y = static_cast<BlockQ3_K*>(dst);
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K, imp += kQK_K) {
    BlockQ3_K& q = y[b];
    const float sigma2 = 2 * sum_squares(x, kQK_K) / kQK_K;
    uint8_t L[kQK_K], Ls[16];
    float scales[16], sw[16], w[16];
    for (int j = 0; j < 16; ++j) {
      element_weights(x + 16 * j, imp + 16 * j, sigma2, 16, w);
      sw[j] = 0;
      for (int l = 0; l < 16; ++l) sw[j] += w[l];
      scales[j] = weighted_symmetric(16, 4, x + 16 * j, w, L + 16 * j);
    }
    std::memset(q.scales, 0, sizeof(q.scales));
    const float d_block = weighted_symmetric(16, 32, scales, sw, Ls);
    for (int j = 0; j < 16; ++j) q3_k_pack_scale(q.scales, j, Ls[j]);
    q.d = f32_to_fp16(d_block);
    const float d_all = fp16_to_f32(q.d);
    for (int j = 0; j < 16; ++j) {
      const float d = d_all * q3_k_scale(q.scales, j);
      if (d == 0) continue;
      for (int l = 0; l < 16; ++l)
        L[16 * j + l] = static_cast<uint8_t>(clampi(round_even(x[16 * j + l] / d), -4, 3) + 4);
    }
    std::memset(q.hmask, 0, sizeof(q.hmask));
    std::memset(q.qs, 0, sizeof(q.qs));
    for (int e = 0; e < kQK_K; ++e) {
      if (L[e] > 3) q.hmask[e % 32] |= static_cast<uint8_t>(1 << (e / 32));
      q.qs[32 * (e / 128) + e % 32] |= static_cast<uint8_t>((L[e] & 3) << (2 * ((e / 32) % 4)));
    }
  }
}

// Q4_K and Q5_K share the fits; nmax is 15 or 31.
template <class Block>
void scale_min_weighted(const float* x, Block& q, const float* imp, int nmax, uint8_t* L) {
  const float sigma2 = 2 * sum_squares(x, kQK_K) / kQK_K;
  uint8_t Ls[8], Lm[8];
  float scales[8], mins[8], sw[8], w[32];
  for (int j = 0; j < 8; ++j) {
    element_weights(x + 32 * j, imp + 32 * j, sigma2, 32, w);
    sw[j] = 0;
    for (int l = 0; l < 32; ++l) sw[j] += w[l];
    scales[j] = weighted_scale_offset(32, nmax, x + 32 * j, w, L + 32 * j, &mins[j]);
  }
  const float d_block = weighted_positive(8, 63, scales, sw, Ls);
  const float m_block = weighted_positive(8, 63, mins, sw, Lm);
  std::memset(q.scales, 0, sizeof(q.scales));
  for (int j = 0; j < 8; ++j) q4_k_pack_scale_min(q.scales, j, std::min<int>(63, Ls[j]), std::min<int>(63, Lm[j]));
  q.d = f32_to_fp16(d_block);
  q.dmin = f32_to_fp16(m_block);
  for (int j = 0; j < 8; ++j) {
    const auto [sc, m] = q4_k_scale_min(q.scales, j);
    const float d = fp16_to_f32(q.d) * sc;
    if (d == 0) continue;
    const float dm = fp16_to_f32(q.dmin) * m;
    for (int l = 0; l < 32; ++l)
      L[32 * j + l] = static_cast<uint8_t>(clampi(round_even((x[32 * j + l] + dm) / d), 0, nmax));
  }
}

void q4_k_weighted(const float* x, void* dst, int64_t n, const float* imp) {
  auto* y = static_cast<BlockQ4_K*>(dst);
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K, imp += kQK_K) {
    uint8_t L[kQK_K];
    scale_min_weighted(x, y[b], imp, 15, L);
    for (int e = 0; e < kQK_K; e += 64)
      for (int l = 0; l < 32; ++l) y[b].qs[e / 2 + l] = static_cast<uint8_t>(L[e + l] | (L[e + 32 + l] << 4));
  }
}

void q5_k_weighted(const float* x, void* dst, int64_t n, const float* imp) {
  auto* y = static_cast<BlockQ5_K*>(dst);
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K, imp += kQK_K) {
    uint8_t L[kQK_K];
    scale_min_weighted(x, y[b], imp, 31, L);
    std::memset(y[b].qh, 0, sizeof(y[b].qh));
    for (int e = 0; e < kQK_K; e += 64)
      for (int l = 0; l < 32; ++l)
        y[b].qs[e / 2 + l] = static_cast<uint8_t>((L[e + l] & 0x0F) | ((L[e + 32 + l] & 0x0F) << 4));
    for (int e = 0; e < kQK_K; ++e)
      if (L[e] > 15) y[b].qh[e % 32] |= static_cast<uint8_t>(1 << (e / 32));
  }
}

void q6_k_weighted(const float* x, void* dst, int64_t n, const float* imp) {
  auto* y = static_cast<BlockQ6_K*>(dst);
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K, imp += kQK_K) {
    BlockQ6_K& q = y[b];
    uint8_t L[kQK_K];
    float scales[16];
    float max_abs = 0, max_scale = 0;
    for (int j = 0; j < 16; ++j) {
      scales[j] = weighted_symmetric(16, 32, x + 16 * j, imp + 16 * j, L + 16 * j);
      if (std::fabs(scales[j]) > max_abs) {
        max_abs = std::fabs(scales[j]);
        max_scale = scales[j];
      }
    }
    if (max_abs < kTiny) {
      std::memset(&q, 0, sizeof(q));
      continue;
    }
    const float iscale = -128.0f / max_scale;
    q.d = f32_to_fp16(1 / iscale);
    for (int j = 0; j < 16; ++j) q.scales[j] = static_cast<int8_t>(std::min(127, round_even(iscale * scales[j])));
    for (int j = 0; j < 16; ++j) {
      const float d = fp16_to_f32(q.d) * q.scales[j];
      if (d == 0) continue;
      for (int l = 0; l < 16; ++l)
        L[16 * j + l] = static_cast<uint8_t>(clampi(round_even(x[16 * j + l] / d), -32, 31) + 32);
    }
    std::memset(q.ql, 0, sizeof(q.ql));
    std::memset(q.qh, 0, sizeof(q.qh));
    for (int e = 0; e < kQK_K; ++e) {
      const int half = e / 128, r = e % 128;
      q.ql[64 * half + r % 64] |= static_cast<uint8_t>((L[e] & 0x0F) << (4 * (r / 64)));
      q.qh[32 * half + r % 32] |= static_cast<uint8_t>((L[e] >> 4) << (2 * (r / 32)));
    }
  }
}

using WeightedFn = void (*)(const float*, void*, int64_t, const float*);

WeightedFn weighted_fn(DType t) {
  switch (t) {
    case DType::Q4_0: return q4_0_weighted;
    case DType::Q4_1: return q4_1_weighted;
    case DType::Q5_0: return q5_0_weighted;
    case DType::Q5_1: return q5_1_weighted;
    case DType::Q2_K: return q2_k_weighted;
    case DType::Q3_K: return q3_k_weighted;
    case DType::Q4_K: return q4_k_weighted;
    case DType::Q5_K: return q5_k_weighted;
    case DType::Q6_K: return q6_k_weighted;
    default: return nullptr;
  }
}

}  // namespace

bool uses_importance(DType type) { return weighted_fn(type) != nullptr; }

void quantize_row(DType type, const float* x, void* dst, int64_t n, const float* importance) {
  const int64_t bs = dtype_traits(type).block_size;
  if (n % bs != 0)
    throw Error("a row of " + std::to_string(n) + " values cannot be stored as " +
                std::string(dtype_name(type)) + " (blocks of " + std::to_string(bs) + ")");
  WeightedFn f = weighted_fn(type);
  if (type == DType::Q8_0) {
    q8_0_weights(x, dst, n);
  } else if (importance && f) {
    f(x, dst, n, importance);
  } else {
    kernels::quantize_row(type, x, dst, n);
  }
}

}  // namespace edgelm::quant
