#include "kernels/backward.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/kernels.hpp"

namespace edgelm::kernels {

void rmsnorm_backward(const float* x, const float* w, const float* dy, int64_t n, float eps, float* dx, float* dw) {
  // out_i = x_i r w_i with r = (mean(x^2) + eps)^(-1/2), so with g_i = w_i dy_i:
  // dx_i = r g_i - x_i r^3 (g . x) / n.
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const double r = 1.0 / std::sqrt(ss / static_cast<double>(n) + eps);
  double gx = 0;
  for (int64_t i = 0; i < n; ++i) gx += static_cast<double>(w ? w[i] * dy[i] : dy[i]) * x[i];
  const double c = gx / static_cast<double>(n) * r * r * r;
  for (int64_t i = 0; i < n; ++i) {
    const double g = w ? static_cast<double>(w[i]) * dy[i] : dy[i];
    if (dw) dw[i] += static_cast<float>(static_cast<double>(dy[i]) * x[i] * r);
    dx[i] = static_cast<float>(r * g - x[i] * c);
  }
}

void layer_norm_backward(const float* x, const float* w, const float* dy, int64_t n, float eps, float* dx, float* dw,
                         float* db) {
  // xhat = (x - mean) r, r = (var + eps)^(-1/2); with g = w dy:
  // dx_i = r (g_i - mean(g) - xhat_i mean(g xhat)).
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += x[i];
  const double mean = sum / static_cast<double>(n);
  double var = 0;
  for (int64_t i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
  const double r = 1.0 / std::sqrt(var / static_cast<double>(n) + eps);
  double g_mean = 0, gx_mean = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double g = w ? static_cast<double>(w[i]) * dy[i] : dy[i];
    const double xhat = (x[i] - mean) * r;
    g_mean += g;
    gx_mean += g * xhat;
    if (dw) dw[i] += static_cast<float>(dy[i] * xhat);
    if (db) db[i] += dy[i];
  }
  g_mean /= static_cast<double>(n);
  gx_mean /= static_cast<double>(n);
  for (int64_t i = 0; i < n; ++i) {
    const double g = w ? static_cast<double>(w[i]) * dy[i] : dy[i];
    dx[i] = static_cast<float>(r * (g - g_mean - (x[i] - mean) * r * gx_mean));
  }
}

void rope_backward(float* d, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float* cos, const float* sin,
                   bool neox) {
  // Forward: (a, b) -> (a c - b s, a s + b c). Its transpose: (a, b) -> (a c + b s, -a s + b c).
  for (int64_t h = 0; h < n_heads; ++h) {
    float* x = d + h * head_dim;
    for (int64_t i = 0; i < n_rot / 2; ++i) {
      const int64_t a = neox ? i : 2 * i;
      const int64_t b = neox ? i + n_rot / 2 : 2 * i + 1;
      const float x0 = x[a], x1 = x[b];
      x[a] = x0 * cos[i] + x1 * sin[i];
      x[b] = x1 * cos[i] - x0 * sin[i];
    }
  }
}

void swiglu_backward(const float* gate, const float* up, const float* dy, int64_t n, float* dgate, float* dup) {
  for (int64_t i = 0; i < n; ++i) {
    const double g = gate[i];
    const double sg = 1.0 / (1.0 + std::exp(-g));
    const double silu = g * sg;
    dup[i] = static_cast<float>(dy[i] * silu);
    dgate[i] = static_cast<float>(dy[i] * up[i] * sg * (1.0 + g * (1.0 - sg)));
  }
}

// GELU's tanh form: 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))).
constexpr double kA = 0.044715, kSqrt2OverPi = 0.79788456080286535587989211986876;

void geglu_exact(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double x = gate[i];
    const double gelu = 0.5 * x * (1.0 + std::tanh(kSqrt2OverPi * (x + kA * x * x * x)));
    out[i] = static_cast<float>(gelu * up[i]);
  }
}

