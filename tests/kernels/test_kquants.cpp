// Q5_0, Q5_1, the K-quants and Q8_K: known values from llama.cpp (fixtures written by
// tests/oracle/gen_quant_fixtures.py, cross-checked there against the `gguf` package), the
// packed-scale helpers, round-trip error bounds on random rows, activation quantization and dot
// products that agree with dequantize-then-multiply.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kernels/kernels.hpp"
#include "kernels/quantize_fits.hpp"
#include "kernels/reference_kquants.hpp"
#include "support/kernel_inputs.hpp"
#include "support/test_models.hpp"
#include "tensor/blocks.hpp"
#include "tensor/fp16.hpp"
#include "tensor/kquant_blocks.hpp"

namespace edgelm {
namespace {

using kernels::reference_ops;
using nlohmann::json;

// Exact comparisons with llama.cpp hold on every platform: reference_kquants.cpp is compiled
// without fused multiply-adds (as is the llama-cpp-python wheel the fixtures come from), so its
// rounding decisions do not depend on the target (checked on x86-64 with -march=native and on
// ARM64 under qemu).

using test::matrix_view;
using test::random_row;
using test::reference_quantize_rows;

// toks activation rows of n for type t's dot product, row k from random_row(n, seed + k),
// quantized by the reference; row k starts at k * row_size(vec_dot_type, n).
std::vector<std::byte> quantized_activations(DType t, int64_t n, int64_t toks, uint32_t seed) {
  const DType xt = reference_ops(t)->vec_dot_type;
  const size_t xs = row_size(xt, n);
  std::vector<std::byte> xq(xs * static_cast<size_t>(toks));
  for (int64_t k = 0; k < toks; ++k) {
    const auto a = random_row(n, seed + static_cast<uint32_t>(k));
    reference_ops(xt)->from_float(a.data(), xq.data() + k * xs, n);
  }
  return xq;
}

std::vector<std::byte> from_hex(const std::string& hex) {
  std::vector<std::byte> out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<std::byte>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  }
  return out;
}

std::string to_hex(const std::byte* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += digits[static_cast<unsigned>(p[i]) >> 4];
    s += digits[static_cast<unsigned>(p[i]) & 15];
  }
  return s;
}

std::vector<float> floats(const json& j) {
  std::vector<float> v;
  for (const auto& x : j) v.push_back(static_cast<float>(x.get<double>()));
  return v;
}

double dot_f64(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

// Relative RMS error of a reconstruction: sqrt(sum (x - y)^2 / sum x^2).
double relative_rmse(const std::vector<float>& x, const std::vector<float>& y) {
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    num += (static_cast<double>(x[i]) - y[i]) * (static_cast<double>(x[i]) - y[i]);
    den += static_cast<double>(x[i]) * x[i];
  }
  return std::sqrt(num / den);
}

std::vector<float> round_trip(DType t, const std::vector<float>& x) {
  const auto n = static_cast<int64_t>(x.size());
  std::vector<std::byte> q(row_size(t, n));
  std::vector<float> y(x.size());
  reference_ops(t)->from_float(x.data(), q.data(), n);
  reference_ops(t)->to_float(q.data(), y.data(), n);
  return y;
}

// ---- registration ----

TEST(KQuants, RegisteredWithTheirActivationTypes) {
  const std::pair<DType, DType> expected[] = {
      {DType::Q5_0, DType::Q8_0}, {DType::Q5_1, DType::Q8_1}, {DType::Q2_K, DType::Q8_K},
      {DType::Q3_K, DType::Q8_K}, {DType::Q4_K, DType::Q8_K}, {DType::Q5_K, DType::Q8_K},
      {DType::Q6_K, DType::Q8_K}, {DType::Q8_K, DType::Q8_K}};
  for (const auto& [t, act] : expected) {
    const kernels::TypeOps* o = reference_ops(t);
    ASSERT_NE(o, nullptr) << dtype_name(t);
    EXPECT_EQ(o, kernels::reference_kquant_ops(t));
    EXPECT_EQ(o->vec_dot_type, act) << dtype_name(t);
    EXPECT_NE(o->to_float, nullptr);
    EXPECT_NE(o->from_float, nullptr);
    EXPECT_EQ(o->vec_dot == nullptr, t == DType::Q8_K) << dtype_name(t);  // Q8_K is activations only
    EXPECT_TRUE(kernels::can_compute(t));
    EXPECT_EQ(kernels::ops(t).vec_dot_type, act) << dtype_name(t);  // dispatched (SIMD or scalar)
  }
  EXPECT_EQ(kernels::reference_kquant_ops(DType::Q4_0), nullptr);
}

