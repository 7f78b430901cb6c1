// Block formats: hand-computed known values, round-trip error bounds, and dot products that
// agree with dequantize-then-multiply.
#include <cmath>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/kernels.hpp"
#include "support/kernel_inputs.hpp"
#include "tensor/blocks.hpp"
#include "tensor/fp16.hpp"

namespace edgelm {
namespace {

using kernels::reference_ops;
using test::random_row;

TEST(Fp16, ExactValuesAndRounding) {
  EXPECT_EQ(f32_to_fp16(1.0f), 0x3C00);
  EXPECT_EQ(f32_to_fp16(-2.0f), 0xC000);
  EXPECT_EQ(f32_to_fp16(0.5f), 0x3800);
  EXPECT_EQ(f32_to_fp16(65504.0f), 0x7BFF);
  EXPECT_EQ(f32_to_fp16(1e6f), 0x7C00);                 // overflow -> inf
  EXPECT_EQ(f32_to_fp16(5.9604645e-08f), 0x0001);       // smallest subnormal
  EXPECT_EQ(f32_to_fp16(2.9802322e-08f), 0x0000);       // half of it: ties to even -> 0
  EXPECT_EQ(f32_to_fp16(1.0f + 1.0f / 2048), 0x3C00);   // tie between 1 and next: even
  EXPECT_EQ(f32_to_fp16(1.0f + 3.0f / 2048), 0x3C02);   // tie: rounds up to even
  EXPECT_TRUE(std::isnan(fp16_to_f32(f32_to_fp16(NAN))));
  EXPECT_EQ(fp16_to_f32(0x0001), 5.9604645e-08f);
  EXPECT_EQ(fp16_to_f32(0x03FF), 6.097555e-05f);
  // Every finite half round-trips through float exactly.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7C00) == 0x7C00) continue;
    ASSERT_EQ(f32_to_fp16(fp16_to_f32(static_cast<uint16_t>(h))), h) << std::hex << h;
  }
}

TEST(Bf16, RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(bf16_to_f32(0x3F80), 1.0f);
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3F808000u)), 0x3F80);  // tie -> even
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3F818000u)), 0x3F82);  // tie -> even (up)
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3F808001u)), 0x3F81);
}

TEST(Q4_0, KnownValues) {
  BlockQ4_0 b{};
  b.d = f32_to_fp16(0.5f);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>((j & 0xF) | ((15 - j) << 4));
  float out[32];
  reference_ops(DType::Q4_0)->to_float(&b, out, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_FLOAT_EQ(out[j], 0.5f * (j - 8));
    EXPECT_FLOAT_EQ(out[j + 16], 0.5f * (15 - j - 8));
  }
}

TEST(Q4_1, KnownValues) {
  BlockQ4_1 b{};
  b.d = f32_to_fp16(0.25f);
  b.m = f32_to_fp16(-1.0f);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | (4 << 4));
  float out[32];
  reference_ops(DType::Q4_1)->to_float(&b, out, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_FLOAT_EQ(out[j], 0.25f * j - 1.0f);
    EXPECT_FLOAT_EQ(out[j + 16], 0.0f);
  }
}

TEST(Q8_0, KnownValuesAndQuantize) {
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j - 16) / 16.0f * 127.0f;  // max |x| = 127
  BlockQ8_0 b{};
  reference_ops(DType::Q8_0)->from_float(x.data(), &b, 32);
  EXPECT_FLOAT_EQ(fp16_to_f32(b.d), 1.0f);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(b.qs[j], static_cast<int8_t>(std::nearbyint(x[j])));
}

struct RoundTrip {
  DType type;
  float max_err_in_steps;  // bound on |x - x'| in units of the block's step size
};

class BlockRoundTrip : public ::testing::TestWithParam<RoundTrip> {};

