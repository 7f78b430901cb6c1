// Block layouts of the 5-bit legacy formats and the K-quants, byte for byte as GGUF stores them.
// Half-float fields are IEEE binary16 bit patterns (see fp16.hpp).
//
//   BlockQ4_K b;  ...                                   // 256 weights in 144 bytes
//   auto [sc, m] = q4_k_scale_min(b.scales, 3);         // 6-bit scale and min of sub-block 3
//   float x0 = fp16_to_f32(b.d) * sc * (b.qs[0] & 0xF) - fp16_to_f32(b.dmin) * m;
//
// Element order inside a super-block (shared by quantizers, dequantizers and dot products):
// Q2_K / Q3_K / Q4_K / Q5_K store their low bits in 32-byte groups, element `e` of a group
// (32 * 8 / bits consecutive elements) in byte `e % 32` at bit `bits * (e / 32)`; the high bits
// (Q3_K hmask, Q5_K qh) are bit `e / 32` of byte `e % 32` over the whole super-block. Q6_K
// differs (64-byte low-nibble groups), see BlockQ6_K.
#pragma once
#include <cstdint>
#include <utility>

namespace edgelm {

inline constexpr int kQK_K = 256;      // elements per K-quant super-block
inline constexpr int kKScaleBytes = 12;  // packed 6-bit scales (and mins) of Q3_K / Q4_K / Q5_K

// x[i] = d * (q[i] - 16), q 5-bit: low nibbles as in Q4_0 (elements 0..15 low, 16..31 high),
// fifth bit of element i is bit i of the little-endian 32-bit word qh.
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[16];
};
// x[i] = d * q[i] + m, bit layout as in Q5_0.
struct BlockQ5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[16];
};

// 16 sub-blocks of 16: x = d * (scales[j] & 0xF) * q - dmin * (scales[j] >> 4), q 2-bit.
// qs: two groups of 32 bytes, each holding 128 elements (4 per byte, bit pairs 0-1 .. 6-7).
struct BlockQ2_K {
  uint8_t scales[kQK_K / 16];
  uint8_t qs[kQK_K / 4];
  uint16_t d;
  uint16_t dmin;
};

// 16 sub-blocks of 16: x = d * (s_j - 32) * (q - 4), s_j 6-bit (see q3_k_scale), q 3-bit whose
// two low bits are in qs (laid out as Q2_K) and whose high bit is in hmask. The stored value is
// q itself (0..7), so a set hmask bit means "no -4 offset".
struct BlockQ3_K {
  uint8_t hmask[kQK_K / 8];
  uint8_t qs[kQK_K / 4];
  uint8_t scales[kKScaleBytes];
  uint16_t d;
};

// 8 sub-blocks of 32: x = d * sc_j * q - dmin * m_j, sc_j and m_j 6-bit (see q4_k_scale_min),
// q 4-bit. qs: four groups of 32 bytes, each holding 64 elements (low nibble first 32).
struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qs[kQK_K / 2];
};

// As Q4_K with a fifth bit per element in qh (bit e / 32 of byte e % 32).
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};

// 16 sub-blocks of 16: x = d * scales[j] * (q - 32), q 6-bit. Per half super-block (128
// elements): ql holds 64 bytes (element e < 64 in the low nibble of ql[e], element e >= 64 in
// the high nibble of ql[e - 64]) and qh 32 bytes (bits 2 * (e / 32) of qh[e % 32]).
struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  uint16_t d;
};

// Activation format paired with every K-quant: x = d * q, d a full float; bsums[j] is the sum
// of the 16 quants of sub-block j, which lets the weight's min term be applied per sub-block.
struct BlockQ8_K {
  float d;
  int8_t qs[kQK_K];
  int16_t bsums[kQK_K / 16];
};

static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ2_K) == 84);
static_assert(sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ8_K) == 292);
static_assert(alignof(BlockQ8_K) == 4);

// Q4_K / Q5_K: eight 6-bit scales and eight 6-bit mins in 12 bytes. Bytes 0-3 hold scales 0-3
// and bytes 4-7 mins 0-3 in their low 6 bits; for j = 4..7 the low nibbles of the scale and
// min are in byte j + 4 (scale low, min high), and their top two bits are the top two bits of
// bytes j - 4 (scale) and j (min).
inline std::pair<int, int> q4_k_scale_min(const uint8_t* s, int j) {
  if (j < 4) return {s[j] & 63, s[j + 4] & 63};
  return {(s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4)};
}
inline void q4_k_pack_scale_min(uint8_t* s, int j, int sc, int m) {
  if (j < 4) {
    s[j] = static_cast<uint8_t>((s[j] & 0xC0) | sc);
    s[j + 4] = static_cast<uint8_t>((s[j + 4] & 0xC0) | m);
  } else {
    s[j + 4] = static_cast<uint8_t>((sc & 0x0F) | ((m & 0x0F) << 4));
    s[j - 4] = static_cast<uint8_t>((s[j - 4] & 0x3F) | ((sc >> 4) << 6));
    s[j] = static_cast<uint8_t>((s[j] & 0x3F) | ((m >> 4) << 6));
  }
}

// Q3_K: sixteen 6-bit scales, stored with a bias of 32. The low nibble of scale j is in byte
// j % 8 (j < 8: low nibble, else high nibble); its top two bits are bits 2 * (j / 4) of byte
// 8 + j % 4. Returns the signed scale (-32..31).
inline int q3_k_scale(const uint8_t* s, int j) {
  const int lo = j < 8 ? (s[j] & 0x0F) : (s[j - 8] >> 4);
  const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (lo | (hi << 4)) - 32;
}
// Packs a biased scale (0..63) into an all-zero-initialised 12-byte array.
inline void q3_k_pack_scale(uint8_t* s, int j, int biased) {
  if (j < 8) {
    s[j] = static_cast<uint8_t>(s[j] | (biased & 0x0F));
  } else {
    s[j - 8] = static_cast<uint8_t>(s[j - 8] | ((biased & 0x0F) << 4));
  }
  s[8 + j % 4] = static_cast<uint8_t>(s[8 + j % 4] | ((biased >> 4) << (2 * (j / 4))));
}

}  // namespace edgelm
