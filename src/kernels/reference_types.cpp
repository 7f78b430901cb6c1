// Scalar reference conversions and dot products for each supported type. These are the
// oracle every SIMD kernel is tested against: clarity over speed.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "kernels/kernels.hpp"
#include "kernels/reference_kquants.hpp"
#include "tensor/blocks.hpp"
#include "tensor/fp16.hpp"

namespace edgelm::kernels {
namespace {

// Integer block dot products are summed the way llama.cpp's x86 kernels sum them: eight float
// lanes, lane j taking elements 4j..4j+3 of each 32-element block, one fused multiply-add per
// block, then a fixed pairwise horizontal sum. Quantized activations make the model sensitive
// to the last bit of every product (a value that rounds the other way moves by a whole step),
// so matching this order is what keeps greedy output identical to llama.cpp's.
struct BlockLanes {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  // isum[j] = sum of products of elements 4j..4j+3
  void add(float scale, const int32_t (&isum)[8]) {
    for (int j = 0; j < 8; ++j) acc[j] = std::fma(scale, static_cast<float>(isum[j]), acc[j]);
  }
  float sum() const {
    const float a0 = acc[0] + acc[4], a1 = acc[1] + acc[5], a2 = acc[2] + acc[6], a3 = acc[3] + acc[7];
    return (a0 + a2) + (a1 + a3);
  }
};

// Scale for symmetric 8-bit quantization: q = round(x * 127 / max|x|), d = max|x| / 127.
inline float q8_inverse_scale(float amax) { return amax != 0.0f ? 127.0f / amax : 0.0f; }

// ---- F32 ----
void f32_to_float(const void* src, float* dst, int64_t n) {
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}
void f32_from_float(const float* src, void* dst, int64_t n) {
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}
float f32_dot(int64_t n, const void* w, const void* x) {
  const float* a = static_cast<const float*>(w);
  const float* b = static_cast<const float*>(x);
  double sum = 0;  // wide accumulator: the reference should not add its own rounding noise
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(a[i]) * b[i];
  return static_cast<float>(sum);
}

// ---- F16 / BF16 ----
// The two 16-bit float formats differ only in their conversions.
template <float (*ToF32)(uint16_t)>
void half_to_float(const void* src, float* dst, int64_t n) {
  const uint16_t* s = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = ToF32(s[i]);
}
template <uint16_t (*FromF32)(float)>
void half_from_float(const float* src, void* dst, int64_t n) {
  uint16_t* d = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i] = FromF32(src[i]);
}
template <float (*ToF32)(uint16_t)>
float half_dot(int64_t n, const void* w, const void* x) {
  const uint16_t* a = static_cast<const uint16_t*>(w);
  const uint16_t* b = static_cast<const uint16_t*>(x);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(ToF32(a[i])) * ToF32(b[i]);
  return static_cast<float>(sum);
}

// ---- Q8_0, and Q8_1 (activations for Q4_1: Q8_0 plus s = d * sum q) ----
template <class Block>
void q8_to_float(const void* src, float* dst, int64_t n) {
  const Block* b = static_cast<const Block*>(src);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = fp16_to_f32(b[i].d);
    for (int j = 0; j < kQK; ++j) dst[i * kQK + j] = d * b[i].qs[j];
  }
}
// Symmetric: d = max|x| / 127, q = round(x / d).
template <class Block>
void q8_from_float(const float* src, void* dst, int64_t n) {
  Block* b = static_cast<Block*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float* x = src + i * kQK;
    float amax = 0;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = q8_inverse_scale(amax);
    b[i].d = f32_to_fp16(d);
    int32_t sum = 0;
    for (int j = 0; j < kQK; ++j) {
      b[i].qs[j] = static_cast<int8_t>(std::nearbyint(x[j] * id));
      sum += b[i].qs[j];
    }
    if constexpr (std::is_same_v<Block, BlockQ8_1>) {
      b[i].s = f32_to_fp16(static_cast<float>(sum) * d);
    }
  }
}
float q8_0_dot(int64_t n, const void* w, const void* x) {
  const BlockQ8_0* a = static_cast<const BlockQ8_0*>(w);
  const BlockQ8_0* b = static_cast<const BlockQ8_0*>(x);
  BlockLanes lanes;
  for (int64_t i = 0; i < n / kQK; ++i) {
    int32_t s[8] = {};
    for (int j = 0; j < kQK; ++j) s[j / 4] += int32_t{a[i].qs[j]} * b[i].qs[j];
    lanes.add(fp16_to_f32(a[i].d) * fp16_to_f32(b[i].d), s);
  }
  return lanes.sum();
}