TEST_P(BlockRoundTrip, ErrorWithinHalfAStep) {
  const auto [type, bound] = GetParam();
  const int64_t n = 32 * 64;
  const auto x = random_row(n, 7);
  std::vector<std::byte> q(row_size(type, n));
  std::vector<float> y(n);
  reference_ops(type)->from_float(x.data(), q.data(), n);
  reference_ops(type)->to_float(q.data(), y.data(), n);
  for (int64_t b = 0; b < n / 32; ++b) {
    float lo = x[b * 32], hi = lo, amax = 0;
    for (int j = 0; j < 32; ++j) {
      lo = std::min(lo, x[b * 32 + j]);
      hi = std::max(hi, x[b * 32 + j]);
      amax = std::max(amax, std::fabs(x[b * 32 + j]));
    }
    float step = 0;
    switch (type) {
      case DType::Q8_0: step = amax / 127; break;
      case DType::Q4_0: step = amax / 8; break;
      case DType::Q4_1: step = (hi - lo) / 15; break;
      default: step = std::max(amax * 1e-3f, 1e-30f);  // F16/BF16: relative
    }
    for (int j = 0; j < 32; ++j) {
      ASSERT_LE(std::fabs(x[b * 32 + j] - y[b * 32 + j]), bound * step + 1e-6f)
          << dtype_name(type) << " block " << b << " element " << j;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, BlockRoundTrip,
                         // Q8_0: half a step plus the scale's own half-precision rounding (127 * 2^-11 of a step).
                         // Q4_0: the end opposite the largest magnitude clamps at +7, a full step.
                         ::testing::Values(RoundTrip{DType::Q8_0, 0.57f}, RoundTrip{DType::Q4_0, 1.01f},
                                           RoundTrip{DType::Q4_1, 0.51f}, RoundTrip{DType::F16, 1.0f},
                                           RoundTrip{DType::BF16, 4.0f}, RoundTrip{DType::F32, 0.0f}),
                         [](const auto& info) { return std::string(dtype_name(info.param.type)); });

class VecDot : public ::testing::TestWithParam<DType> {};

// The dot product of a weight row with converted activations equals the float dot product of
// the two dequantized rows (the conversion is the only approximation).
TEST_P(VecDot, MatchesDequantizedDot) {
  const DType wt = GetParam();
  const int64_t n = 32 * 18;  // SmolLM2's embedding width, 576
  const auto w = random_row(n, 11), x = random_row(n, 12, 3.0f);
  const auto& o = *reference_ops(wt);
  std::vector<std::byte> wq(row_size(wt, n)), xq(row_size(o.vec_dot_type, n));
  o.from_float(w.data(), wq.data(), n);
  reference_ops(o.vec_dot_type)->from_float(x.data(), xq.data(), n);
  std::vector<float> wd(n), xd(n);
  o.to_float(wq.data(), wd.data(), n);
  reference_ops(o.vec_dot_type)->to_float(xq.data(), xd.data(), n);
  double want = 0, mag = 0;
  for (int64_t i = 0; i < n; ++i) {
    want += static_cast<double>(wd[i]) * xd[i];
    mag += std::fabs(static_cast<double>(wd[i]) * xd[i]);
  }
  // Q4_1 applies its offset through the activation block sum s, stored as a half float: allow
  // that rounding (2^-11 relative) on each block's m * s term.
  double offset_err = 0;
  if (wt == DType::Q4_1) {
    const auto* wb = reinterpret_cast<const BlockQ4_1*>(wq.data());
    const auto* xb = reinterpret_cast<const BlockQ8_1*>(xq.data());
    for (int64_t b = 0; b < n / 32; ++b)
      offset_err += std::fabs(fp16_to_f32(wb[b].m) * fp16_to_f32(xb[b].s)) * std::ldexp(1.0, -10);
  }
  const float got = o.vec_dot(n, wq.data(), xq.data());
  EXPECT_NEAR(got, want, 1e-5 * mag + offset_err + 1e-6) << dtype_name(wt);
}

INSTANTIATE_TEST_SUITE_P(Types, VecDot,
                         ::testing::Values(DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(Kernels, UnsupportedTypeIsAnError) {
  EXPECT_EQ(reference_ops(DType::I32), nullptr);
  EXPECT_FALSE(kernels::can_compute(DType::I32));
  EXPECT_ANY_THROW(kernels::ops(DType::I32));
}

}  // namespace
}  // namespace edgelm
