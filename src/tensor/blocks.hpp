// Quantized block layouts, byte for byte as GGUF stores them. Scales are IEEE half floats.
#pragma once
#include <cstdint>

namespace edgelm {

inline constexpr int kQK = 32;  // elements per block of the legacy formats

// x[i] = d * (q[i] - 8); low nibbles hold elements 0..15, high nibbles 16..31.
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[kQK / 2];
};
// x[i] = d * q[i] + m; nibble order as in Q4_0.
struct BlockQ4_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qs[kQK / 2];
};
// x[i] = d * q[i]
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kQK];
};
// Activation format paired with Q4_1 weights: s = d * sum(q) lets the weight offset m be
// applied once per block.
struct BlockQ8_1 {
  uint16_t d;
  uint16_t s;
  int8_t qs[kQK];
};

static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ8_1) == 36);

}  // namespace edgelm
