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
// The fits, and each K-quant's last step (re-rounding against the stored scales, packing), are
// the reference quantizers' own (kernels/quantize_fits.hpp): only the weights differ.

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
#include "kernels/quantize_fits.hpp"
#include "tensor/blocks.hpp"
#include "tensor/fp16.hpp"
#include "tensor/kquant_blocks.hpp"

namespace edgelm::quant {
namespace {

using kernels::fit_scale_offset;
using kernels::fit_symmetric;
using kernels::kGroupMaxEps;
using kernels::nearest_int;

// The scale-offset fit of the importance-weighted quantizers: 37 grids, squared error.
float weighted_scale_offset(int n, int nmax, const float* x, const float* w, uint8_t* L,
                            float* neg_offset) {
  return fit_scale_offset(n, nmax, x, w, L, neg_offset, -0.9f, 0.05f, 36, false);
}

// Weighted fit of non-negative values x ~ scale * l, l in [0, nmax] (the K-quants' sub-block
// scales and mins): the best of 9 step sizes by weighted error, then coordinate descent.
float weighted_positive(int n, int nmax, const float* x, const float* w, uint8_t* L) {
  float max = 0;
  for (int i = 0; i < n; ++i) max = std::max(max, x[i]);
  if (max < kGroupMaxEps) {
    std::fill(L, L + n, uint8_t{0});
    return 0.0f;
  }
  float iscale = nmax / max;
  for (int i = 0; i < n; ++i) L[i] = static_cast<uint8_t>(nearest_int(iscale * x[i]));
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
      const int l = std::min(nmax, nearest_int(is * x[i]));
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
    const int l = std::min(nmax, nearest_int(iscale * x[i]));
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
        const int cand = std::min(nmax, nearest_int(x[i] * sl2 / slx));
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

// element_weights, returning their sum (the weight of the sub-block's scale in the fit of the
// super-block's scales).
float element_weights_sum(const float* x, const float* imp, float sigma2, int n, float* w) {
  element_weights(x, imp, sigma2, n, w);
  float sum = 0;
  for (int i = 0; i < n; ++i) sum += w[i];
  return sum;
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

template <class Block>
void pack_q4(Block& y, const uint8_t* L) {
  for (int j = 0; j < 16; ++j) y.qs[j] = static_cast<uint8_t>(L[j] | (L[j + 16] << 4));
}

// Q4_0 / Q5_0 (symmetric, kOffset false) and Q4_1 / Q5_1 (scale + offset): one fit per block of
// 32, element weights from the row's mean square.
template <class Block, int nmax, bool kOffset, void (*Pack)(Block&, const uint8_t*)>
void legacy_weighted(const float* x, void* dst, int64_t n, const float* imp) {
  auto* y = static_cast<Block*>(dst);
  const float sigma2 = mean_square(x, n);
  float w[kQK];
  uint8_t L[kQK];
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* xb = x + b * kQK;
    element_weights(xb, imp + b * kQK, sigma2, kQK, w);
    if constexpr (kOffset) {
      float neg_min;
      y[b].d = f32_to_fp16(weighted_scale_offset(kQK, nmax, xb, w, L, &neg_min));
      y[b].m = f32_to_fp16(-neg_min);
    } else {
      y[b].d = f32_to_fp16(fit_symmetric(kQK, nmax, xb, w, L));
    }
    Pack(y[b], L);
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
      sw[j] = element_weights_sum(x + 16 * j, imp + 16 * j, sigma2, 16, w);
      scales[j] = weighted_scale_offset(16, 3, x + 16 * j, w, L + 16 * j, &mins[j]);
    }
    q.d = f32_to_fp16(weighted_positive(16, 15, scales, sw, Ls));
    q.dmin = f32_to_fp16(weighted_positive(16, 15, mins, sw, Lm));
    for (int j = 0; j < 16; ++j) q.scales[j] = static_cast<uint8_t>(Ls[j] | (Lm[j] << 4));
    kernels::q2_k_requantize(x, q, L);
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
      sw[j] = element_weights_sum(x + 16 * j, imp + 16 * j, sigma2, 16, w);
      scales[j] = fit_symmetric(16, 4, x + 16 * j, w, L + 16 * j);
    }
    std::memset(q.scales, 0, sizeof(q.scales));
    const float d_block = fit_symmetric(16, 32, scales, sw, Ls);
    for (int j = 0; j < 16; ++j) q3_k_pack_scale(q.scales, j, Ls[j]);
    q.d = f32_to_fp16(d_block);
    kernels::q3_k_requantize(x, q, L);
  }
}

// Q4_K and Q5_K share the fits (nmax 15 or 31): writes d, dmin and scales; L gets the fits'
// levels.
template <class Block>
void scale_min_weighted(const float* x, Block& q, const float* imp, int nmax, uint8_t* L) {
  const float sigma2 = 2 * sum_squares(x, kQK_K) / kQK_K;
  uint8_t Ls[8], Lm[8];
  float scales[8], mins[8], sw[8], w[32];
  for (int j = 0; j < 8; ++j) {
    sw[j] = element_weights_sum(x + 32 * j, imp + 32 * j, sigma2, 32, w);
    scales[j] = weighted_scale_offset(32, nmax, x + 32 * j, w, L + 32 * j, &mins[j]);
  }
  const float d_block = weighted_positive(8, 63, scales, sw, Ls);
  const float m_block = weighted_positive(8, 63, mins, sw, Lm);
  std::memset(q.scales, 0, sizeof(q.scales));
  for (int j = 0; j < 8; ++j) q4_k_pack_scale_min(q.scales, j, std::min<int>(63, Ls[j]), std::min<int>(63, Lm[j]));
  q.d = f32_to_fp16(d_block);
  q.dmin = f32_to_fp16(m_block);
}

template <class Block, int nmax, void (*Requantize)(const float*, Block&, uint8_t*)>
void scale_min_k_weighted(const float* x, void* dst, int64_t n, const float* imp) {
  auto* y = static_cast<Block*>(dst);
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K, imp += kQK_K) {
    uint8_t L[kQK_K];
    scale_min_weighted(x, y[b], imp, nmax, L);
    Requantize(x, y[b], L);
  }
}