void geglu_backward(const float* gate, const float* up, const float* dy, int64_t n, float* dgate, float* dup) {
  // gelu(x) = x/2 (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3);
  // gelu'(x) = (1 + tanh u) / 2 + x/2 (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 x^2).
  for (int64_t i = 0; i < n; ++i) {
    const double x = gate[i];
    const double t = std::tanh(kSqrt2OverPi * (x + kA * x * x * x));
    const double gelu = 0.5 * x * (1.0 + t);
    const double dgelu = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * kSqrt2OverPi * (1.0 + 3.0 * kA * x * x);
    dup[i] = static_cast<float>(dy[i] * gelu);
    dgate[i] = static_cast<float>(dy[i] * up[i] * dgelu);
  }
}

void softcap_backward(const float* y, const float* dy, int64_t n, float cap, float* dx) {
  for (int64_t i = 0; i < n; ++i) {
    const double t = static_cast<double>(y[i]) / cap;  // tanh(x / cap)
    dx[i] = static_cast<float>(dy[i] * (1.0 - t * t));
  }
}

void attention_backward(const float* q, const float* k, size_t k_stride, const float* v, size_t v_stride,
                        const float* p, const float* dout, int64_t n, int64_t head_dim, float scale, float softcap,
                        float* dq, float* dk, float* dv) {
  // dp_j = dout . v_j; ds_j = p_j (dp_j - sum_i p_i dp_i); through the cap and the scale to the
  // raw score z_j = q . k_j; then dq = sum_j dz_j k_j, dk_j += dz_j q, dv_j += p_j dout.
  double pdp = 0;
  for (int64_t j = 0; j < n; ++j) {
    const float* vj = v + static_cast<size_t>(j) * v_stride;
    double dp = 0;
    for (int64_t e = 0; e < head_dim; ++e) dp += static_cast<double>(dout[e]) * vj[e];
    pdp += p[j] * dp;
  }
  std::fill_n(dq, head_dim, 0.0f);
  for (int64_t j = 0; j < n; ++j) {
    const float* kj = k + static_cast<size_t>(j) * k_stride;
    const float* vj = v + static_cast<size_t>(j) * v_stride;
    float* dkj = dk + static_cast<size_t>(j) * k_stride;
    float* dvj = dv + static_cast<size_t>(j) * v_stride;
    double dp = 0;
    for (int64_t e = 0; e < head_dim; ++e) dp += static_cast<double>(dout[e]) * vj[e];
    double dz = p[j] * (dp - pdp) * scale;
    if (softcap > 0) {
      double z = 0;
      for (int64_t e = 0; e < head_dim; ++e) z += static_cast<double>(q[e]) * kj[e];
      const double t = std::tanh(z / softcap);
      dz *= 1.0 - t * t;
    }
    for (int64_t e = 0; e < head_dim; ++e) {
      dq[e] += static_cast<float>(dz * kj[e]);
      dkj[e] += static_cast<float>(dz * q[e]);
      dvj[e] += p[j] * dout[e];
    }
  }
}

namespace {
// s_j = scale * c(q . k_j), c the soft-cap (identity when softcap is 0).
double attention_score(const float* q, const float* kj, int64_t head_dim, float scale, float softcap) {
  double z = 0;
  for (int64_t e = 0; e < head_dim; ++e) z += static_cast<double>(q[e]) * kj[e];
  if (softcap > 0) z = softcap * std::tanh(z / softcap);
  return scale * z;
}
}  // namespace