TEST(KQuants, BlockSizesMatchTheTypeTable) {
  EXPECT_EQ(dtype_traits(DType::Q5_0).block_bytes, sizeof(BlockQ5_0));
  EXPECT_EQ(dtype_traits(DType::Q5_1).block_bytes, sizeof(BlockQ5_1));
  EXPECT_EQ(dtype_traits(DType::Q2_K).block_bytes, sizeof(BlockQ2_K));
  EXPECT_EQ(dtype_traits(DType::Q3_K).block_bytes, sizeof(BlockQ3_K));
  EXPECT_EQ(dtype_traits(DType::Q4_K).block_bytes, sizeof(BlockQ4_K));
  EXPECT_EQ(dtype_traits(DType::Q5_K).block_bytes, sizeof(BlockQ5_K));
  EXPECT_EQ(dtype_traits(DType::Q6_K).block_bytes, sizeof(BlockQ6_K));
  EXPECT_EQ(dtype_traits(DType::Q8_K).block_bytes, sizeof(BlockQ8_K));
  for (DType t : {DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q8_K}) {
    EXPECT_EQ(dtype_traits(t).block_size, kQK_K);
  }
}

// ---- packed scales ----

TEST(KQuantScales, Q4KPackingRoundTripsEveryValueInEverySlot) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 2000; ++trial) {
    int sc[8], m[8];
    uint8_t s[kKScaleBytes] = {};
    for (int j = 0; j < 8; ++j) {
      sc[j] = static_cast<int>(rng() % 64);
      m[j] = static_cast<int>(rng() % 64);
    }
    // Packing order must not matter: pack the slots in a shuffled order.
    int order[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    std::shuffle(order, order + 8, rng);
    for (int j : order) q4_k_pack_scale_min(s, j, sc[j], m[j]);
    for (int j = 0; j < 8; ++j) {
      const auto [gs, gm] = q4_k_scale_min(s, j);
      ASSERT_EQ(gs, sc[j]) << "slot " << j;
      ASSERT_EQ(gm, m[j]) << "slot " << j;
    }
  }
}

TEST(KQuantScales, Q4KBitPositions) {
  // Scale 4 = 0b101011 and min 5 = 0b110101: low nibbles in bytes 8 and 9, top bits in the top
  // of bytes 0 (scale 4), 4 (min 4), 1 (scale 5), 5 (min 5), as GGUF lays them out.
  uint8_t s[kKScaleBytes] = {};
  q4_k_pack_scale_min(s, 4, 0b101011, 0);
  q4_k_pack_scale_min(s, 5, 0, 0b110101);
  EXPECT_EQ(s[8], 0x0B);
  EXPECT_EQ(s[0], 0x80);
  EXPECT_EQ(s[9], 0x50);
  EXPECT_EQ(s[5], 0xC0);
  q4_k_pack_scale_min(s, 0, 17, 33);
  EXPECT_EQ(s[0], 0x80 | 17);
  EXPECT_EQ(s[4], 33);
}

TEST(KQuantScales, Q3KPackingRoundTripsAndBiasIs32) {
  std::mt19937 rng(5);
  for (int trial = 0; trial < 2000; ++trial) {
    int v[16];
    uint8_t s[kKScaleBytes] = {};
    for (int j = 0; j < 16; ++j) {
      v[j] = static_cast<int>(rng() % 64);
      q3_k_pack_scale(s, j, v[j]);
    }
    for (int j = 0; j < 16; ++j) ASSERT_EQ(q3_k_scale(s, j), v[j] - 32) << "slot " << j;
  }
  uint8_t s[kKScaleBytes] = {};
  q3_k_pack_scale(s, 13, 0b100111);  // low nibble -> high nibble of byte 5, top bits -> byte 9 bits 6-7
  EXPECT_EQ(s[5], 0x70);
  EXPECT_EQ(s[9], 0x80);
}

