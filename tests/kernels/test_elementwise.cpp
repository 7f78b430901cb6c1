#include <cmath>
#include <numeric>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/kernels.hpp"
#include "kernels/thread_pool.hpp"

namespace edgelm::kernels {
namespace {

TEST(RmsNorm, UnitRmsAndWeight) {
  std::vector<float> x{1, -2, 3, -4}, w{1, 1, 2, 0.5f}, out(4);
  rmsnorm(x.data(), w.data(), out.data(), 4, 0.0f);
  const float rms = std::sqrt((1 + 4 + 9 + 16) / 4.0f);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(out[i], x[i] / rms * w[i], 1e-6);
}

TEST(Softmax, SumsToOneAndIsStableForLargeInputs) {
  std::vector<float> x{1000, 1001, 1002};
  softmax(x.data(), 3);
  EXPECT_NEAR(x[0] + x[1] + x[2], 1.0f, 1e-6);
  EXPECT_NEAR(x[2] / x[1], std::exp(1.0f), 1e-4);
}

TEST(Rope, RotatesPairsByPositionAngle) {
  // pos 1, base b, n_rot 4: pair 0 turns by 1 rad, pair 1 by b^(-1/2) rad.
  std::vector<float> x{1, 0, 1, 0};
  rope(x.data(), 4, 4, 1, 100.0f, 1.0f, false);
  EXPECT_NEAR(x[0], std::cos(1.0f), 1e-6);
  EXPECT_NEAR(x[1], std::sin(1.0f), 1e-6);
  EXPECT_NEAR(x[2], std::cos(0.1f), 1e-6);
  EXPECT_NEAR(x[3], std::sin(0.1f), 1e-6);
  std::vector<float> y{1, 1, 0, 0};  // neox pairs (0,2) and (1,3)
  rope(y.data(), 4, 4, 1, 100.0f, 1.0f, true);
  EXPECT_NEAR(y[0], std::cos(1.0f), 1e-6);
  EXPECT_NEAR(y[2], std::sin(1.0f), 1e-6);
  EXPECT_NEAR(y[1], std::cos(0.1f), 1e-6);
  EXPECT_NEAR(y[3], std::sin(0.1f), 1e-6);
}

TEST(Rope, PositionZeroIsIdentity) {
  std::vector<float> x{0.3f, -1.2f, 2.5f, 0.7f, 9.0f, 8.0f};
  auto y = x;
  rope(y.data(), 6, 4, 0, 10000.0f, 1.0f, false);
  EXPECT_EQ(x, y);
}

TEST(SwiGlu, SiluTimesUp) {
  std::vector<float> g{0, 1, -1}, u{2, 2, 2}, out(3);
  swiglu(g.data(), u.data(), out.data(), 3);
  EXPECT_NEAR(out[0], 0.0f, 1e-7);
  EXPECT_NEAR(out[1], 2.0f / (1 + std::exp(-1.0f)), 1e-6);
  EXPECT_NEAR(out[2], -2.0f / (1 + std::exp(1.0f)), 1e-6);
}

TEST(ThreadPool, EveryIndexRunsOnceForManyRounds) {
  ThreadPool pool(3);
  std::vector<int> hits(1000, 0);
  for (int round = 0; round < 200; ++round) {
    pool.run([&](int ith, int nth) {
      auto [b, e] = split_range(static_cast<int64_t>(hits.size()), ith, nth);
      for (int64_t i = b; i < e; ++i) ++hits[i];
    });
  }
  for (int h : hits) ASSERT_EQ(h, 200);
}

TEST(SplitRange, CoversWithoutOverlap) {
  for (int n : {0, 1, 5, 64, 1000}) {
    for (int nth : {1, 2, 3, 7}) {
      int64_t next = 0;
      for (int i = 0; i < nth; ++i) {
        auto [b, e] = split_range(n, i, nth);
        if (b < e) {
          EXPECT_EQ(b, next);
          next = e;
        }
      }
      EXPECT_EQ(next, n);
    }
  }
}

}  // namespace
}  // namespace edgelm::kernels
