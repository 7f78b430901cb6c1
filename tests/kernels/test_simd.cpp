// Every SIMD kernel set this CPU can run (one per Highway target compiled in: AVX3_DL, AVX3,
// AVX2, SSE4, NEON, the scalar fallback ...) against the scalar references. Each test is
// instantiated once per target, so a bug in one instruction set's path names that target.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/kernels.hpp"
#include "kernels/simd.hpp"
#include "support/kernel_inputs.hpp"
#include "tensor/blocks.hpp"
#include "tensor/fp16.hpp"

namespace edgelm::kernels {
namespace {

using simd::KernelSet;

using test::random_row;

// A weight matrix of `rows` x `n` in type t, quantized by the reference.
struct Matrix {
  DType type;
  int64_t n, rows;
  std::vector<std::byte> data;
  TensorView view() const { return test::matrix_view(type, n, rows, data); }
};

Matrix make_matrix(DType t, int64_t n, int64_t rows, uint32_t seed) {
  const auto w = random_row(n * rows, seed, 0.5f);
  return Matrix{t, n, rows, test::reference_quantize_rows(t, w.data(), n, rows)};
}

bool is_int8(DType t) { return t == DType::Q4_0 || t == DType::Q4_1 || t == DType::Q8_0; }

class SimdTest : public ::testing::TestWithParam<const KernelSet*> {
 protected:
  const KernelSet& ks() const { return *GetParam(); }
};

std::string target_label(const ::testing::TestParamInfo<const KernelSet*>& info) {
  return info.param->name;
}

INSTANTIATE_TEST_SUITE_P(Targets, SimdTest, ::testing::ValuesIn(simd::supported()), target_label);

// Each of the three forms (y = x W^T, dx = dy W, dW += dy^T x) on shapes that leave partial
// register tiles, panels and k blocks, on a sub-block of C, against the double-sum reference.
TEST_P(SimdTest, GemmMatchesTheReferenceInEveryForm) {
  struct Shape {
    int64_t M, N, K;
  };
  for (const Shape sh : {Shape{1, 1, 1}, Shape{7, 17, 3}, Shape{13, 40, 300}, Shape{101, 70, 513}, Shape{6, 32, 256}})
    for (int form = 0; form < 4; ++form) {
      const bool ta = form & 1, tb = form & 2;
      const auto a = random_row(sh.M * sh.K + 5, 11u + static_cast<uint32_t>(form), 1.0f);
      const auto b = random_row(sh.K * sh.N + 5, 23u + static_cast<uint32_t>(form), 1.0f);
      const size_t lda = static_cast<size_t>(ta ? sh.M : sh.K), ldb = static_cast<size_t>(tb ? sh.K : sh.N);
      const size_t ldc = static_cast<size_t>(sh.N + 3);
      const auto c0 = random_row(sh.M * static_cast<int64_t>(ldc), 37u, 1.0f);
      for (const bool acc : {false, true}) {
        std::vector<float> got = c0, want = c0;
        // rows and columns [1, M - 1) x [2, N) where the shape allows: the border must stay
        const int64_t m0 = sh.M > 2 ? 1 : 0, m1 = sh.M > 2 ? sh.M - 1 : sh.M, n0 = sh.N > 3 ? 2 : 0;
        GemmArgs g{.trans_a = ta, .trans_b = tb, .K = sh.K, .a = a.data(), .lda = lda, .b = b.data(), .ldb = ldb,
                   .c = got.data(), .ldc = ldc, .accumulate = acc, .m0 = m0, .m1 = m1, .n0 = n0, .n1 = sh.N};
        ks().flt.gemm(g);
        g.c = want.data();
        gemm_reference(g);
        for (size_t i = 0; i < got.size(); ++i)
          ASSERT_NEAR(got[i], want[i], 2e-6f * static_cast<float>(sh.K) + 1e-6f)
              << "M " << sh.M << " N " << sh.N << " K " << sh.K << " form " << form << " acc " << acc << " at " << i;
      }
    }
}

TEST(SimdRegistry, BestIsAmongSupportedAndCoversTheCpu) {
  const auto sets = simd::supported();
  ASSERT_FALSE(sets.empty());
  EXPECT_NE(std::find(sets.begin(), sets.end(), &simd::best()), sets.end());
  EXPECT_EQ(target_name(), simd::best().name);
  // Guards the build configuration: a CPU with AVX2 must get an AVX2-or-better set compiled in.
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) {
    bool found = false;
    for (const auto* s : sets) found |= std::string(s->name) == "AVX2";
    EXPECT_TRUE(found) << "no AVX2 kernel set compiled in";
  }
#if defined(EDGELM_NO_AVX512_TARGETS)  // the sanitizer build: AVX2 is the best it compiles
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
    EXPECT_STREQ(sets.front()->name, "AVX2");
#else
  if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vbmi2")) {
    EXPECT_STREQ(sets.front()->name, "AVX3_DL");
  }
#endif
#elif defined(__aarch64__)
  bool found = false;
  for (const auto* s : sets) found |= std::string(s->name) == "NEON";
  EXPECT_TRUE(found) << "no NEON kernel set compiled in";
#endif
}

