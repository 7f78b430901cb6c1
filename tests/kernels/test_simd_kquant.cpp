// The K-quant mix kernels (simd_kquant.cpp: Q5_0, Q5_1, Q2_K .. Q6_K) of every kernel set this
// CPU can run, against the scalar references: bit for bit, each token of a product in the order
// reference_batch_dot picks for it (Q4_K: 4-token tiles and the tokens left over; Q6_K: lane
// order below 8 tokens, tiled from 8; the others one order).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/kernels.hpp"
#include "kernels/reference_kquants.hpp"
#include "kernels/simd.hpp"
#include "support/kernel_inputs.hpp"
#include "tensor/blocks.hpp"
#include "tensor/fp16.hpp"
#include "tensor/kquant_blocks.hpp"

namespace edgelm::kernels {
namespace {

using simd::KernelSet;

bool is_legacy(DType t) { return t == DType::Q5_0 || t == DType::Q5_1; }  // blocks of 32

using test::matrix_view;
using test::random_row;

// rows x n weights of type t. Quantized by the reference, or (raw) random bytes with sane
// half-precision scales: every level, 4-bit (Q2_K) and 6-bit scale / min and Q6_K scale (-128
// included) occurs.
std::vector<std::byte> make_weights(DType t, int64_t n, int64_t rows, uint32_t seed, bool raw) {
  if (!raw) {
    const auto w = random_row(n * rows, seed, 0.5f);
    return test::reference_quantize_rows(t, w.data(), n, rows);
  }
  const size_t rs = row_size(t, n);
  std::vector<std::byte> data(rs * static_cast<size_t>(rows));
  std::mt19937 rng(seed);
  for (auto& b : data) b = static_cast<std::byte>(rng() & 0xFF);
  std::uniform_real_distribution<float> u(-0.01f, 0.01f);
  auto half = [&](void* p) {
    const uint16_t h = f32_to_fp16(u(rng));
    std::memcpy(p, &h, 2);
  };
  for (int64_t r = 0; r < rows; ++r) {
    std::byte* row = data.data() + r * rs;
    if (t == DType::Q5_0) {
      for (int64_t b = 0; b < n / kQK; ++b) half(&reinterpret_cast<BlockQ5_0*>(row)[b].d);
    } else if (t == DType::Q5_1) {
      for (int64_t b = 0; b < n / kQK; ++b) {
        half(&reinterpret_cast<BlockQ5_1*>(row)[b].d);
        half(&reinterpret_cast<BlockQ5_1*>(row)[b].m);
      }
    } else if (t == DType::Q2_K) {
      for (int64_t b = 0; b < n / kQK_K; ++b) {
        half(&reinterpret_cast<BlockQ2_K*>(row)[b].d);
        half(&reinterpret_cast<BlockQ2_K*>(row)[b].dmin);
      }
    } else if (t == DType::Q3_K) {
      for (int64_t b = 0; b < n / kQK_K; ++b) half(&reinterpret_cast<BlockQ3_K*>(row)[b].d);
    } else if (t == DType::Q4_K) {
      for (int64_t b = 0; b < n / kQK_K; ++b) {
        half(&reinterpret_cast<BlockQ4_K*>(row)[b].d);
        half(&reinterpret_cast<BlockQ4_K*>(row)[b].dmin);
      }
    } else if (t == DType::Q5_K) {
      for (int64_t b = 0; b < n / kQK_K; ++b) {
        half(&reinterpret_cast<BlockQ5_K*>(row)[b].d);
        half(&reinterpret_cast<BlockQ5_K*>(row)[b].dmin);
      }
    } else {
      for (int64_t b = 0; b < n / kQK_K; ++b) half(&reinterpret_cast<BlockQ6_K*>(row)[b].d);
    }
  }
  return data;
}

// n_tok activation rows quantized to the type's activation format by the reference; some
// elements large enough to saturate their block (levels +-127).
std::vector<std::byte> make_activations(DType xt, int64_t n, int64_t n_tok, uint32_t seed) {
  auto x = random_row(n * n_tok, seed, 2.0f);
  for (size_t i = 0; i < x.size(); i += 37) x[i] *= 40.0f;
  return test::reference_quantize_rows(xt, x.data(), n, n_tok);
}

class SimdKQuant : public ::testing::TestWithParam<std::tuple<const KernelSet*, DType>> {};

TEST_P(SimdKQuant, VecDotIsBitIdenticalToTheReference) {
  const auto& [set, wt] = GetParam();
  const TypeOps& ref = *reference_ops(wt);
  const TypeOps* simd = set->type_ops(wt);
  ASSERT_NE(simd, nullptr) << "the set has no kernels for " << dtype_name(wt);
  ASSERT_EQ(ref.vec_dot_type, simd->vec_dot_type);
  const std::vector<int64_t> sizes = is_legacy(wt) ? std::vector<int64_t>{32, 64, 640, 2048 + 32}
                                                       : std::vector<int64_t>{256, 512, 640 * 4, 2048};
  for (bool raw : {false, true}) {
    for (int64_t n : sizes) {
      const auto w = make_weights(wt, n, 1, 7 + static_cast<uint32_t>(n), raw);
      const auto x = make_activations(ref.vec_dot_type, n, 1, 9 + static_cast<uint32_t>(n));
      const float want = ref.vec_dot(n, w.data(), x.data());
      const float got = simd->vec_dot(n, w.data(), x.data());
      EXPECT_EQ(got, want) << dtype_name(wt) << " n=" << n << (raw ? " (raw bytes)" : "");
    }
  }
}

TEST_P(SimdKQuant, MatmulIsBitIdenticalToTheReferenceOrders) {
  const auto& [set, wt] = GetParam();
  const TypeOps& ref = *reference_ops(wt);
  const int64_t n = is_legacy(wt) ? 32 * 19 : 256 * 3;
  const int64_t rows = 23;  // not a multiple of any tile height
  const size_t xs = row_size(ref.vec_dot_type, n);
  for (bool raw : {false, true}) {
    const auto wdata = make_weights(wt, n, rows, 21, raw);
    const TensorView w = matrix_view(wt, n, rows, wdata);
    // Every order and tail: decode, Q4_K's tiles of 4 with 0..3 left over, Q6_K's switch at 8.
    for (int64_t n_tok : {1, 2, 3, 4, 5, 7, 8, 9, 12, 16, 17}) {
      const auto xq = make_activations(ref.vec_dot_type, n, n_tok, 31 + static_cast<uint32_t>(n_tok));
      const size_t ys = rows + 3;  // output stride wider than the row count
      for (auto [r0, r1] : {std::pair<int64_t, int64_t>{0, rows}, {5, 18}, {3, 4}}) {
        std::vector<float> y(ys * static_cast<size_t>(n_tok), -777.0f);
        set->kquant.matmul(w, xq.data(), xs, y.data(), ys, n_tok, r0, r1);
        for (int64_t t = 0; t < n_tok; ++t) {
          const VecDotFn batch = reference_batch_dot(wt, n_tok, t);
          const VecDotFn dot = batch ? batch : ref.vec_dot;
          for (int64_t r = 0; r < static_cast<int64_t>(ys); ++r) {
            const float got = y[t * ys + r];
            if (r < r0 || r >= r1) {
              ASSERT_EQ(got, -777.0f) << "wrote outside its rows: r=" << r << " t=" << t;
              continue;
            }
            const float want = dot(n, w.row(r), xq.data() + t * xs);
            ASSERT_EQ(got, want) << dtype_name(wt) << " n_tok=" << n_tok << " r=" << r << " t=" << t << " range "
                                 << r0 << ".." << r1 << (raw ? " (raw bytes)" : "");
          }
        }
      }
    }
  }
}

TEST(SimdKQuantQ8K, QuantizeIsBitIdenticalToTheReference) {
  const int64_t n = 256 * 8;
  auto x = random_row(n, 5, 2.0f);
  std::fill(x.begin() + 256, x.begin() + 512, 0.0f);  // an all-zero block
  for (int64_t i = 512; i < 768; ++i) x[i] = static_cast<float>(i - 640) * 0.25f;  // ties, repeated maxima
  x[700] = -x[767];                                    // the same magnitude twice, signs differ
  x[800] = std::nanf("");                              // NaN: ignored by the scale, quantized to 0
  x[1100] = std::numeric_limits<float>::infinity();    // infinity: scale from it, everything 0
  for (int64_t i = 1280; i < 1536; ++i) x[i] = 1e-38f * static_cast<float>(i % 7 - 3);  // 127 / max overflows
  for (int64_t i = 1536; i < 1792; ++i) x[i] = std::nanf("");  // all NaN: like all zero
  std::vector<std::byte> want(row_size(DType::Q8_K, n)), got(want.size());
  reference_ops(DType::Q8_K)->from_float(x.data(), want.data(), n);
  for (const KernelSet* set : simd::supported()) {
    const TypeOps* o = set->type_ops(DType::Q8_K);
    ASSERT_NE(o, nullptr) << set->name;
    std::fill(got.begin(), got.end(), std::byte{0x5A});
    o->from_float(x.data(), got.data(), n);
    for (int64_t b = 0; b < n / 256; ++b) {
      const size_t bs = row_size(DType::Q8_K, 256);
      EXPECT_EQ(0, std::memcmp(want.data() + b * bs, got.data() + b * bs, bs)) << set->name << " block " << b;
    }
  }
}

// The orders differ (else the test above could not tell a kernel that ignores them): on these
// inputs some token's batch-order result differs from its one-token result.
TEST(SimdKQuantOrders, BatchOrdersDifferFromTheOneTokenOrder) {
  for (DType wt : {DType::Q4_K, DType::Q6_K}) {
    const TypeOps& ref = *reference_ops(wt);
    const int64_t n = 256 * 3, rows = 23;
    const auto wdata = make_weights(wt, n, rows, 21, false);
    const auto xq = make_activations(ref.vec_dot_type, n, 8, 39);
    const size_t rs = row_size(wt, n), xs = row_size(ref.vec_dot_type, n);
    int differ = 0;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t t = 0; t < 8; ++t)
        differ += reference_batch_dot(wt, 8, t)(n, wdata.data() + r * rs, xq.data() + t * xs) !=
                  ref.vec_dot(n, wdata.data() + r * rs, xq.data() + t * xs);
    EXPECT_GT(differ, 0) << dtype_name(wt);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Targets, SimdKQuant,
    ::testing::Combine(::testing::ValuesIn(simd::supported()),
                       ::testing::Values(DType::Q5_0, DType::Q5_1, DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K,
                                         DType::Q6_K)),
    [](const auto& info) {
      return std::string(std::get<0>(info.param)->name) + "_" + std::string(dtype_name(std::get<1>(info.param)));
    });

}  // namespace
}  // namespace edgelm::kernels