// ---- Q4_0 ----
void q4_0_to_float(const void* src, float* dst, int64_t n) {
  const BlockQ4_0* b = static_cast<const BlockQ4_0*>(src);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = fp16_to_f32(b[i].d);
    for (int j = 0; j < kQK / 2; ++j) {
      dst[i * kQK + j] = d * ((b[i].qs[j] & 0x0F) - 8);
      dst[i * kQK + j + kQK / 2] = d * ((b[i].qs[j] >> 4) - 8);
    }
  }
}
// d is chosen from the element of largest magnitude (sign kept) so that it maps to -8, the
// end of the range with one more step.
void q4_0_from_float(const float* src, void* dst, int64_t n) {
  BlockQ4_0* b = static_cast<BlockQ4_0*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float* x = src + i * kQK;
    float amax = 0, max = 0;
    for (int j = 0; j < kQK; ++j) {
      if (std::fabs(x[j]) > amax) { amax = std::fabs(x[j]); max = x[j]; }
    }
    const float d = max / -8.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    b[i].d = f32_to_fp16(d);
    for (int j = 0; j < kQK / 2; ++j) {
      const int lo = std::min(15, static_cast<int>(x[j] * id + 8.5f));
      const int hi = std::min(15, static_cast<int>(x[j + kQK / 2] * id + 8.5f));
      b[i].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}
float q4_0_dot(int64_t n, const void* w, const void* x) {
  const BlockQ4_0* a = static_cast<const BlockQ4_0*>(w);
  const BlockQ8_0* b = static_cast<const BlockQ8_0*>(x);
  BlockLanes lanes;
  for (int64_t i = 0; i < n / kQK; ++i) {
    int32_t s[8] = {};
    for (int j = 0; j < kQK / 2; ++j) {
      s[j / 4] += ((a[i].qs[j] & 0x0F) - 8) * int32_t{b[i].qs[j]};
      s[(j + kQK / 2) / 4] += ((a[i].qs[j] >> 4) - 8) * int32_t{b[i].qs[j + kQK / 2]};
    }
    lanes.add(fp16_to_f32(a[i].d) * fp16_to_f32(b[i].d), s);
  }
  return lanes.sum();
}

// ---- Q4_1 ----
void q4_1_to_float(const void* src, float* dst, int64_t n) {
  const BlockQ4_1* b = static_cast<const BlockQ4_1*>(src);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = fp16_to_f32(b[i].d);
    const float m = fp16_to_f32(b[i].m);
    for (int j = 0; j < kQK / 2; ++j) {
      dst[i * kQK + j] = d * (b[i].qs[j] & 0x0F) + m;
      dst[i * kQK + j + kQK / 2] = d * (b[i].qs[j] >> 4) + m;
    }
  }
}
// Asymmetric: the block's [min, max] range split into 15 steps.
void q4_1_from_float(const float* src, void* dst, int64_t n) {
  BlockQ4_1* b = static_cast<BlockQ4_1*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float* x = src + i * kQK;
    float lo = x[0], hi = x[0];
    for (int j = 1; j < kQK; ++j) { lo = std::min(lo, x[j]); hi = std::max(hi, x[j]); }
    const float d = (hi - lo) / 15.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    b[i].d = f32_to_fp16(d);
    b[i].m = f32_to_fp16(lo);
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = std::min(15, static_cast<int>((x[j] - lo) * id + 0.5f));
      const int q1 = std::min(15, static_cast<int>((x[j + kQK / 2] - lo) * id + 0.5f));
      b[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}
float q4_1_dot(int64_t n, const void* w, const void* x) {
  const BlockQ4_1* a = static_cast<const BlockQ4_1*>(w);
  const BlockQ8_1* b = static_cast<const BlockQ8_1*>(x);
  BlockLanes lanes;
  float offsets = 0;
  for (int64_t i = 0; i < n / kQK; ++i) {
    int32_t s[8] = {};
    for (int j = 0; j < kQK / 2; ++j) {
      s[j / 4] += (a[i].qs[j] & 0x0F) * int32_t{b[i].qs[j]};
      s[(j + kQK / 2) / 4] += (a[i].qs[j] >> 4) * int32_t{b[i].qs[j + kQK / 2]};
    }
    // sum_j (d_w q_j + m_w) d_x p_j = d_w d_x sum q_j p_j + m_w * (d_x sum p_j)
    lanes.add(fp16_to_f32(a[i].d) * fp16_to_f32(b[i].d), s);
    offsets += fp16_to_f32(a[i].m) * fp16_to_f32(b[i].s);
  }
  return lanes.sum() + offsets;
}

const TypeOps kF32{DType::F32, f32_to_float, f32_from_float, f32_dot};
const TypeOps kF16{DType::F16, half_to_float<fp16_to_f32>, half_from_float<f32_to_fp16>,
                   half_dot<fp16_to_f32>};
const TypeOps kBF16{DType::BF16, half_to_float<bf16_to_f32>, half_from_float<f32_to_bf16>,
                    half_dot<bf16_to_f32>};
const TypeOps kQ8_0{DType::Q8_0, q8_to_float<BlockQ8_0>, q8_from_float<BlockQ8_0>, q8_0_dot};
const TypeOps kQ8_1{DType::Q8_1, q8_to_float<BlockQ8_1>, q8_from_float<BlockQ8_1>, nullptr};
const TypeOps kQ4_0{DType::Q8_0, q4_0_to_float, q4_0_from_float, q4_0_dot};
const TypeOps kQ4_1{DType::Q8_1, q4_1_to_float, q4_1_from_float, q4_1_dot};

}  // namespace

const TypeOps* reference_ops(DType t) {
  switch (t) {
    case DType::F32: return &kF32;
    case DType::F16: return &kF16;
    case DType::BF16: return &kBF16;
    case DType::Q8_0: return &kQ8_0;
    case DType::Q8_1: return &kQ8_1;
    case DType::Q4_0: return &kQ4_0;
    case DType::Q4_1: return &kQ4_1;
    default: return reference_kquant_ops(t);
  }
}

void gemm_reference(const GemmArgs& g) {
  for (int64_t m = g.m0; m < g.m1; ++m)
    for (int64_t n = g.n0; n < g.n1; ++n) {
      double sum = g.accumulate ? g.c[m * g.ldc + n] : 0.0;
      for (int64_t k = 0; k < g.K; ++k)
        sum += static_cast<double>(g.trans_a ? g.a[k * g.lda + m] : g.a[m * g.lda + k]) *
               (g.trans_b ? g.b[n * g.ldb + k] : g.b[k * g.ldb + n]);
      g.c[m * g.ldc + n] = static_cast<float>(sum);
    }
}

}  // namespace edgelm::kernels