// ---- activation quantization: bit-identical to the references ----
TEST_P(SimdTest, QuantizeQ8MatchesReferenceBitForBit) {
  for (DType t : {DType::Q8_0, DType::Q8_1}) {
    const int64_t n = 32 * 37;
    auto x = random_row(n, 3, 2.0f);
    std::fill(x.begin() + 64, x.begin() + 96, 0.0f);  // an all-zero block: d = 0
    x[5] = 1e-30f;                                      // tiny values next to normal ones
    for (int64_t i = 128; i < 160; ++i) x[i] = static_cast<float>(i - 144) * 0.5f;  // exact .5 ties
    std::vector<std::byte> want(row_size(t, n)), got(row_size(t, n));
    reference_ops(t)->from_float(x.data(), want.data(), n);
    ks().type_ops(t)->from_float(x.data(), got.data(), n);
    EXPECT_EQ(0, std::memcmp(want.data(), got.data(), want.size())) << dtype_name(t);
  }
}

TEST_P(SimdTest, HalfConversionsMatchReferenceBitForBit) {
  // Every finite half to float and back.
  std::vector<uint16_t> all;
  for (uint32_t h = 0; h < 0x10000; ++h)
    if ((h & 0x7C00) != 0x7C00) all.push_back(static_cast<uint16_t>(h));
  std::vector<float> f(all.size());
  ks().flt.f16.to_float(all.data(), f.data(), static_cast<int64_t>(all.size()));
  for (size_t i = 0; i < all.size(); ++i) ASSERT_EQ(f[i], fp16_to_f32(all[i])) << std::hex << all[i];
  // Floats that round: random magnitudes over the half range, subnormals, ties, overflow.
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> e(-26.0f, 16.5f);
  std::vector<float> x;
  for (int i = 0; i < 4099; ++i) x.push_back((i % 2 ? -1.0f : 1.0f) * std::exp2(e(rng)));
  x.push_back(1.0f + 1.0f / 2048);  // tie to even
  x.push_back(65520.0f);            // rounds to infinity
  x.push_back(2.9802322e-08f);      // half the smallest subnormal
  std::vector<uint16_t> got(x.size()), got2(x.size());
  ks().flt.f16.from_float(x.data(), got.data(), static_cast<int64_t>(x.size()));
  ks().flt.to_f16(x.data(), got2.data(), static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_EQ(got[i], f32_to_fp16(x[i])) << x[i];
    ASSERT_EQ(got2[i], f32_to_fp16(x[i])) << x[i];
  }
}

// ---- dot products ----
class SimdDot : public ::testing::TestWithParam<std::tuple<const KernelSet*, DType>> {};

