// Scalar references for the numerics the forward pass shares with llama.cpp's CPU backend
// (ggml, x86 AVX-512 build, classic non-flash attention): its polynomial exp, and attention
// whose dot products accumulate in 16 lanes that are then added pairwise. Matching these
// orders (not just the math) is what keeps greedy decoding token-identical on a small model,
// where activations are re-quantized to 8 bits and top-2 logit gaps of 0.01 are common.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/kernels.hpp"
#include "tensor/fp16.hpp"

namespace edgelm::kernels {

static float pow2i(int e) {  // 2^e for e in [-126, 127], exactly
  const uint32_t bits = static_cast<uint32_t>(e + 127) << 23;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

float exp_poly(float x) {
  // Range reduction x = n ln2 + b with n = round(x / ln2) (the 1.5 * 2^23 shifter rounds to
  // nearest) and ln2 split in two parts, then a degree-5 polynomial for e^b on |b| <= ln2 / 2
  // (Arm optimized-routines' single-precision expf coefficients, as in ggml's ggml_v_expf).
  constexpr float kShift = 0x1.8p23f;
  const float z = std::fma(x, 0x1.715476p+0f, kShift);
  const float n = z - kShift;
  float b = std::fma(-n, 0x1.62e4p-1f, x);
  b = std::fma(-n, 0x1.7f7d1cp-20f, b);
  if (std::fabs(n) > 192.0f) return n <= 0.0f ? 0.0f : INFINITY;
  const float u = b * b;
  const float j = std::fma(std::fma(std::fma(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u,
                                    std::fma(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                           u, std::fma(0x1.ffffecp-1f, b, 1.0f));
  if (std::isnan(j)) return j;
  // j * 2^n in two exact power-of-two steps (n in [-192, 192]); rounds twice only when the
  // result is subnormal.
  const int ni = static_cast<int>(n);
  const int e1 = ni >> 1, e2 = ni - e1;  // floor(n / 2), as the SIMD version splits it
  return j * pow2i(e1) * pow2i(e2);
}

float reduce16(const float* a) {
  float b[8], c[4];
  for (int i = 0; i < 8; ++i) b[i] = a[i] + a[i + 8];
  for (int i = 0; i < 4; ++i) c[i] = b[i] + b[i + 4];
  return (c[0] + c[2]) + (c[1] + c[3]);
}

// Dot product of n terms x(i) * y(i) in one of llama.cpp's two summation orders.
//  kBatch (its tiled matrix product, used when a batch has >= 2 tokens and n % 16 == 0):
//    lane l = i % 16 chains fused multiply-adds in i order; reduce16.
//  kSingle (its vector dot product, used for one token): lanes of four 16-wide accumulators
//    chain over chunks of 64, accumulators combined as (a0 + a2) + (a1 + a3), reduce16 into a
//    double, the n % 64 leftover products added in double.
template <class X, class Y>
static float dot_ordered(AttnOrder order, int64_t n, X x, Y y) {
  if (order == AttnOrder::kBatch && n % kAttnLanes == 0) {
    float acc[kAttnLanes] = {};
    for (int64_t i = 0; i < n; ++i) acc[i % kAttnLanes] = std::fma(x(i), y(i), acc[i % kAttnLanes]);
    return reduce16(acc);
  }
  const int64_t np = n - n % 64;
  float acc[4][kAttnLanes] = {};
  for (int64_t i = 0; i < np; ++i) {
    float& a = acc[(i % 64) / 16][i % 16];
    a = std::fma(x(i), y(i), a);
  }
  float r[kAttnLanes];
  for (int l = 0; l < kAttnLanes; ++l) r[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
  double sum = reduce16(r);
  for (int64_t i = np; i < n; ++i) sum += static_cast<double>(x(i) * y(i));
  return static_cast<float>(sum);
}

void attend_reference(const float* q, size_t q_stride, int n_q, const uint16_t* kt, size_t kt_block_stride,
                      const uint16_t* v, size_t v_stride, int64_t hd, int n_kv, float scale, float* scores,
                      float* out, size_t out_stride, AttnOrder order) {
  constexpr int B = kAttnKeyBlock;
  constexpr int L = kAttnLanes;
  std::vector<float> qh(static_cast<size_t>(hd));
  for (int g = 0; g < n_q; ++g) {
    const float* qg = q + static_cast<size_t>(g) * q_stride;
    for (int64_t i = 0; i < hd; ++i) qh[i] = fp16_to_f32(f32_to_fp16(qg[i]));
    float* sc = scores;  // n_kv floats (reused per query head)
    for (int p = 0; p < n_kv; ++p) {
      const uint16_t* kb = kt + static_cast<size_t>(p / B) * kt_block_stride + p % B;
      sc[p] = dot_ordered(order, hd, [&](int64_t i) { return fp16_to_f32(kb[i * B]); },
                          [&](int64_t i) { return qh[i]; }) * scale;
    }
    float mx = -INFINITY;
    for (int p = 0; p < n_kv; ++p) mx = sc[p] > mx ? sc[p] : mx;
    double sum = 0;
    for (int p0 = 0; p0 < n_kv; p0 += L) {
      float e[L] = {};
      for (int p = p0; p < n_kv && p < p0 + L; ++p) e[p - p0] = sc[p] = exp_poly(sc[p] - mx);
      sum += static_cast<double>(reduce16(e));
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int p = 0; p < n_kv; ++p) sc[p] = fp16_to_f32(f32_to_fp16(sc[p] * inv));
    // llama.cpp sums over its cache padded to a multiple of 256 positions with zero weights,
    // which adds nothing but decides the order's shape (tiled: n % 16 == 0; vector: no
    // leftover terms): pad to a multiple of 64 likewise
    const int64_t n_sum = (n_kv + 63) / 64 * 64;
    float* og = out + static_cast<size_t>(g) * out_stride;
    for (int64_t i = 0; i < hd; ++i)
      og[i] = dot_ordered(order, n_sum,
                          [&](int64_t p) { return p < n_kv ? fp16_to_f32(v[static_cast<size_t>(p) * v_stride + i]) : 0.0f; },
                          [&](int64_t p) { return p < n_kv ? sc[p] : 0.0f; });
  }
}

void attend_softcap(const float* q, size_t q_stride, int n_q, const uint16_t* kt, size_t kt_block_stride,
                    const uint16_t* v, size_t v_stride, int64_t hd, int first, int n_kv, float scale, float softcap,
                    float* scores, float* out, size_t out_stride) {
  constexpr int B = kAttnKeyBlock;
  const float inv_cap = 1.0f / softcap;
  float q16[kMaxSoftcapHeadDim];
  for (int h = 0; h < n_q; ++h) {
    const float* qh = q + static_cast<size_t>(h) * q_stride;
    for (int64_t d = 0; d < hd; ++d) q16[d] = fp16_to_f32(f32_to_fp16(qh[d]));
    float mx = -INFINITY;
    for (int p = first; p < n_kv; ++p) {
      const uint16_t* kb = kt + static_cast<size_t>(p / B) * kt_block_stride + p % B;
      float sum = 0;
      for (int64_t d = 0; d < hd; ++d) sum += q16[d] * fp16_to_f32(kb[d * B]);
      const float sc = std::tanh(sum * inv_cap) * softcap * scale;
      scores[p - first] = sc;
      mx = std::max(mx, sc);
    }
    double total = 0;
    for (int p = first; p < n_kv; ++p) {
      scores[p - first] = std::exp(scores[p - first] - mx);
      total += scores[p - first];
    }
    const float inv = static_cast<float>(1.0 / total);
    float* o = out + static_cast<size_t>(h) * out_stride;
    std::fill_n(o, hd, 0.0f);
    for (int p = first; p < n_kv; ++p) {
      const float wgt = fp16_to_f32(f32_to_fp16(scores[p - first] * inv));
      const uint16_t* vp = v + static_cast<size_t>(p) * v_stride;
      for (int64_t d = 0; d < hd; ++d) o[d] += wgt * fp16_to_f32(vp[d]);
    }
  }
}

}  // namespace edgelm::kernels