// ---- hand-built blocks, decoded by the documented formulas ----

TEST(KQuantKnownValues, Q4KHandBuiltBlock) {
  BlockQ4_K b{};
  b.d = f32_to_fp16(0.5f);
  b.dmin = f32_to_fp16(0.25f);
  for (int j = 0; j < 8; ++j) q4_k_pack_scale_min(b.scales, j, j + 1, 2 * j);
  for (int e = 0; e < kQK_K; ++e) {  // level of element e is e % 16
    b.qs[32 * (e / 64) + e % 32] |= static_cast<uint8_t>((e % 16) << (4 * ((e / 32) % 2)));
  }
  float out[kQK_K];
  reference_ops(DType::Q4_K)->to_float(&b, out, kQK_K);
  for (int e = 0; e < kQK_K; ++e) {
    const int j = e / 32;
    ASSERT_EQ(out[e], 0.5f * (j + 1) * (e % 16) - 0.25f * (2 * j)) << e;
  }
}

TEST(KQuantKnownValues, Q6KHandBuiltBlock) {
  BlockQ6_K b{};
  b.d = f32_to_fp16(0.125f);
  for (int j = 0; j < 16; ++j) b.scales[j] = static_cast<int8_t>(j % 2 ? -(j + 1) : j + 1);
  // Element e gets level (e * 7) % 64 - 32, written field by field from the layout description.
  for (int e = 0; e < kQK_K; ++e) {
    const int q = (e * 7) % 64, half = e / 128, r = e % 128;
    b.ql[64 * half + r % 64] |= static_cast<uint8_t>((q & 0xF) << (4 * (r / 64)));
    b.qh[32 * half + r % 32] |= static_cast<uint8_t>((q >> 4) << (2 * (r / 32)));
  }
  float out[kQK_K];
  reference_ops(DType::Q6_K)->to_float(&b, out, kQK_K);
  for (int e = 0; e < kQK_K; ++e) {
    ASSERT_EQ(out[e], 0.125f * b.scales[e / 16] * ((e * 7) % 64 - 32)) << e;
  }
}

TEST(KQuantKnownValues, Q3KHighBitSetMeansNoOffset) {
  BlockQ3_K b{};
  b.d = f32_to_fp16(1.0f);
  for (int j = 0; j < 16; ++j) q3_k_pack_scale(b.scales, j, 32 + 1);  // every scale = 1
  b.hmask[0] = 0x01;            // element 0: high bit set, low bits 0 -> level 0
  b.qs[1] = 0x03;               // element 1: high bit clear, low bits 3 -> level -1
  b.hmask[2] = 0x02;            // element 34: high bit set ...
  b.qs[2] = 0x03 << 2;          // ... low bits 3 -> level 3
  float out[kQK_K];
  reference_ops(DType::Q3_K)->to_float(&b, out, kQK_K);
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_EQ(out[1], -1.0f);
  EXPECT_EQ(out[34], 3.0f);
  EXPECT_EQ(out[2], -4.0f);  // all bits clear -> lowest level
}

TEST(KQuantKnownValues, Q5_0FifthBitComesFromQh) {
  BlockQ5_0 b{};
  b.d = f32_to_fp16(1.0f);
  const uint32_t qh = (1u << 3) | (1u << 20);  // elements 3 and 20 get the fifth bit
  std::memcpy(b.qh, &qh, 4);
  b.qs[3] = 0x05;  // element 3 low nibble 5, element 19 low nibble 0
  b.qs[4] = 0x20;  // element 20 low nibble 2
  float out[32];
  reference_ops(DType::Q5_0)->to_float(&b, out, 32);
  EXPECT_EQ(out[3], 16 + 5 - 16.0f);
  EXPECT_EQ(out[19], -16.0f);
  EXPECT_EQ(out[20], 16 + 2 - 16.0f);
  EXPECT_EQ(out[0], -16.0f);
}

// ---- fits shared with the importance-weighted quantizers ----