float attention_head(const float* q, const float* k, size_t k_stride, const float* v, size_t v_stride, int64_t n,
                     int64_t head_dim, float scale, float softcap, float* scores, float* out) {
  double m = -__builtin_huge_val();
  for (int64_t j = 0; j < n; ++j) {
    const double s = attention_score(q, k + static_cast<size_t>(j) * k_stride, head_dim, scale, softcap);
    scores[j] = static_cast<float>(s);
    m = std::max(m, s);
  }
  double sum = 0;
  for (int64_t j = 0; j < n; ++j) sum += std::exp(static_cast<double>(scores[j]) - m);
  const double lse = m + std::log(sum);
  double acc[512];  // head_dim <= 512 (checked by the forward pass)
  std::fill_n(acc, head_dim, 0.0);
  for (int64_t j = 0; j < n; ++j) {
    const double p = std::exp(static_cast<double>(scores[j]) - lse);
    const float* vj = v + static_cast<size_t>(j) * v_stride;
    for (int64_t e = 0; e < head_dim; ++e) acc[e] += p * vj[e];
  }
  for (int64_t e = 0; e < head_dim; ++e) out[e] = static_cast<float>(acc[e]);
  return static_cast<float>(lse);
}

void attention_weights(const float* q, const float* k, size_t k_stride, int64_t n, int64_t head_dim, float scale,
                       float softcap, float lse, float* p) {
  for (int64_t j = 0; j < n; ++j) {
    // the score rounded to float as attention_head kept it, so p sums to 1 as the forward's did
    const float s = static_cast<float>(attention_score(q, k + static_cast<size_t>(j) * k_stride, head_dim, scale, softcap));
    p[j] = static_cast<float>(std::exp(static_cast<double>(s) - lse));
  }
}

namespace {
// Scores of queries [i0, i1) against keys [j_lo, i1) into s (ld floats a row), scaled and
// capped as attention_score, masked entries -inf. Returns nothing; `g` (when not null) gets
// each entry's cap derivative scale * (1 - tanh^2) (scale alone without a cap).
void seq_scores(const SeqAttention& a, int64_t i0, int64_t i1, int64_t j_lo, float* s, size_t ld, float* g) {
  const int64_t rows = i1 - i0, nk = i1 - j_lo;
  gemm({.trans_b = true, .K = a.head_dim, .a = a.q + i0 * a.q_stride, .lda = a.q_stride, .b = a.k + j_lo * a.k_stride,
        .ldb = a.k_stride, .c = s, .ldc = ld, .m0 = 0, .m1 = rows, .n0 = 0, .n1 = nk});
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = i0 + r;
    const int64_t first = a.window > 0 ? std::max<int64_t>(0, i - a.window + 1) : 0;
    float* sr = s + r * ld;
    float* gr = g ? g + r * ld : nullptr;
    for (int64_t j = 0; j < nk; ++j) {
      const int64_t pos = j_lo + j;
      if (pos < first || pos > i) {
        sr[j] = -__builtin_huge_valf();
        if (gr) gr[j] = 0.0f;
        continue;
      }
      double z = sr[j];
      if (a.softcap > 0) {
        const double t = std::tanh(z / a.softcap);
        z = a.softcap * t;
        if (gr) gr[j] = static_cast<float>(a.scale * (1.0 - t * t));
      } else if (gr) {
        gr[j] = a.scale;
      }
      sr[j] = static_cast<float>(a.scale * z);
    }
  }
}

int64_t seq_key_start(const SeqAttention& a, int64_t i0) {
  return a.window > 0 ? std::max<int64_t>(0, i0 - a.window + 1) : 0;
}
}  // namespace

