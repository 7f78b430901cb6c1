// attend_q8_0 (the 8-bit KV cache's attention) against attention computed in double precision
// on the same dequantized keys and values, with the query left unquantized.
#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "edgelm/error.hpp"
#include "kernels/kernels.hpp"

namespace edgelm::kernels {
namespace {

struct Case {
  int64_t hd;
  int n_q, first, n_kv;
  float softcap = 0;  // Gemma 2's attention cap; 0: none
};

class AttendQ8 : public ::testing::TestWithParam<Case> {};

TEST_P(AttendQ8, MatchesDoublePrecisionOnDequantizedCache) {
  const Case c = GetParam();
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int64_t n_heads_kv = 2, kv_dim = n_heads_kv * c.hd;
  const size_t row_bytes = row_size(DType::Q8_0, kv_dim);
  std::vector<std::byte> k(row_bytes * c.n_kv), v(row_bytes * c.n_kv);
  std::vector<float> kf(kv_dim * c.n_kv), vf(kv_dim * c.n_kv), tmp(kv_dim);
  for (int p = 0; p < c.n_kv; ++p) {
    for (auto& x : tmp) x = nd(rng) * 2.0f;
    quantize_row(DType::Q8_0, tmp.data(), k.data() + p * row_bytes, kv_dim);
    for (auto& x : tmp) x = nd(rng);
    quantize_row(DType::Q8_0, tmp.data(), v.data() + p * row_bytes, kv_dim);
    dequantize_row(DType::Q8_0, k.data() + p * row_bytes, kf.data() + p * kv_dim, kv_dim);
    dequantize_row(DType::Q8_0, v.data() + p * row_bytes, vf.data() + p * kv_dim, kv_dim);
  }
  std::vector<float> q(c.n_q * c.hd);
  for (auto& x : q) x = nd(rng);
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.hd));
  const int64_t hk = 1;  // the second KV head: checks the head offset within a row
  const size_t head_off = row_size(DType::Q8_0, hk * c.hd);
  std::vector<float> scores(c.n_kv), out(c.n_q * c.hd, -1.0f);
  attend_q8_0(q.data(), c.hd, c.n_q, k.data() + head_off, v.data() + head_off, row_bytes, c.hd, c.first, c.n_kv,
              scale, c.softcap, scores.data(), out.data(), c.hd);
  for (int h = 0; h < c.n_q; ++h) {
    std::vector<double> s(c.n_kv);
    double mx = -1e300, sum = 0;
    for (int p = c.first; p < c.n_kv; ++p) {
      double d = 0;
      for (int64_t i = 0; i < c.hd; ++i) d += double(q[h * c.hd + i]) * kf[p * kv_dim + hk * c.hd + i];
      s[p] = (c.softcap > 0 ? c.softcap * std::tanh(d / c.softcap) : d) * scale;
      mx = std::max(mx, s[p]);
    }
    for (int p = c.first; p < c.n_kv; ++p) sum += (s[p] = std::exp(s[p] - mx));
    for (int64_t i = 0; i < c.hd; ++i) {
      double o = 0;
      for (int p = c.first; p < c.n_kv; ++p) o += s[p] / sum * vf[p * kv_dim + hk * c.hd + i];
      // The query's own 8-bit rounding moves each score by ~1e-2: outputs agree to 2e-2 (relatively above 1).
      EXPECT_NEAR(out[h * c.hd + i], o, 2e-2 * (1 + std::abs(o))) << "head " << h << " dim " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttendQ8,
                         ::testing::Values(Case{64, 1, 0, 1}, Case{64, 3, 0, 37}, Case{128, 2, 5, 40},
                                           Case{256, 4, 30, 70}, Case{64, 2, 3, 33, 3.0f}));

TEST(AttendQ8, RejectsHeadSizeNotAMultipleOf32) {
  std::vector<float> q(48), out(48), scores(4);
  std::vector<std::byte> kv(1024);
  EXPECT_THROW(attend_q8_0(q.data(), 48, 1, kv.data(), kv.data(), 64, 48, 0, 1, 1.0f, 0.0f, scores.data(), out.data(), 48),
               Error);
}

}  // namespace
}  // namespace edgelm::kernels