// The reference quantizers call fit_symmetric without weights; the importance-weighted ones pass
// theirs. "No weights" must be exactly the x^2 weighting, bit for bit.
TEST(QuantizeFits, SymmetricFitWithoutWeightsIsTheSquaredValueWeighting) {
  for (uint32_t seed = 1; seed <= 64; ++seed) {
    std::vector<float> x = random_row(32, seed, 0.01f * static_cast<float>(seed));
    if (seed % 8 == 0) std::fill(x.begin(), x.begin() + 16, 0.0f);  // an all-zero group
    if (seed % 8 == 1) x[5] = -x[9];                                   // a tie in magnitude
    for (const int n : {16, 32}) {
      for (const int nmax : {4, 8, 16, 32}) {
        std::vector<float> w(n);
        for (int i = 0; i < n; ++i) w[i] = x[i] * x[i];
        uint8_t l_plain[32], l_weighted[32];
        const float plain = kernels::fit_symmetric(n, nmax, x.data(), nullptr, l_plain);
        const float weighted = kernels::fit_symmetric(n, nmax, x.data(), w.data(), l_weighted);
        ASSERT_EQ(std::bit_cast<uint32_t>(plain), std::bit_cast<uint32_t>(weighted))
            << "seed " << seed << " n " << n << " nmax " << nmax;
        ASSERT_EQ(0, std::memcmp(l_plain, l_weighted, n))
            << "seed " << seed << " n " << n << " nmax " << nmax;
      }
    }
  }
}

// ---- llama.cpp oracle fixtures ----

class LlamaFixture : public ::testing::TestWithParam<DType> {
 protected:
  json load() {
    const std::string path = test::fixture_path("quant/" + std::string(dtype_name(GetParam())) + ".json");
    const std::string text = test::read_file(path);
    if (text.empty()) {
      ADD_FAILURE() << "missing fixture " << path << " (tests/oracle/gen_quant_fixtures.py writes it)";
      return json();
    }
    json j = json::parse(text);
    EXPECT_EQ(j["type"], dtype_name(GetParam()));
    EXPECT_EQ(j["block_bytes"].get<size_t>(), dtype_traits(GetParam()).block_bytes);
    return j;
  }
};

void expect_same_floats(const std::vector<float>& ours, const std::vector<float>& theirs,
                        const std::string& what) {
  ASSERT_EQ(ours.size(), theirs.size()) << what;
  for (size_t i = 0; i < ours.size(); ++i) {
    ASSERT_EQ(std::bit_cast<uint32_t>(ours[i]), std::bit_cast<uint32_t>(theirs[i]))
        << what << " element " << i << ": " << ours[i] << " vs " << theirs[i];
  }
}

TEST_P(LlamaFixture, DequantizeMatchesOnTheSameBytes) {
  const DType t = GetParam();
  const json j = load();
  ASSERT_FALSE(j.is_null());
  ASSERT_GE(j["cases"].size(), 4u);
  for (const json& c : j["cases"]) {
    const auto bytes = from_hex(c["bytes"]);
    const auto expected = floats(c["dequant"]);
    const auto n = static_cast<int64_t>(expected.size());
    ASSERT_EQ(bytes.size(), row_size(t, n));
    std::vector<float> y(n);
    reference_ops(t)->to_float(bytes.data(), y.data(), n);
    expect_same_floats(y, expected, std::string(dtype_name(t)) + " case " + c["name"].get<std::string>());
  }
}

TEST_P(LlamaFixture, QuantizeMatchesLlamaCppBytes) {
  const DType t = GetParam();
  const json j = load();
  ASSERT_FALSE(j.is_null());
  for (const json& c : j["cases"]) {
    const std::string name = std::string(dtype_name(t)) + " case " + c["name"].get<std::string>();
    const auto x = floats(c["input"]);
    const auto n = static_cast<int64_t>(x.size());
    std::vector<std::byte> q(row_size(t, n));
    reference_ops(t)->from_float(x.data(), q.data(), n);
    const size_t bb = dtype_traits(t).block_bytes;
    const std::string ours = to_hex(q.data(), q.size());
    const std::string theirs = c["bytes"];
    ASSERT_EQ(ours.size(), theirs.size()) << name;
    for (size_t b = 0; b < q.size() / bb; ++b) {
      ASSERT_EQ(ours.substr(2 * b * bb, 2 * bb), theirs.substr(2 * b * bb, 2 * bb)) << name << " block " << b;
    }
  }
}

