// The pieces of the K-quant and legacy quantizers that the reference quantizers
// (reference_kquants.cpp) and the importance-weighted ones (src/quant/weighted_quantizers.cpp)
// share: the per-group fits, and each K-quant's last step (re-round every element against the
// scales actually stored, then pack). Defined in reference_kquants.cpp, which is compiled without
// fused multiply-adds: the bytes a quantizer writes depend on every float operation's rounding.
//
//   uint8_t L[32];
//   float neg_min;
//   float d = fit_scale_offset(32, 15, x, w, L, &neg_min, -0.9f, 0.05f, 36, false);
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "tensor/kquant_blocks.hpp"

namespace edgelm::kernels {

// A group whose largest magnitude is below this is zero; it keeps 1/scale finite.
inline constexpr float kGroupMaxEps = 1e-15f;

// Round half to even (the default FP environment), as llama.cpp's nearest_int does. Values far
// outside any quantization range are pinned (and inf / NaN give 0, as llama.cpp's rounding trick
// does) so the conversion to int is always defined.
inline int nearest_int(float v) {
  if (!std::isfinite(v)) return 0;
  if (std::fabs(v) > 4194303.0f) return v > 0 ? 4194303 : -4194303;
  return static_cast<int>(std::nearbyint(v));
}

inline int clamp_int(int v, int lo, int hi) { return std::min(hi, std::max(lo, v)); }

// The element of largest magnitude (the first of equals; 0 when all are 0); *amax receives its
// magnitude.
inline float largest_magnitude(int n, const float* x, float* amax) {
  float a = 0, max = 0;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > a) {
      a = std::fabs(x[i]);
      max = x[i];
    }
  }
  *amax = a;
  return max;
}

// Q5_0 / Q5_1: 32 levels (0..31) packed, low four bits in qs (element j and j + 16 share a
// byte), the fifth bits in qh.
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

// Weighted fit of x[i] ~ scale * L[i] - neg_min with L[i] in [0, nmax] and the offset
// -neg_min <= 0 (n <= 32). Starts from the plain min/max grid, then tries nstep + 1 grids with
// (nmax + rmin + rdelta * k) steps between the best offset so far and max (the grid is
// re-anchored whenever a candidate wins), each followed by its closed-form least-squares scale
// and offset; keeps the fit with the smallest weighted error (squared, or absolute when
// use_abs). Returns the scale; *neg_min receives the (non-negative) offset magnitude.
float fit_scale_offset(int n, int nmax, const float* x, const float* w, uint8_t* L,
                       float* neg_min, float rmin, float rdelta, int nstep, bool use_abs);

// Weighted symmetric fit x[i] ~ scale * (L[i] - nmax), L[i] - nmax in [-nmax, nmax - 1]. The
// sign of the scale puts the element of largest magnitude on -nmax (the level with no positive
// twin). Tries the step sizes (nmax + 0.1 k) / max for k = -9..9 and keeps the one whose
// least-squares scale explains the most of the weighted signal. w == nullptr weights each
// element by x^2 (the reference quantizers' choice).
float fit_symmetric(int n, int nmax, const float* x, const float* w, uint8_t* L);

// The last step of each K-quant: with the super-block scale(s) and the sub-block scales (and
// mins) already in y, re-round every element of x (one super-block) against the values stored
// and pack the levels. L holds the fits' levels on entry (a sub-block whose stored scale is 0
// keeps them) and the final ones on return.
void q2_k_requantize(const float* x, BlockQ2_K& y, uint8_t* L);
void q3_k_requantize(const float* x, BlockQ3_K& y, uint8_t* L);
void q4_k_requantize(const float* x, BlockQ4_K& y, uint8_t* L);
void q5_k_requantize(const float* x, BlockQ5_K& y, uint8_t* L);

// Q6_K from its 16 sub-block scales (and their levels in L): the scales quantized to 8 bits
// against the one of largest magnitude (an all-zero super-block when that is below
// kGroupMaxEps), then re-rounding and packing as above.
void q6_k_finish(const float* x, const float* scales, BlockQ6_K& y, uint8_t* L);

}  // namespace edgelm::kernels
