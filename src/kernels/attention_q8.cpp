// Attention over an 8-bit (Q8_0) KV cache: `--kv-type q8_0` halves the cache of the F16 one.
// Keys and values are stored one row per position, head_dim / 32 blocks per head, as llama.cpp
// stores a q8_0 cache. The query is converted to Q8_0 once per head so every score is the
// integer dot product of the dispatched Q8_0 kernel; values are dequantized block by block
// into the weighted sum.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "edgelm/error.hpp"
#include "kernels/kernels.hpp"
#include "tensor/blocks.hpp"
#include "tensor/fp16.hpp"

namespace edgelm::kernels {

void attend_q8_0(const float* q, size_t q_stride, int n_q, const std::byte* k, const std::byte* v,
                 size_t row_stride, int64_t hd, int first, int n_kv, float scale, float softcap, float* scores,
                 float* out, size_t out_stride) {
  constexpr int64_t kMaxBlocks = 64;  // head size up to 2048
  const int64_t nb = hd / kQK;
  if (hd % kQK != 0 || nb > kMaxBlocks)
    throw Error("internal: Q8_0 attention needs a head size that is a multiple of 32 and at most 2048");
  const TypeOps& q8 = ops(DType::Q8_0);
  BlockQ8_0 qq[kMaxBlocks];
  for (int h = 0; h < n_q; ++h) {
    const float* qh = q + static_cast<size_t>(h) * q_stride;
    float* o = out + static_cast<size_t>(h) * out_stride;
    q8.from_float(qh, qq, hd);
    float mx = -INFINITY;
    for (int p = first; p < n_kv; ++p) {
      float s = q8.vec_dot(hd, k + static_cast<size_t>(p) * row_stride, qq);
      s = (softcap > 0 ? std::tanh(s / softcap) * softcap : s) * scale;
      scores[p] = s;
      mx = std::max(mx, s);
    }
    double sum = 0;
    for (int p = first; p < n_kv; ++p) {
      scores[p] = exp_poly(scores[p] - mx);
      sum += scores[p];
    }
    const float inv = sum > 0 ? static_cast<float>(1.0 / sum) : 0.0f;
    std::fill(o, o + hd, 0.0f);
    for (int p = first; p < n_kv; ++p) {
      const auto* vb = reinterpret_cast<const BlockQ8_0*>(v + static_cast<size_t>(p) * row_stride);
      const float w = scores[p] * inv;
      for (int64_t b = 0; b < nb; ++b) {
        const float wd = w * fp16_to_f32(vb[b].d);
        float* ob = o + b * kQK;
        for (int i = 0; i < kQK; ++i) ob[i] += wd * static_cast<float>(vb[b].qs[i]);
      }
    }
  }
}

}  // namespace edgelm::kernels