// The generator of tests/oracle/gen_quant_fixtures.py's bulk_row, bit for bit.
std::vector<float> bulk_row(int64_t n, uint32_t state) {
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; ++i) {
    state = state * 1664525u + 1013904223u;
    const double u = (static_cast<double>(state >> 8) - (1 << 23)) / (1 << 23);
    state = state * 1664525u + 1013904223u;
    const int k = (i / 256) % 2 == 0 ? static_cast<int>(state >> 29) : 4;
    x[i] = static_cast<float>(std::ldexp(u, k - 4));
  }
  return x;
}

uint32_t fnv1a32(const std::byte* p, size_t n) {
  uint32_t h = 0x811C9DC5u;
  for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<uint32_t>(p[i])) * 0x01000193u;
  return h;
}

std::string hex32(uint32_t h) {
  char s[9];
  std::snprintf(s, sizeof s, "%08x", h);
  return s;
}

TEST_P(LlamaFixture, QuantizeMatchesLlamaCppOnALongRow) {
  const DType t = GetParam();
  const json j = load();
  ASSERT_FALSE(j.is_null());
  const json& b = j["bulk"];
  const auto n = b["n"].get<int64_t>();
  const auto x = bulk_row(n, b["seed"].get<uint32_t>());
  std::vector<std::byte> q(row_size(t, n));
  reference_ops(t)->from_float(x.data(), q.data(), n);
  const size_t bb = dtype_traits(t).block_bytes;
  ASSERT_LE(b["block_fnv1a32"].size(), q.size() / bb);
  for (size_t i = 0; i < b["block_fnv1a32"].size(); ++i) {  // locates a difference
    ASSERT_EQ(hex32(fnv1a32(q.data() + i * bb, bb)), b["block_fnv1a32"][i].get<std::string>())
        << dtype_name(t) << " block " << i;
  }
  EXPECT_EQ(hex32(fnv1a32(q.data(), q.size())), b["row_fnv1a32"].get<std::string>()) << dtype_name(t);
}

TEST_P(LlamaFixture, DotProductMatchesLlamaCpp) {
  const DType t = GetParam();
  const json j = load();
  ASSERT_FALSE(j.is_null());
  if (t == DType::Q8_K) {
    EXPECT_FALSE(j.contains("dot"));  // activations only: llama.cpp has no Q8_K x Q8_K product
    return;
  }
  const json& d = j["dot"];
  const kernels::TypeOps& o = *reference_ops(t);
  ASSERT_EQ(d["vec_dot_type"], dtype_name(o.vec_dot_type));
  const json* wcase = nullptr;
  for (const json& c : j["cases"]) {
    if (c["name"] == d["case"]) wcase = &c;
  }
  ASSERT_NE(wcase, nullptr);
  const auto w = from_hex((*wcase)["bytes"]);
  const auto a = floats(d["activations"]);
  const auto n = static_cast<int64_t>(a.size());

  // Our activation quantization (Q8_0 / Q8_1 / Q8_K) gives llama.cpp's bytes.
  std::vector<std::byte> aq(row_size(o.vec_dot_type, n));
  reference_ops(o.vec_dot_type)->from_float(a.data(), aq.data(), n);
  EXPECT_EQ(to_hex(aq.data(), aq.size()), d["act_bytes"].get<std::string>());

  // On llama.cpp's activation bytes our dot equals theirs up to float summation order.
  const auto their_aq = from_hex(d["act_bytes"]);
  const float ours = o.vec_dot(n, w.data(), their_aq.data());
  const float theirs = static_cast<float>(d["value"].get<double>());
  std::vector<float> wf(n), af(n);
  o.to_float(w.data(), wf.data(), n);
  reference_ops(o.vec_dot_type)->to_float(their_aq.data(), af.data(), n);
  double magnitude = 0;
  for (int64_t i = 0; i < n; ++i) magnitude += std::fabs(static_cast<double>(wf[i]) * af[i]);
  EXPECT_NEAR(ours, theirs, 1e-5 * magnitude) << dtype_name(t);
  EXPECT_NE(ours, 0.0f);
}

