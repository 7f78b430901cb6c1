// The scalar kernels that have no SIMD twin (GeGLU, LayerNorm, YaRN angles, soft-capped
// attention) against direct double-precision formulas, and GeGLU against the exact semantics
// of its half-precision table.
#include <algorithm>
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/kernels.hpp"
#include "kernels/simd.hpp"
#include "support/kernel_inputs.hpp"
#include "tensor/fp16.hpp"

namespace edgelm::kernels {
namespace {

using test::random_row;

double gelu_tanh(double x) {
  const double k = std::sqrt(2.0 / 3.14159265358979323846);
  return 0.5 * x * (1.0 + std::tanh(k * x * (1.0 + 0.044715 * x * x)));
}

TEST(Geglu, FollowsTheHalfPrecisionTableExactly) {
  auto gate = random_row(4096, 1, 4.0f);
  gate[0] = -10.0f, gate[1] = 10.0f, gate[2] = -25.0f, gate[3] = 31.0f, gate[4] = 0.0f, gate[5] = -9.99f;
  const auto up = random_row(4096, 2);
  std::vector<float> out(gate.size());
  geglu(gate.data(), up.data(), out.data(), static_cast<int64_t>(gate.size()));
  for (size_t i = 0; i < gate.size(); ++i) {
    const float g = gate[i];
    float want;
    if (g <= -10.0f) {
      want = 0.0f;
    } else if (g >= 10.0f) {
      want = g * up[i];
    } else {  // the table entry for the half-precision input, itself rounded to half precision
      const float x = fp16_to_f32(f32_to_fp16(g));
      const float inner = 0.79788456080286535587989211986876f * x * (1.0f + 0.044715f * x * x);
      want = fp16_to_f32(f32_to_fp16(0.5f * x * (1.0f + std::tanh(inner)))) * up[i];
    }
    ASSERT_EQ(out[i], want) << "gate " << g;
  }
}

TEST(Geglu, IsGeluTimesUpWithinHalfPrecision) {
  const auto gate = random_row(4096, 3, 3.0f), up = random_row(4096, 4);
  std::vector<float> out(gate.size());
  geglu(gate.data(), up.data(), out.data(), static_cast<int64_t>(gate.size()));
  for (size_t i = 0; i < gate.size(); ++i) {
    // Rounding the input to half precision moves it by up to |g| 2^-11 (GELU's slope is at most
    // 1.13), rounding the entry by |gelu| 2^-11.
    const double g = gate[i], want = gelu_tanh(g);
    const double tol = (1.13 * std::abs(g) + std::abs(want)) * 0x1p-11 + 1e-7;
    ASSERT_NEAR(out[i], want * up[i], tol * std::abs(up[i])) << "gate " << g;
  }
}

TEST(Geglu, InPlaceEqualsOutOfPlace) {
  auto gate = random_row(333, 5, 3.0f);
  const auto up = random_row(333, 6);
  std::vector<float> out(gate.size());
  geglu(gate.data(), up.data(), out.data(), 333);
  geglu(gate.data(), up.data(), gate.data(), 333);
  EXPECT_EQ(gate, out);
}

std::vector<double> layer_norm_double(const std::vector<float>& x, const float* w, const float* b, double eps) {
  const double n = static_cast<double>(x.size());
  double mean = 0, var = 0;
  for (float v : x) mean += v;
  mean /= n;
  for (float v : x) var += (v - mean) * (v - mean);
  var /= n;
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    y[i] = (x[i] - mean) / std::sqrt(var + eps);
    if (w) y[i] *= w[i];
    if (b) y[i] += b[i];
  }
  return y;
}

TEST(LayerNorm, MatchesDoublePrecisionWithAndWithoutWeightAndBias) {
  auto x = random_row(576, 7, 2.0f);
  for (auto& v : x) v += 3.0f;  // a mean far from zero: the mean must be removed
  const auto w = random_row(576, 8), b = random_row(576, 9);
  const float eps = 1e-5f;
  for (const float* wp : {static_cast<const float*>(nullptr), w.data()})
    for (const float* bp : {static_cast<const float*>(nullptr), b.data()}) {
      std::vector<float> out(x.size());
      layer_norm(x.data(), wp, bp, out.data(), 576, eps);
      const auto want = layer_norm_double(x, wp, bp, eps);
      for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(out[i], want[i], 1e-5 * (1 + std::abs(want[i])));
    }
}

TEST(LayerNorm, InPlaceEqualsOutOfPlace) {
  auto x = random_row(100, 10);
  const auto w = random_row(100, 11), b = random_row(100, 12);
  std::vector<float> out(x.size());
  layer_norm(x.data(), w.data(), b.data(), out.data(), 100, 1e-6f);
  layer_norm(x.data(), w.data(), b.data(), x.data(), 100, 1e-6f);
  EXPECT_EQ(x, out);
}

TEST(YarnAngles, AllExtrapolationIsRopeAnglesTimesTheMagnitudeScale) {
  // An original context this long puts every pair below the low correction dim: the ramp is
  // all extrapolation, so the angles are plain RoPE's whatever freq_scale says.
  const int64_t n_rot = 64;
  const float base = 10000.0f, scale = 0.25f, attn_factor = 1.0f;
  const float mscale = attn_factor * (1.0f + 0.1f * std::log(1.0f / scale));
  for (int64_t pos : {0, 1, 7, 1000, 32767}) {
    std::vector<float> yc(n_rot / 2), ys(n_rot / 2), rc(n_rot / 2), rs(n_rot / 2);
    yarn_angles(n_rot, pos, base, scale, 1 << 30, attn_factor, yc.data(), ys.data());
    simd::rope_angles(n_rot, pos, base, 1.0f, rc.data(), rs.data());
    for (int64_t i = 0; i < n_rot / 2; ++i) {
      ASSERT_EQ(yc[i], rc[i] * mscale) << "pos " << pos << " pair " << i;
      ASSERT_EQ(ys[i], rs[i] * mscale) << "pos " << pos << " pair " << i;
    }
  }
}

TEST(YarnAngles, UnscaledIsRopeAngles) {
  std::vector<float> yc(8), ys(8), rc(8), rs(8);
  yarn_angles(16, 42, 1e6f, 1.0f, 4096, 1.0f, yc.data(), ys.data());
  simd::rope_angles(16, 42, 1e6f, 1.0f, rc.data(), rs.data());
  EXPECT_EQ(yc, rc);
  EXPECT_EQ(ys, rs);
}

TEST(YarnAngles, MixedRampMatchesTheFormula) {
  // n_rot 16, base 10000, original context 4096: correction dims floor(2.4) = 2 and
  // ceil(5.6) = 6, so pairs 0-2 extrapolate, 6-7 interpolate and 3-5 mix.
  const int64_t n_rot = 16, pos = 300;
  const double base = 10000, fs = 0.25, af = 1.0;
  std::vector<float> c(n_rot / 2), s(n_rot / 2);
  yarn_angles(n_rot, pos, static_cast<float>(base), static_cast<float>(fs), 4096, static_cast<float>(af), c.data(),
              s.data());
  const double pi = 3.14159265358979323846;
  auto corr = [&](double beta) { return n_rot * std::log(4096 / (beta * 2 * pi)) / (2 * std::log(base)); };
  const double lo = std::max(0.0, std::floor(corr(32))), hi = std::min(n_rot - 1.0, std::ceil(corr(1)));
  ASSERT_EQ(lo, 2.0);
  ASSERT_EQ(hi, 6.0);
  const double mscale = af * (1 + 0.1 * std::log(1 / fs));
  for (int64_t i = 0; i < n_rot / 2; ++i) {
    const double extrap = pos * std::pow(base, -2.0 * i / n_rot);
    const double ramp = 1 - std::clamp((i - lo) / (hi - lo), 0.0, 1.0);
    const double theta = fs * extrap * (1 - ramp) + extrap * ramp;
    // theta is built by repeated float multiplication: ~1e-6 relative, times up to 300 rad
    EXPECT_NEAR(c[i], std::cos(theta) * mscale, 1e-3) << "pair " << i;
    EXPECT_NEAR(s[i], std::sin(theta) * mscale, 1e-3) << "pair " << i;
  }
}

// K of one KV head in the cache's block layout (kAttnKeyBlock positions per block, dimension
// outermost), V one row per position.
struct HeadCache {
  std::vector<uint16_t> kt, v;
  size_t block_stride;
};

HeadCache make_cache(const std::vector<float>& k, const std::vector<float>& v, int64_t hd, int n_kv) {
  constexpr int B = kAttnKeyBlock;
  const int n_blocks = (n_kv + B - 1) / B;
  HeadCache c{std::vector<uint16_t>(static_cast<size_t>(n_blocks) * hd * B), std::vector<uint16_t>(v.size()),
              static_cast<size_t>(hd) * B};
  for (int p = 0; p < n_kv; ++p)
    for (int64_t d = 0; d < hd; ++d) c.kt[(p / B) * c.block_stride + d * B + p % B] = f32_to_fp16(k[p * hd + d]);
  for (size_t i = 0; i < v.size(); ++i) c.v[i] = f32_to_fp16(v[i]);
  return c;
}

TEST(AttendSoftcap, MatchesDoublePrecision) {
  const int64_t hd = 64;
  const int n_q = 2, n_kv = 37;
  const float scale = 1.0f / 8.0f, cap = 5.0f;
  const auto k = random_row(n_kv * hd, 13, 1.5f), v = random_row(n_kv * hd, 14);
  const auto q = random_row(n_q * hd, 15, 1.5f);
  const HeadCache c = make_cache(k, v, hd, n_kv);
  for (int first : {0, 5, 20}) {
    std::vector<float> scores(n_kv), out(n_q * hd, -1.0f);
    attend_softcap(q.data(), hd, n_q, c.kt.data(), c.block_stride, c.v.data(), hd, hd, first, n_kv, scale, cap,
                   scores.data(), out.data(), hd);
    for (int h = 0; h < n_q; ++h) {
      std::vector<double> w(n_kv);
      double mx = -1e300, sum = 0;
      for (int p = first; p < n_kv; ++p) {
        double dot = 0;
        for (int64_t d = 0; d < hd; ++d)
          dot += double(fp16_to_f32(f32_to_fp16(q[h * hd + d]))) * fp16_to_f32(c.kt[(p / 16) * c.block_stride + d * 16 + p % 16]);
        w[p] = cap * std::tanh(dot / cap) * scale;
        mx = std::max(mx, w[p]);
      }
      for (int p = first; p < n_kv; ++p) sum += (w[p] = std::exp(w[p] - mx));
      for (int64_t d = 0; d < hd; ++d) {
        double o = 0;
        for (int p = first; p < n_kv; ++p) o += w[p] / sum * fp16_to_f32(c.v[p * hd + d]);
        // weights rounded to half precision: 2^-11 relative each
        ASSERT_NEAR(out[h * hd + d], o, 2e-3) << "first " << first << " head " << h << " dim " << d;
      }
    }
  }
}

TEST(AttendSoftcap, LargeCapIsPlainAttention) {
  // With a cap far above every score, tanh is linear to float precision: the result is the
  // uncapped softmax attention, here over a single position (weight exactly 1).
  const int64_t hd = 32;
  const auto k = random_row(hd, 16), v = random_row(hd, 17), q = random_row(hd, 18);
  const HeadCache c = make_cache(k, v, hd, 1);
  std::vector<float> scores(1), out(hd);
  attend_softcap(q.data(), hd, 1, c.kt.data(), c.block_stride, c.v.data(), hd, hd, 0, 1, 0.1f, 1e6f, scores.data(),
                 out.data(), hd);
  for (int64_t d = 0; d < hd; ++d) EXPECT_EQ(out[d], fp16_to_f32(c.v[d]));
}

}  // namespace
}  // namespace edgelm::kernels