void attention_forward_seq(const SeqAttention& a, float* out, size_t out_stride, float* lse_out,
                           std::vector<float>& scratch) {
  const size_t ld = static_cast<size_t>(a.n);
  scratch.resize(static_cast<size_t>(kSeqAttnRows) * ld);
  float* p = scratch.data();
  for (int64_t i0 = 0; i0 < a.n; i0 += kSeqAttnRows) {
    const int64_t i1 = std::min(a.n, i0 + kSeqAttnRows), j_lo = seq_key_start(a, i0), nk = i1 - j_lo;
    seq_scores(a, i0, i1, j_lo, p, ld, nullptr);
    for (int64_t r = 0; r < i1 - i0; ++r) {
      float* pr = p + r * ld;
      float m = -__builtin_huge_valf();
      for (int64_t j = 0; j < nk; ++j) m = std::max(m, pr[j]);
      double sum = 0;
      for (int64_t j = 0; j < nk; ++j) sum += std::exp(pr[j] - m);
      const float lse = static_cast<float>(m + std::log(sum));
      lse_out[(i0 + r) * a.lse_stride] = lse;
      for (int64_t j = 0; j < nk; ++j) pr[j] = std::exp(pr[j] - lse);
    }
    gemm({.K = nk, .a = p, .lda = ld, .b = a.v + j_lo * a.v_stride, .ldb = a.v_stride, .c = out + i0 * out_stride,
          .ldc = out_stride, .m0 = 0, .m1 = i1 - i0, .n0 = 0, .n1 = a.head_dim});
  }
}

void attention_backward_seq(const SeqAttention& a, const float* dout, size_t dout_stride, float* dq, size_t dq_stride,
                            float* dk, float* dv, std::vector<float>& scratch) {
  // P = exp(S - lse); dP = dO V^T; dS = P (dP - rowsum(P dP)) g; dV += P^T dO; dQ = dS K;
  // dK += dS^T Q, with g the derivative of the capped, scaled score.
  const size_t ld = static_cast<size_t>(a.n), blk = static_cast<size_t>(kSeqAttnRows) * ld;
  scratch.resize(3 * blk);
  float *p = scratch.data(), *dp = p + blk, *g = dp + blk;
  for (int64_t i0 = 0; i0 < a.n; i0 += kSeqAttnRows) {
    const int64_t i1 = std::min(a.n, i0 + kSeqAttnRows), rows = i1 - i0, j_lo = seq_key_start(a, i0), nk = i1 - j_lo;
    seq_scores(a, i0, i1, j_lo, p, ld, g);
    for (int64_t r = 0; r < rows; ++r) {
      const float lse = a.lse[(i0 + r) * a.lse_stride];
      float* pr = p + r * ld;
      for (int64_t j = 0; j < nk; ++j) pr[j] = std::exp(pr[j] - lse);
    }
    gemm({.trans_b = true, .K = a.head_dim, .a = dout + i0 * dout_stride, .lda = dout_stride,
          .b = a.v + j_lo * a.v_stride, .ldb = a.v_stride, .c = dp, .ldc = ld, .m0 = 0, .m1 = rows, .n0 = 0, .n1 = nk});
    gemm({.trans_a = true, .K = rows, .a = p, .lda = ld, .b = dout + i0 * dout_stride, .ldb = dout_stride,
          .c = dv + j_lo * a.v_stride, .ldc = a.v_stride, .accumulate = true, .m0 = 0, .m1 = nk, .n0 = 0,
          .n1 = a.head_dim});
    for (int64_t r = 0; r < rows; ++r) {
      const float* pr = p + r * ld;
      float* dr = dp + r * ld;
      const float* gr = g + r * ld;
      double pdp = 0;
      for (int64_t j = 0; j < nk; ++j) pdp += static_cast<double>(pr[j]) * dr[j];
      for (int64_t j = 0; j < nk; ++j) dr[j] = static_cast<float>(pr[j] * (dr[j] - pdp) * gr[j]);
    }
    gemm({.K = nk, .a = dp, .lda = ld, .b = a.k + j_lo * a.k_stride, .ldb = a.k_stride, .c = dq + i0 * dq_stride,
          .ldc = dq_stride, .m0 = 0, .m1 = rows, .n0 = 0, .n1 = a.head_dim});
    gemm({.trans_a = true, .K = rows, .a = dp, .lda = ld, .b = a.q + i0 * a.q_stride, .ldb = a.q_stride,
          .c = dk + j_lo * a.k_stride, .ldc = a.k_stride, .accumulate = true, .m0 = 0, .m1 = nk, .n0 = 0,
          .n1 = a.head_dim});
  }
}