INSTANTIATE_TEST_SUITE_P(Types, LlamaFixture,
                         ::testing::Values(DType::Q5_0, DType::Q5_1, DType::Q2_K, DType::Q3_K,
                                           DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q8_K),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

// ---- round-trip error on random rows ----

struct ErrorBound {
  DType type;
  double max_rel_rmse;  // measured on this row set, plus about 2 % margin
};

// Measured on this row (64 super-blocks of N(0, 1), seed 11) with the reference quantizers,
// which produce llama.cpp's bytes; bounds are the measurements plus 2 %:
//   type  bits/weight  relative RMSE      (for comparison: Q8_0 0.00535, Q4_1 0.0785, Q4_0 0.0861)
//   Q8_K  9.125        0.00696
//   Q6_K  6.5625       0.01775
//   Q5_1  6.0          0.03774
//   Q5_K  5.5          0.03599
//   Q5_0  5.5          0.04252
//   Q4_K  4.5          0.07180
//   Q3_K  3.4375       0.15061
//   Q2_K  2.625        0.29455
constexpr ErrorBound kBounds[] = {
    {DType::Q8_K, 0.00710}, {DType::Q6_K, 0.01811}, {DType::Q5_1, 0.03850}, {DType::Q5_K, 0.03671},
    {DType::Q5_0, 0.04337}, {DType::Q4_K, 0.07324}, {DType::Q3_K, 0.15362}, {DType::Q2_K, 0.30044},
};

class KQuantRoundTrip : public ::testing::TestWithParam<ErrorBound> {};

TEST_P(KQuantRoundTrip, RelativeRmseWithinMeasuredBound) {
  const auto [t, bound] = GetParam();
  const int64_t n = kQK_K * 64;
  const auto x = random_row(n, 11);
  const double err = relative_rmse(x, round_trip(t, x));
  RecordProperty("rel_rmse", std::to_string(err));
  EXPECT_LE(err, bound) << dtype_name(t);
  EXPECT_GT(err, 0.0) << dtype_name(t);

  // Scale invariance: the same row at typical weight magnitudes (0.01) and at 1e3 quantizes
  // equally well, since the fp16 block scales have constant relative precision there. (Far
  // smaller rows lose precision: at 1e-3, Q6_K's super-block scale becomes an fp16 subnormal.)
  for (float s : {0.01f, 1e3f}) {
    std::vector<float> xs(x);
    for (auto& v : xs) v *= s;
    EXPECT_NEAR(relative_rmse(xs, round_trip(t, xs)), err, 0.02 * err) << dtype_name(t) << " x" << s;
  }
}

INSTANTIATE_TEST_SUITE_P(Types, KQuantRoundTrip, ::testing::ValuesIn(kBounds),
                         [](const auto& info) { return std::string(dtype_name(info.param.type)); });

TEST(KQuantRoundTrip, MoreBitsMeanLessError) {
  const auto x = random_row(kQK_K * 32, 12);
  const DType order[] = {DType::Q2_K, DType::Q3_K, DType::Q4_0, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q8_0};
  double prev = 1e9;
  for (DType t : order) {
    const double e = relative_rmse(x, round_trip(t, x));
    EXPECT_LT(e, prev) << dtype_name(t);
    prev = e;
  }
  // The K-quants' fitted scales beat the legacy max-based grid at equal or fewer bits.
  EXPECT_LT(relative_rmse(x, round_trip(DType::Q4_K, x)), relative_rmse(x, round_trip(DType::Q4_1, x)));
  EXPECT_LT(relative_rmse(x, round_trip(DType::Q5_K, x)), relative_rmse(x, round_trip(DType::Q5_1, x)));
}

TEST(KQuantRoundTrip, ZerosStayZeroAndExtremesStayFinite) {
  std::vector<float> extremes(kQK_K * 2);
  std::mt19937 rng(17);
  std::normal_distribution<float> nd;
  for (size_t i = 0; i < extremes.size(); ++i) {
    // A block far below fp16's range (its scales flush to zero) and one whose largest elements
    // approach fp16's maximum (65504), where the Q5_1 min and the K-quant mins must not overflow.
    const float mag = i < kQK_K ? 1e-30f : 1e4f;
    extremes[i] = mag * nd(rng);
  }
  for (DType t : {DType::Q5_0, DType::Q5_1, DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K,
                  DType::Q6_K, DType::Q8_K}) {
    const std::vector<float> zeros(kQK_K, 0.0f);
    for (float v : round_trip(t, zeros)) ASSERT_EQ(v, 0.0f) << dtype_name(t);
    const auto y = round_trip(t, extremes);
    for (size_t i = 0; i < y.size(); ++i) {
      ASSERT_TRUE(std::isfinite(y[i])) << dtype_name(t) << " element " << i;
      if (i < kQK_K) {
        ASSERT_LE(std::fabs(y[i]), 1e-20f) << dtype_name(t) << " element " << i;
      }
    }
    std::vector<float> big(extremes.begin() + kQK_K, extremes.end()), ybig(y.begin() + kQK_K, y.end());
    EXPECT_LT(relative_rmse(big, ybig), 0.4) << dtype_name(t);
  }
}

// ---- Q8_K activation quantization ----

TEST(Q8K, QuantizesSymmetricallyWithBlockSums) {
  const int64_t n = kQK_K * 4;
  auto x = random_row(n, 21, 2.0f);
  x[300] = -9.0f;  // the largest magnitude in block 1 is negative: it maps to -127 exactly
  std::vector<BlockQ8_K> b(n / kQK_K);
  reference_ops(DType::Q8_K)->from_float(x.data(), b.data(), n);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    float amax = 0;
    for (int j = 0; j < kQK_K; ++j) amax = std::max(amax, std::fabs(x[i * kQK_K + j]));
    EXPECT_FLOAT_EQ(std::fabs(b[i].d), amax / 127.0f);
    for (int j = 0; j < kQK_K; ++j) {
      ASSERT_LE(std::fabs(b[i].d * b[i].qs[j] - x[i * kQK_K + j]), std::fabs(b[i].d) * 0.5f * 1.0001f);
      ASSERT_GE(b[i].qs[j], -127);
    }
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int j = 0; j < 16; ++j) sum += b[i].qs[16 * g + j];
      ASSERT_EQ(b[i].bsums[g], sum) << "block " << i << " group " << g;
    }
  }
  EXPECT_EQ(b[1].qs[300 - kQK_K], -127);
  EXPECT_GT(b[1].d, 0.0f);
}