TEST_P(SimdDot, MatchesReference) {
  const auto& [set, wt] = GetParam();
  const TypeOps& ref = *reference_ops(wt);
  const TypeOps& simd = *set->type_ops(wt);
  ASSERT_EQ(ref.vec_dot_type, simd.vec_dot_type);
  for (int64_t n : {32, 64, 576, 1536 + 32}) {
    const auto w = random_row(n, 11, 0.7f), x = random_row(n, 12, 3.0f);
    std::vector<std::byte> wq(row_size(wt, n)), xq(row_size(ref.vec_dot_type, n));
    ref.from_float(w.data(), wq.data(), n);
    reference_ops(ref.vec_dot_type)->from_float(x.data(), xq.data(), n);
    std::vector<float> wd(n), xd(n);
    ref.to_float(wq.data(), wd.data(), n);
    reference_ops(ref.vec_dot_type)->to_float(xq.data(), xd.data(), n);
    double mag = 0;
    for (int64_t i = 0; i < n; ++i) mag += std::fabs(static_cast<double>(wd[i]) * xd[i]);
    const float want = ref.vec_dot(n, wq.data(), xq.data());
    const float got = simd.vec_dot(n, wq.data(), xq.data());
    if (set->quant.exact && is_int8(wt)) {
      EXPECT_EQ(got, want) << dtype_name(wt) << " n=" << n << ": not bit-identical to the reference";
    } else {
      EXPECT_NEAR(got, want, 2e-6 * mag + 1e-6) << dtype_name(wt) << " n=" << n;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Targets, SimdDot,
    ::testing::Combine(::testing::ValuesIn(simd::supported()),
                       ::testing::Values(DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0,
                                         DType::Q4_1)),
    [](const auto& info) {
      return std::string(std::get<0>(info.param)->name) + "_" + std::string(dtype_name(std::get<1>(info.param)));
    });

// ---- matrix products: every tile shape, token count and row range ----
class SimdMatmul : public ::testing::TestWithParam<std::tuple<const KernelSet*, DType>> {};

TEST_P(SimdMatmul, MatchesReferenceDots) {
  const auto& [set, wt] = GetParam();
  const TypeOps& ref = *reference_ops(wt);
  // Two batches of eight blocks and a tail of three; a tail alone.
  for (const int64_t n : {int64_t{32 * 19}, int64_t{32 * 5}}) {
    SCOPED_TRACE("n=" + std::to_string(n));
    const int64_t rows = 23;  // not a multiple of any tile height
    const Matrix m = make_matrix(wt, n, rows, 21);
    const TensorView w = m.view();
    const size_t xs = row_size(ref.vec_dot_type, n);
    // 1 (decode), small batches, a 16-token lane group plus a partial one, and a long prompt.
    for (int64_t n_tok : {1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33, 70}) {
      const auto x = random_row(n * n_tok, 31 + static_cast<uint32_t>(n_tok), 2.0f);
      const std::vector<std::byte> xq = test::reference_quantize_rows(ref.vec_dot_type, x.data(), n, n_tok);
      const size_t ys = rows + 3;  // output stride wider than the row count
      // Ranges that leave 3, 1, 0 and 2 rows past Q8_0's four far rows, and one row alone.
      for (auto [r0, r1] : {std::pair<int64_t, int64_t>{0, rows}, {5, 18}, {2, 22}, {1, 7}, {3, 4}}) {
        std::vector<float> y(ys * static_cast<size_t>(n_tok), -777.0f);
        set->type_ops(wt);  // the set must know the type
        if (wt == DType::F32 || wt == DType::F16 || wt == DType::BF16) {
          set->flt.matmul(w, xq.data(), xs, y.data(), ys, n_tok, r0, r1);
        } else {
          set->quant.matmul(w, xq.data(), xs, y.data(), ys, n_tok, r0, r1);
        }
        for (int64_t t = 0; t < n_tok; ++t) {
          for (int64_t r = 0; r < static_cast<int64_t>(ys); ++r) {
            const float got = y[t * ys + r];
            if (r < r0 || r >= r1) {
              ASSERT_EQ(got, -777.0f) << "wrote outside its rows: r=" << r << " t=" << t;
              continue;
            }
            const float want = ref.vec_dot(n, w.row(r), xq.data() + t * xs);
            std::vector<float> wd(n), xd(n);
            ref.to_float(w.row(r), wd.data(), n);
            reference_ops(ref.vec_dot_type)->to_float(xq.data() + t * xs, xd.data(), n);
            double mag = 0;
            for (int64_t i = 0; i < n; ++i) mag += std::fabs(static_cast<double>(wd[i]) * xd[i]);
            if (set->quant.exact && is_int8(wt)) {
              ASSERT_EQ(got, want) << dtype_name(wt) << " n_tok=" << n_tok << " r=" << r << " t=" << t
                                   << ": not bit-identical to the reference";
            } else {
              ASSERT_NEAR(got, want, 2e-6 * mag + 1e-6)
                  << dtype_name(wt) << " n_tok=" << n_tok << " r=" << r << " t=" << t << " range " << r0 << ".."
                  << r1;
            }
          }
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Targets, SimdMatmul,
    ::testing::Combine(::testing::ValuesIn(simd::supported()),
                       ::testing::Values(DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0,
                                         DType::Q4_1)),
    [](const auto& info) {
      return std::string(std::get<0>(info.param)->name) + "_" + std::string(dtype_name(std::get<1>(info.param)));
    });

// Q8_0 weights may hold -128 (other quantizers produce it); the sign trick must not overflow.
TEST_P(SimdTest, Q8_0ExtremeWeightsAndActivations) {
  const int64_t n = 64, rows = 5;
  Matrix m{DType::Q8_0, n, rows, std::vector<std::byte>(row_size(DType::Q8_0, n) * rows)};
  auto* wb = reinterpret_cast<BlockQ8_0*>(m.data.data());
  for (int64_t b = 0; b < rows * n / 32; ++b) {
    wb[b].d = f32_to_fp16(0.01f * static_cast<float>(b + 1));
    for (int j = 0; j < 32; ++j) wb[b].qs[j] = static_cast<int8_t>(j % 2 ? -128 : 127);
  }
  std::vector<BlockQ8_0> xb(static_cast<size_t>(n / 32) * 9);
  for (auto& b : xb) {
    b.d = f32_to_fp16(0.5f);
    for (int j = 0; j < 32; ++j) b.qs[j] = static_cast<int8_t>(j % 2 ? -127 : 127);
  }
  const size_t xs = row_size(DType::Q8_0, n);
  for (int64_t n_tok : {1, 9}) {
    std::vector<float> y(static_cast<size_t>(rows * n_tok));
    ks().quant.matmul(m.view(), reinterpret_cast<const std::byte*>(xb.data()), xs, y.data(), rows, n_tok, 0, rows);
    for (int64_t t = 0; t < n_tok; ++t)
      for (int64_t r = 0; r < rows; ++r) {
        const float want = reference_ops(DType::Q8_0)->vec_dot(n, m.view().row(r),
                                                               reinterpret_cast<const std::byte*>(xb.data()) + t * xs);
        if (ks().quant.exact) {
          ASSERT_EQ(y[t * rows + r], want) << "r=" << r << " t=" << t;
        } else {
          ASSERT_NEAR(y[t * rows + r], want, 1e-4f * std::fabs(want)) << "r=" << r << " t=" << t;
        }
      }
  }
}

// ---- element-wise ----
TEST_P(SimdTest, RmsNormMatchesReference) {
  for (int64_t n : {1, 7, 576, 1000}) {
    const auto x = random_row(n, 41, 3.0f), w = random_row(n, 42);
    std::vector<float> want(n), got(n), want2(n), got2(n);
    rmsnorm(x.data(), w.data(), want.data(), n, 1e-5f);
    ks().flt.rmsnorm(x.data(), w.data(), got.data(), n, 1e-5f);
    rmsnorm(x.data(), nullptr, want2.data(), n, 1e-5f);
    ks().flt.rmsnorm(x.data(), nullptr, got2.data(), n, 1e-5f);
    // The squares are summed in double as in the reference: only the order of the additions
    // differs, which does not show after rounding to float.
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(got[i], want[i]) << i;
      ASSERT_EQ(got2[i], want2[i]) << i;
    }
  }
}

TEST_P(SimdTest, SoftmaxMatchesReference) {
  for (int64_t n : {1, 3, 17, 64, 513}) {
    auto x = random_row(n, 51, 4.0f);
    x[0] = 80.0f;  // large values stay finite (max subtracted)
    auto want = x, got = x;
    softmax(want.data(), n);
    ks().flt.softmax(got.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(got[i], want[i], 2e-6f * want[i] + 1e-9f) << "n=" << n << " i=" << i;
  }
}

// Same angles as the reference (libm, computed once per token for all heads and layers); the
// rotation itself may be fused into FMAs on targets that have them, hence the tolerance.
TEST_P(SimdTest, RopeMatchesReference) {
  const int64_t hd = 64, heads = 3;
  for (bool neox : {false, true}) {
    for (int64_t n_rot : {64, 32}) {
      for (int64_t pos : {0, 1, 17, 1000}) {
        auto x = random_row(hd * heads, 61);
        auto want = x, got = x;
        for (int64_t h = 0; h < heads; ++h) rope(want.data() + h * hd, hd, n_rot, pos, 10000.0f, 1.0f, neox);
        std::vector<float> cs(n_rot / 2), sn(n_rot / 2);
        simd::rope_angles(n_rot, pos, 10000.0f, 1.0f, cs.data(), sn.data());
        ks().flt.rope(got.data(), heads, hd, n_rot, cs.data(), sn.data(), neox);
        for (size_t i = 0; i < x.size(); ++i)
          ASSERT_NEAR(got[i], want[i], 1e-6f * (std::fabs(x[i]) + 1.0f))
              << "neox=" << neox << " n_rot=" << n_rot << " pos=" << pos << " i=" << i;
      }
    }
  }
}

TEST(RopeAngles, BitIdenticalToTheReferenceRotation) {
  for (int64_t n_rot : {64, 32, 6}) {
    for (int64_t pos : {0, 1, 5, 777, 8191}) {
      for (float base : {10000.0f, 100000.0f}) {
        // Rotating (1, 0) pairs by the reference yields exactly (cos, sin) of each angle.
        std::vector<float> x(n_rot);
        for (int64_t i = 0; i < n_rot; i += 2) x[i] = 1.0f;
        rope(x.data(), n_rot, n_rot, pos, base, 0.5f, false);
        std::vector<float> cs(n_rot / 2), sn(n_rot / 2);
        simd::rope_angles(n_rot, pos, base, 0.5f, cs.data(), sn.data());
        for (int64_t i = 0; i < n_rot / 2; ++i) {
          ASSERT_EQ(cs[i], x[2 * i]) << "pos=" << pos << " i=" << i;
          ASSERT_EQ(sn[i], x[2 * i + 1]) << "pos=" << pos << " i=" << i;
        }
      }
    }
  }
}

TEST_P(SimdTest, GeGluMatchesReferenceBitForBit) {
  for (int64_t n : {1, 5, 1536, 2053}) {
    auto g = random_row(n, 73, 12.0f), u = random_row(n, 74);
    // the edges: the +-10 cut-offs, halves' rounding ties, subnormal halves, zeros, infinities
    const float edges[] = {-10.0f, 10.0f, -9.999f, 9.999f, 0.0f, -0.0f, 1.00048828125f, 6e-8f, -3e-6f,
                           65504.0f, 70000.0f, -1e30f, std::numeric_limits<float>::infinity()};
    for (size_t k = 0; k < std::size(edges) && static_cast<int64_t>(k) < n; ++k) g[k] = edges[k];
    std::vector<float> want(n), got(n);
    geglu(g.data(), u.data(), want.data(), n);
    ks().flt.geglu(g.data(), u.data(), got.data(), n);
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(std::memcmp(&got[i], &want[i], sizeof(float)), 0) << i << ": " << got[i] << " vs " << want[i];
    auto in_place = g;  // the forward pass writes the activation over gate
    ks().flt.geglu(in_place.data(), u.data(), in_place.data(), n);
    ASSERT_EQ(std::memcmp(in_place.data(), got.data(), n * sizeof(float)), 0) << "in place differs";
  }
}

TEST_P(SimdTest, SwiGluAndAddMatchReference) {
  for (int64_t n : {1, 5, 1536, 1541}) {
    auto g = random_row(n, 71, 4.0f), u = random_row(n, 72);
    g[0] = -100.0f;  // exp overflow side: silu -> -0
    if (n > 1) g[1] = 100.0f;
    std::vector<float> want(n), got(n);
    swiglu(g.data(), u.data(), want.data(), n);
    ks().flt.swiglu(g.data(), u.data(), got.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(got[i], want[i], 4e-6f * std::fabs(want[i]) + 1e-30f) << i;
    auto in_place = g;  // the forward pass writes the activation over gate
    ks().flt.swiglu(in_place.data(), u.data(), in_place.data(), n);
    ASSERT_EQ(in_place, got) << "in place differs from out of place";
    auto y1 = u, y2 = u;
    add_inplace(y1.data(), g.data(), n);
    ks().flt.add(y2.data(), g.data(), n);
    ASSERT_EQ(y1, y2);
  }
}

// ---- attention over an F16 cache ----
TEST_P(SimdTest, AttendMatchesReference) {
  constexpr int B = simd::kKeyBlock;
  // Bit-identical where the target has fused multiply-add (every target but SSE4 / EMU128).
  const bool exact = ks().quant.exact;
  for (auto order : {AttnOrder::kSingle, AttnOrder::kBatch}) {
    for (int64_t hd : {64, 20, 80, 128}) {
      for (int n_q : {1, 3, 5}) {
        for (int n_kv : {1, 2, 16, 31, 200}) {
          const int64_t kv_dim = hd * 3;  // three KV heads; the kernel reads head 1
          const size_t kv_stride = static_cast<size_t>(kv_dim);
          const auto vf = random_row(kv_dim * n_kv, 82);
          std::vector<uint16_t> v(vf.size());
          for (size_t i = 0; i < vf.size(); ++i) v[i] = f32_to_fp16(vf[i]);
          // Keys in the cache's block layout; padding positions hold garbage (NaN).
          const int64_t blocks = (n_kv + B - 1) / B;
          const size_t kt_stride = static_cast<size_t>(kv_dim) * B;
          std::vector<uint16_t> kt(static_cast<size_t>(blocks) * kt_stride, 0x7E00);
          const auto kf = random_row(kv_dim * n_kv, 81);
          for (int p = 0; p < n_kv; ++p)
            for (int64_t i = 0; i < kv_dim; ++i) kt[(p / B) * kt_stride + i * B + p % B] = f32_to_fp16(kf[p * kv_dim + i]);
          const size_t q_stride = static_cast<size_t>(hd) + 8, out_stride = static_cast<size_t>(hd) + 4;
          const auto q = random_row(static_cast<int64_t>(q_stride) * n_q, 83, 2.0f);
          std::vector<float> got(out_stride * n_q, -1.0f), want(out_stride * n_q, -1.0f);
          std::vector<float> scores(static_cast<size_t>(n_q) * blocks * B), ref_scores(n_kv);
          const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
          ks().flt.attend(q.data(), q_stride, n_q, kt.data() + hd * B, kt_stride, v.data() + hd, kv_stride, hd, n_kv,
                          scale, scores.data(), got.data(), out_stride, order);
          attend_reference(q.data(), q_stride, n_q, kt.data() + hd * B, kt_stride, v.data() + hd, kv_stride, hd, n_kv,
                           scale, ref_scores.data(), want.data(), out_stride, order);
          for (int g = 0; g < n_q; ++g)
            for (int64_t i = 0; i < hd; ++i) {
              const size_t k = g * out_stride + i;
              if (exact)
                ASSERT_EQ(got[k], want[k]) << "order=" << static_cast<int>(order) << " hd=" << hd << " n_q=" << n_q
                                           << " n_kv=" << n_kv << " g=" << g << " i=" << i;
              else
                ASSERT_NEAR(got[k], want[k], 2e-5f) << "hd=" << hd << " n_kv=" << n_kv;
            }
        }
      }
    }
  }
}

TEST_P(SimdTest, ExpPolyMatchesReference) {
  // Through SwiGLU, the kernel that uses it: gate values over exp's whole range.
  const int64_t n = 4099;
  std::vector<float> g(n), u(n, 1.0f), want(n), got(n);
  for (int64_t i = 0; i < n; ++i) g[i] = -120.0f + 240.0f * static_cast<float>(i) / static_cast<float>(n - 1);
  g[0] = -INFINITY;
  g[1] = INFINITY;
  swiglu(g.data(), u.data(), want.data(), n);
  ks().flt.swiglu(g.data(), u.data(), got.data(), n);
  for (int64_t i = 2; i < n; ++i) {
    if (ks().quant.exact)
      ASSERT_EQ(got[i], want[i]) << "gate " << g[i];
    else
      ASSERT_NEAR(got[i], want[i], 4e-6f * std::fabs(want[i])) << "gate " << g[i];
  }
}

}  // namespace
}  // namespace edgelm::kernels
