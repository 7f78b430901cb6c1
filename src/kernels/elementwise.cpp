// Float32 element-wise operations of the transformer block.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/kernels.hpp"
#include "tensor/fp16.hpp"

namespace edgelm::kernels {

void rmsnorm(const float* x, const float* w, float* out, int64_t n, float eps) {
  double ss = 0;
  // float products summed in double, as llama.cpp does: the result feeds an 8-bit quantizer,
  // where the last bit decides roundings
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i] * x[i]);
  const float scale = 1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(n)) + eps);
  if (w) {
    for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * w[i];
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale;
  }
}

void softmax(float* x, int64_t n) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void rope(float* x, int64_t head_dim, int64_t n_rot, int64_t pos, float freq_base,
          float freq_scale, bool neox) {
  // theta_i = pos * base^(-2i / n_rot), built by repeated multiplication as llama.cpp does, so
  // the angles round the same way.
  const float theta_scale = std::pow(freq_base, -2.0f / static_cast<float>(n_rot));
  float theta = static_cast<float>(pos) * freq_scale;
  for (int64_t i = 0; i < n_rot / 2; ++i) {
    const float c = std::cos(theta), s = std::sin(theta);
    const int64_t a = neox ? i : 2 * i;
    const int64_t b = neox ? i + n_rot / 2 : 2 * i + 1;
    const float x0 = x[a], x1 = x[b];
    // one rounding fewer per element, as llama.cpp's compiled rotation contracts these
    x[a] = std::fma(x0, c, -(x1 * s));
    x[b] = std::fma(x0, s, x1 * c);
    theta *= theta_scale;
  }
  (void)head_dim;  // dims past n_rot pass through unchanged
}

void swiglu(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + exp_poly(-g)) * up[i];
  }
}

const uint16_t* gelu_table() {
  static const std::vector<uint16_t> table = [] {
    std::vector<uint16_t> t(1 << 16);
    constexpr float kA = 0.044715f, kSqrt2OverPi = 0.79788456080286535587989211986876f;
    for (uint32_t i = 0; i < t.size(); ++i) {
      const float x = fp16_to_f32(static_cast<uint16_t>(i));
      const float inner = kSqrt2OverPi * x * (1.0f + kA * x * x);
      t[i] = f32_to_fp16(0.5f * x * (1.0f + std::tanh(inner)));
    }
    return t;
  }();
  return table.data();
}

const float* gelu_table_f32() {
  static const std::vector<float> table = [] {
    const uint16_t* h = gelu_table();
    std::vector<float> t(1 << 16);
    for (size_t i = 0; i < t.size(); ++i) t[i] = fp16_to_f32(h[i]);
    return t;
  }();
  return table.data();
}

void geglu(const float* gate, const float* up, float* out, int64_t n) {
  const uint16_t* table = gelu_table();
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    if (g <= -10.0f)
      out[i] = 0.0f;
    else if (g >= 10.0f)
      out[i] = g * up[i];
    else
      out[i] = fp16_to_f32(table[f32_to_fp16(g)]) * up[i];
  }
}

void layer_norm(const float* x, const float* w, const float* b, float* out, int64_t n, float eps) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += x[i];
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  double var = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float d = x[i] - mean;
    var += static_cast<double>(d * d);
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(var / static_cast<double>(n)) + eps);
  for (int64_t i = 0; i < n; ++i) {
    float y = (x[i] - mean) * scale;
    if (w) y *= w[i];
    if (b) y += b[i];
    out[i] = y;
  }
}

void yarn_angles(int64_t n_rot, int64_t pos, float freq_base, float freq_scale, int orig_ctx, float attn_factor,
                 float* cs, float* sn) {
  const float kPi = 3.14159265358979323846f;
  auto corr_dim = [&](float beta) {
    return static_cast<float>(n_rot) * std::log(static_cast<float>(orig_ctx) / (beta * 2 * kPi)) /
           (2 * std::log(freq_base));
  };
  const float lo = std::max(0.0f, std::floor(corr_dim(32.0f)));
  const float hi = std::min(static_cast<float>(n_rot - 1), std::ceil(corr_dim(1.0f)));
  const float mscale = attn_factor * (1.0f + 0.1f * std::log(1.0f / freq_scale));
  const float theta_scale = std::pow(freq_base, -2.0f / static_cast<float>(n_rot));
  float theta_extrap = static_cast<float>(pos);
  for (int64_t i = 0; i < n_rot / 2; ++i) {
    const float theta_interp = freq_scale * theta_extrap;
    const float y = (static_cast<float>(i) - lo) / std::max(0.001f, hi - lo);
    const float ramp = 1 - std::min(1.0f, std::max(0.0f, y));
    const float theta = theta_interp * (1 - ramp) + theta_extrap * ramp;
    cs[i] = std::cos(theta) * mscale;
    sn[i] = std::sin(theta) * mscale;
    theta_extrap *= theta_scale;
  }
}

void add_inplace(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

}  // namespace edgelm::kernels