// ---- dot products ----

class KQuantDot : public ::testing::TestWithParam<DType> {};

TEST_P(KQuantDot, EqualsDequantizeThenDot) {
  const DType t = GetParam();
  const kernels::TypeOps& o = *reference_ops(t);
  const kernels::TypeOps& act = *reference_ops(o.vec_dot_type);
  const int64_t n = kQK_K * 8;
  for (uint32_t seed = 0; seed < 4; ++seed) {
    auto w = random_row(n, 100 + seed, 0.02f);
    if (seed == 3) {
      for (auto& v : w) v = std::fabs(v);  // exercises the min terms
    }
    const auto a = random_row(n, 200 + seed, 3.0f);
    std::vector<std::byte> wq(row_size(t, n)), aq(row_size(o.vec_dot_type, n));
    o.from_float(w.data(), wq.data(), n);
    act.from_float(a.data(), aq.data(), n);
    std::vector<float> wf(n), af(n);
    o.to_float(wq.data(), wf.data(), n);
    act.to_float(aq.data(), af.data(), n);
    double magnitude = 0;
    for (int64_t i = 0; i < n; ++i) magnitude += std::fabs(static_cast<double>(wf[i]) * af[i]);
    // Q5_1 applies its min through the activation block sum s, which Q8_1 stores as a half
    // float: allow that rounding (2^-11 relative, doubled) on each block's m * s term.
    double offset_err = 0;
    if (t == DType::Q5_1) {
      const auto* wb = reinterpret_cast<const BlockQ5_1*>(wq.data());
      const auto* xb = reinterpret_cast<const BlockQ8_1*>(aq.data());
      for (int64_t b = 0; b < n / kQK; ++b) {
        offset_err += std::fabs(fp16_to_f32(wb[b].m) * fp16_to_f32(xb[b].s)) * std::ldexp(1.0, -10);
      }
    }
    const double expected = dot_f64(wf, af);
    EXPECT_NEAR(o.vec_dot(n, wq.data(), aq.data()), expected, 2e-6 * magnitude + offset_err)
        << dtype_name(t) << " seed " << seed;
    // And close to the float dot product: the activation quantization costs little.
    EXPECT_NEAR(o.vec_dot(n, wq.data(), aq.data()), dot_f64(wf, a), 0.02 * magnitude) << dtype_name(t);
  }
}