void q6_k_weighted(const float* x, void* dst, int64_t n, const float* imp) {
  auto* y = static_cast<BlockQ6_K*>(dst);
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K, imp += kQK_K) {
    uint8_t L[kQK_K];
    float scales[16];
    for (int j = 0; j < 16; ++j) {
      scales[j] = fit_symmetric(16, 32, x + 16 * j, imp + 16 * j, L + 16 * j);
    }
    kernels::q6_k_finish(x, scales, y[b], L);
  }
}

using WeightedFn = void (*)(const float*, void*, int64_t, const float*);

WeightedFn weighted_fn(DType t) {
  switch (t) {
    case DType::Q4_0: return legacy_weighted<BlockQ4_0, 8, false, pack_q4<BlockQ4_0>>;
    case DType::Q4_1: return legacy_weighted<BlockQ4_1, 15, true, pack_q4<BlockQ4_1>>;
    case DType::Q5_0: return legacy_weighted<BlockQ5_0, 16, false, kernels::pack_q5<BlockQ5_0>>;
    case DType::Q5_1: return legacy_weighted<BlockQ5_1, 31, true, kernels::pack_q5<BlockQ5_1>>;
    case DType::Q2_K: return q2_k_weighted;
    case DType::Q3_K: return q3_k_weighted;
    case DType::Q4_K: return scale_min_k_weighted<BlockQ4_K, 15, kernels::q4_k_requantize>;
    case DType::Q5_K: return scale_min_k_weighted<BlockQ5_K, 31, kernels::q5_k_requantize>;
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