void matmul_backward_input(const float* dy, size_t dy_stride, const float* w, int64_t n_out, int64_t n_in, int64_t t0,
                           int64_t t1, float* dx, size_t dx_stride, bool accumulate) {
  // dx_t = sum_r dy_t[r] W[r]: A = dy (tokens x n_out), B = W (n_out x n_in).
  gemm({.K = n_out, .a = dy, .lda = dy_stride, .b = w, .ldb = static_cast<size_t>(n_in), .c = dx, .ldc = dx_stride,
        .accumulate = accumulate, .m0 = t0, .m1 = t1, .n0 = 0, .n1 = n_in});
}

void matmul_backward_weight(const float* dy, size_t dy_stride, const float* x, size_t x_stride, int64_t n_tok,
                            int64_t n_in, int64_t r0, int64_t r1, float* dw) {
  // dW[r] += sum_t dy_t[r] x_t: A(r, t) = dy[t][r] (transposed), B = x (tokens x n_in).
  gemm({.trans_a = true, .K = n_tok, .a = dy, .lda = dy_stride, .b = x, .ldb = x_stride, .c = dw,
        .ldc = static_cast<size_t>(n_in), .accumulate = true, .m0 = r0, .m1 = r1, .n0 = 0, .n1 = n_in});
}

void LogSumExp::add(const float* x, int64_t n) {
  float m = max;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, x[i]);
  if (m == -__builtin_huge_valf()) return;  // nothing but -inf so far
  if (m > max) {
    sum = max == -__builtin_huge_valf() ? 0.0 : sum * std::exp(static_cast<double>(max) - m);
    max = m;
  }
  for (int64_t i = 0; i < n; ++i) sum += std::exp(x[i] - max);  // float exp (< 1 ulp), summed in double
}

float LogSumExp::value() const { return static_cast<float>(max + std::log(sum)); }

void xent_backward_chunk(const float* logits, int64_t n, float logsumexp, int64_t target, float scale,
                         float* dlogits) {
  for (int64_t i = 0; i < n; ++i) {
    float g = std::exp(logits[i] - logsumexp);
    if (i == target) g -= 1.0f;
    dlogits[i] = scale * g;
  }
}

float teacher_top_k(const float* logits, int64_t n, float T, int64_t k, int32_t* ids, float* logp) {
  const float inv = 1.0f / T;
  float mx = -__builtin_huge_valf();
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, logits[i] * inv);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(logits[i] * inv - mx));
  const double lse = mx + std::log(sum);
  if (k >= n) {
    for (int64_t i = 0; i < n; ++i) logp[i] = static_cast<float>(logits[i] * inv - lse);
    return -__builtin_huge_valf();
  }
  std::vector<int32_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = static_cast<int32_t>(i);
  auto before = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
  for (int64_t j = 0; j < k; ++j) {
    ids[j] = order[static_cast<size_t>(j)];
    logp[j] = static_cast<float>(logits[ids[j]] * inv - lse);
  }
  double rest = 0;  // summed directly: 1 - kept would lose a small remainder to rounding
  for (int64_t j = k; j < n; ++j) rest += std::exp(static_cast<double>(logits[order[static_cast<size_t>(j)]] * inv) - lse);
  return rest > 0 ? static_cast<float>(std::log(rest)) : -__builtin_huge_valf();
}

