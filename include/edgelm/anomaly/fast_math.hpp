// Freestanding float math for the detector core: no libm, no errno, identical results on the
// host and on a Cortex-M4F. Accuracy (~1e-4 relative) is far beyond what anomaly scores need.
#pragma once
#include <cstdint>

namespace edgelm::anomaly::fm {

inline float abs(float x) { return __builtin_fabsf(x); }
inline float sqrt(float x) { return x > 0.0f ? __builtin_sqrtf(x) : 0.0f; }
inline float min(float a, float b) { return a < b ? a : b; }
inline float max(float a, float b) { return a > b ? a : b; }
inline float clamp(float x, float lo, float hi) { return x < lo ? lo : (x > hi ? hi : x); }

// log2(x) for x > 0: exponent from the bits; ln of the mantissa m in [1,2) from the series
// ln m = 2 (s + s^3/3 + s^5/5 + s^7/7 + s^9/9), s = (m-1)/(m+1) <= 1/3.
inline float log2(float x) {
  if (!(x > 1e-30f)) return -100.0f;
  const uint32_t bits = __builtin_bit_cast(uint32_t, x);
  const float e = static_cast<float>(static_cast<int32_t>((bits >> 23) & 0xff) - 127);
  const float m = __builtin_bit_cast(float, (bits & 0x007fffffu) | 0x3f800000u);
  const float s = (m - 1.0f) / (m + 1.0f);
  const float s2 = s * s;
  const float ln_m = 2.0f * s * (1.0f + s2 * (1.0f / 3 + s2 * (1.0f / 5 + s2 * (1.0f / 7 + s2 * (1.0f / 9)))));
  return e + ln_m * 1.44269504f;
}

// 2^x, clamped to the normal float range.
inline float exp2(float x) {
  x = clamp(x, -126.0f, 127.0f);
  const float fl = static_cast<float>(static_cast<int32_t>(x < 0 ? x - 1.0f : x));
  const float f = x - fl;  // [0,1)
  const float p = 1.0f + f * (0.69314718f + f * (0.24022651f + f * (0.05550411f +
                  f * (0.00961813f + f * (0.00133336f + f * 0.00015404f)))));
  const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(fl) + 127) << 23;
  return p * __builtin_bit_cast(float, bits);
}

inline float log10(float x) { return log2(x) * 0.30102999f; }
inline float exp(float x) { return exp2(x * 1.44269504f); }

}  // namespace edgelm::anomaly::fm
