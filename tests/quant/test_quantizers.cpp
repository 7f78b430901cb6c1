// Row quantizers as `edgelm quantize` uses them: round trip within each format's expected error
// for every writable type, the importance weights doing what they are for, and the plain path
// being the reference quantizer.
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "edgelm/error.hpp"
#include "edgelm/quant.hpp"
#include "kernels/kernels.hpp"
#include "support/kernel_inputs.hpp"

namespace edgelm {
namespace {

std::vector<float> roundtrip(DType t, const std::vector<float>& x, const float* imp = nullptr) {
  std::vector<std::byte> q(row_size(t, static_cast<int64_t>(x.size())));
  quant::quantize_row(t, x.data(), q.data(), static_cast<int64_t>(x.size()), imp);
  std::vector<float> y(x.size());
  kernels::dequantize_row(t, q.data(), y.data(), static_cast<int64_t>(x.size()));
  return y;
}

double relative_rms_error(const std::vector<float>& x, const std::vector<float>& y, const float* w = nullptr) {
  double e = 0, s = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double wi = w ? w[i] : 1.0;
    e += wi * (x[i] - y[i]) * (x[i] - y[i]);
    s += wi * x[i] * x[i];
  }
  return std::sqrt(e / s);
}

struct Bound {
  DType type;
  double max_rel_rms;  // for N(0, 1) data; about 1.3x the step / sqrt(12) each format gives
};

// Expected relative RMS error of a Gaussian row: a b-bit grid over a block's range leaves about
// range / 2^b / sqrt(12); the K-quants' fitted scales do better, F16/BF16 are 11/8-bit mantissas.
class RoundTrip : public ::testing::TestWithParam<Bound> {};

TEST_P(RoundTrip, ErrorWithinTheFormatsBound) {
  const Bound b = GetParam();
  const auto x = test::random_row(8192, 42);
  const double err = relative_rms_error(x, roundtrip(b.type, x));
  std::printf("[ quant    ] %-5s relative RMS error %.5f (bound %.5f)\n", std::string(dtype_name(b.type)).c_str(), err,
              b.max_rel_rms);
  EXPECT_LT(err, b.max_rel_rms);
  if (b.type != DType::F32) {
    EXPECT_GT(err, 0.0);
  }
}

INSTANTIATE_TEST_SUITE_P(Types, RoundTrip,
                         ::testing::Values(Bound{DType::F32, 1e-9}, Bound{DType::F16, 3e-4}, Bound{DType::BF16, 2.5e-3},
                                           Bound{DType::Q8_0, 0.0075}, Bound{DType::Q6_K, 0.024},
                                           Bound{DType::Q5_K, 0.042}, Bound{DType::Q5_1, 0.05},
                                           Bound{DType::Q5_0, 0.05}, Bound{DType::Q4_K, 0.085},
                                           Bound{DType::Q4_1, 0.10}, Bound{DType::Q4_0, 0.105},
                                           Bound{DType::Q3_K, 0.20}, Bound{DType::Q2_K, 0.40}));

// Importance weights: where some columns matter far more, weighting the rounding error by them
// lowers the error that counts (the weighted one), at the cost of the unweighted one.
class Weighted : public ::testing::TestWithParam<DType> {};

TEST_P(Weighted, ImportanceLowersTheWeightedError) {
  const DType t = GetParam();
  ASSERT_TRUE(quant::uses_importance(t));
  const auto x = test::random_row(4096, 7);
  std::vector<float> imp(x.size());
  std::mt19937 rng(3);
  for (size_t i = 0; i < imp.size(); ++i) imp[i] = (rng() % 8 == 0) ? 50.0f : 0.5f;  // a few hot columns
  const double plain = relative_rms_error(x, roundtrip(t, x), imp.data());
  const double weighted = relative_rms_error(x, roundtrip(t, x, imp.data()), imp.data());
  std::printf("[ quant    ] %-5s weighted error: plain %.5f, with importance %.5f\n", std::string(dtype_name(t)).c_str(),
              plain, weighted);
  EXPECT_LT(weighted, plain * 0.97);
}

INSTANTIATE_TEST_SUITE_P(Types, Weighted,
                         ::testing::Values(DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q2_K, DType::Q3_K,
                                           DType::Q4_K, DType::Q5_K, DType::Q6_K));

TEST(Quantizers, NoImportanceIsTheReferenceQuantizer) {
  const auto x = test::random_row(2048, 11);
  for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q2_K, DType::Q3_K, DType::Q4_K,
                  DType::Q5_K, DType::Q6_K, DType::F16, DType::BF16}) {
    std::vector<std::byte> a(row_size(t, 2048)), b(row_size(t, 2048));
    quant::quantize_row(t, x.data(), a.data(), 2048, nullptr);
    kernels::quantize_row(t, x.data(), b.data(), 2048);
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size()), 0) << dtype_name(t);
  }
}

TEST(Quantizers, Q8_0RoundsTiesAwayFromZeroAsLlamaCppsReference) {
  // amax 127 gives d = 1 exactly; 2.5 and -0.5 are ties.
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;
  x[1] = 2.5f;
  x[2] = -0.5f;
  x[3] = 3.5f;
  std::vector<std::byte> q(row_size(DType::Q8_0, 32));
  quant::quantize_row(DType::Q8_0, x.data(), q.data(), 32, nullptr);
  const auto* qs = reinterpret_cast<const int8_t*>(q.data() + 2);
  EXPECT_EQ(qs[0], 127);
  EXPECT_EQ(qs[1], 3);
  EXPECT_EQ(qs[2], -1);
  EXPECT_EQ(qs[3], 4);
}

TEST(Quantizers, ZeroRowsStayZero) {
  std::vector<float> x(512, 0.0f), imp(512, 1.0f);
  for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q2_K, DType::Q3_K, DType::Q4_K,
                  DType::Q5_K, DType::Q6_K, DType::Q8_0}) {
    for (const float* w : {static_cast<const float*>(nullptr), static_cast<const float*>(imp.data())}) {
      const auto y = roundtrip(t, x, w);
      for (float v : y) ASSERT_EQ(v, 0.0f) << dtype_name(t);
    }
  }
}

TEST(Quantizers, RowNotAMultipleOfTheBlockIsAnError) {
  std::vector<float> x(100, 1.0f);
  std::vector<std::byte> q(1024);
  EXPECT_THROW(quant::quantize_row(DType::Q4_K, x.data(), q.data(), 100, nullptr), Error);
}

}  // namespace
}  // namespace edgelm