double distill_row(const float* logits, int64_t n, const TeacherRow& t, float T, bool reverse, float weight,
                   float* dlogits, std::vector<uint8_t>& member) {
  // Student q = softmax(s / T); buckets b: each listed word, and the rest R (Q_R = sum of q
  // over unlisted words, P_R = exp(log_rest)). With g_b = log Q_b - log P_b:
  //   forward  L = sum_b P_b (log P_b - log Q_b),  dL/ds_j = (q_j - P_b(j) q_j / Q_b(j)) / T
  //            (= (q_j - p_j) / T for a listed word);
  //   reverse  L = sum_b Q_b g_b,                  dL/ds_j = q_j (g_b(j) - L) / T.
  const double inv = 1.0 / T;
  const bool dense = t.ids == nullptr;
  float mx = -__builtin_huge_valf();
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, logits[i]);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp((static_cast<double>(logits[i]) - mx) * inv);
  const double lse = mx * inv + std::log(sum);
  auto logq = [&](int64_t i) { return static_cast<double>(logits[i]) * inv - lse; };
  // The rest bucket: the unlisted words' student mass.
  double q_rest = 0;
  const bool has_rest = !dense && t.k < n;
  if (has_rest) {
    member.assign(static_cast<size_t>(n), 0);
    for (int64_t j = 0; j < t.k; ++j) member[static_cast<size_t>(t.ids[j])] = 1;
    for (int64_t i = 0; i < n; ++i)
      if (!member[static_cast<size_t>(i)]) q_rest += std::exp(logq(i));
  }
  constexpr double kLogFloor = -87.0;  // about log(FLT_MIN): a bucket's mass never counts as 0 in a log
  const double log_q_rest = std::log(std::max(q_rest, std::exp(kLogFloor)));
  const double log_p_rest = std::max(static_cast<double>(t.log_rest), kLogFloor);
  const double p_rest = std::exp(static_cast<double>(t.log_rest));
  double L = 0;
  if (!reverse) {
    for (int64_t j = 0; j < t.k; ++j) {
      const int64_t i = dense ? j : t.ids[j];
      const double lp = t.logp[j];
      L += std::exp(lp) * (lp - logq(i));
    }
    if (has_rest && p_rest > 0) L += p_rest * (log_p_rest - log_q_rest);
    if (dlogits) {
      const double w = weight * inv;
      const double rest_factor = has_rest ? 1.0 - p_rest / std::exp(log_q_rest) : 1.0;
      if (has_rest)
        for (int64_t i = 0; i < n; ++i)
          if (!member[static_cast<size_t>(i)]) dlogits[i] += static_cast<float>(w * std::exp(logq(i)) * rest_factor);
      for (int64_t j = 0; j < t.k; ++j) {
        const int64_t i = dense ? j : t.ids[j];
        dlogits[i] += static_cast<float>(w * (std::exp(logq(i)) - std::exp(static_cast<double>(t.logp[j]))));
      }
    }
  } else {
    for (int64_t j = 0; j < t.k; ++j) {
      const int64_t i = dense ? j : t.ids[j];
      L += std::exp(logq(i)) * (logq(i) - std::max(static_cast<double>(t.logp[j]), kLogFloor));
    }
    if (has_rest) L += q_rest * (log_q_rest - log_p_rest);
    if (dlogits) {
      const double w = weight * inv;
      if (has_rest)
        for (int64_t i = 0; i < n; ++i)
          if (!member[static_cast<size_t>(i)])
            dlogits[i] += static_cast<float>(w * std::exp(logq(i)) * (log_q_rest - log_p_rest - L));
      for (int64_t j = 0; j < t.k; ++j) {
        const int64_t i = dense ? j : t.ids[j];
        const double g = logq(i) - std::max(static_cast<double>(t.logp[j]), kLogFloor);
        dlogits[i] += static_cast<float>(w * std::exp(logq(i)) * (g - L));
      }
    }
  }
  return L;
}

double distill_xent_row(const float* logits, int64_t n, int64_t target, const TeacherRow& t, float T, bool reverse,
                        float ce_weight, float kd_weight, float scale, float* dlogits, std::vector<uint8_t>& member) {
  LogSumExp lse;
  lse.add(logits, n);
  const double ce = static_cast<double>(lse.value()) - logits[target];
  if (dlogits) xent_backward_chunk(logits, n, lse.value(), target, scale * ce_weight, dlogits);
  const double kl = distill_row(logits, n, t, T, reverse, scale * kd_weight, dlogits, member);
  return ce_weight * ce + kd_weight * kl;
}

}  // namespace edgelm::kernels