TEST_P(KQuantDot, MatmulRowsUsesTheTypesDotProduct) {
  // The dispatched matrix product over a small K-quant matrix equals one reference dot product
  // per (row, token).
  const DType t = GetParam();
  const kernels::TypeOps& o = *reference_ops(t);
  const int64_t n = kQK_K * 2, rows = 5, toks = 3;
  const auto wf = random_row(n * rows, 300, 0.05f);
  const std::vector<std::byte> wq = reference_quantize_rows(t, wf.data(), n, rows);
  const size_t xs = row_size(o.vec_dot_type, n);
  const std::vector<std::byte> xq = quantized_activations(t, n, toks, 400);
  std::vector<float> y(rows * toks, -1.0f);
  kernels::matmul_rows(matrix_view(t, n, rows, wq), xq.data(), xs, y.data(), rows, toks, 0, rows);
  for (int64_t k = 0; k < toks; ++k) {
    for (int64_t r = 0; r < rows; ++r) {
      const float want = o.vec_dot(n, wq.data() + r * row_size(t, n), xq.data() + k * xs);
      EXPECT_NEAR(y[k * rows + r], want, 1e-4f * (1 + std::fabs(want))) << dtype_name(t) << " row " << r;
    }
  }
}

TEST(KQuantBatchOrder, FollowsLlamaCppsPaths) {
  // llama.cpp (x86) sums Q4_K tokens in groups of 4 differently from the n % 4 left over, and
  // Q6_K batches of 8 or more differently from smaller ones; matmul_rows must pick the same.
  EXPECT_EQ(kernels::reference_batch_dot(DType::Q4_K, 10, 7), kernels::reference_batch_dot(DType::Q4_K, 4, 0));
  EXPECT_EQ(kernels::reference_batch_dot(DType::Q4_K, 10, 8), kernels::reference_ops(DType::Q4_K)->vec_dot);
  EXPECT_EQ(kernels::reference_batch_dot(DType::Q4_K, 3, 0), kernels::reference_ops(DType::Q4_K)->vec_dot);
  EXPECT_NE(kernels::reference_batch_dot(DType::Q4_K, 4, 3), kernels::reference_ops(DType::Q4_K)->vec_dot);
  EXPECT_EQ(kernels::reference_batch_dot(DType::Q6_K, 7, 0), kernels::reference_ops(DType::Q6_K)->vec_dot);
  EXPECT_NE(kernels::reference_batch_dot(DType::Q6_K, 8, 0), kernels::reference_ops(DType::Q6_K)->vec_dot);
  EXPECT_EQ(kernels::reference_batch_dot(DType::Q5_0, 8, 0), nullptr);

  for (DType t : {DType::Q4_K, DType::Q6_K}) {
    const kernels::TypeOps& o = *reference_ops(t);
    const int64_t n = kQK_K * 4, toks = 10;
    const auto wf = random_row(n, 301, 0.05f);
    const std::vector<std::byte> wq = reference_quantize_rows(t, wf.data(), n, 1);
    const size_t xs = row_size(o.vec_dot_type, n);
    const std::vector<std::byte> xq = quantized_activations(t, n, toks, 500);
    std::vector<float> y(toks, -1.0f);
    kernels::matmul_rows(matrix_view(t, n, 1, wq), xq.data(), xs, y.data(), 1, toks, 0, 1);
    for (int64_t k = 0; k < toks; ++k) {
      const float want = kernels::reference_batch_dot(t, toks, k)(n, wq.data(), xq.data() + k * xs);
      const float single = o.vec_dot(n, wq.data(), xq.data() + k * xs);
      EXPECT_EQ(y[k], want) << dtype_name(t) << " token " << k;
      EXPECT_NEAR(want, single, 1e-4f * (1 + std::fabs(single))) << dtype_name(t) << " token " << k;  // same sum
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, KQuantDot,
                         ::testing::Values(DType::Q5_0, DType::Q5_1, DType::Q2_K, DType::Q3_K,
                                           DType::Q4_K, DType::Q5_K, DType::Q6_K),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

}  // namespace
}  // namespace edgelm
