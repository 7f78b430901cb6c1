// Each backward kernel against central finite differences of a float64 forward written here
// from the op's definition: for L = sum_i dy_i f(x)_i, dL/dx from the kernel must match
// (L(x + h e_j) - L(x - h e_j)) / 2h for every input j.
#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/backward.hpp"
#include "kernels/kernels.hpp"
#include "kernels/simd.hpp"

namespace edgelm::kernels {
namespace {

using Vec = std::vector<double>;

std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.5f, float hi = 1.5f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

// Gradient of L(x) = sum_i dy_i f(x)_i by central differences in double.
Vec numeric_grad(const std::function<Vec(const Vec&)>& f, const std::vector<float>& x, const std::vector<float>& dy,
                 double h = 1e-5) {
  Vec xd(x.begin(), x.end()), g(x.size());
  auto loss = [&](const Vec& at) {
    const Vec y = f(at);
    double l = 0;
    for (size_t i = 0; i < y.size(); ++i) l += dy[i] * y[i];
    return l;
  };
  for (size_t j = 0; j < x.size(); ++j) {
    Vec a = xd, b = xd;
    a[j] += h;
    b[j] -= h;
    g[j] = (loss(a) - loss(b)) / (2 * h);
  }
  return g;
}

// |got - want| within tol of the largest |want| (a relative error on the gradient's scale).
void expect_close(const std::vector<float>& got, const Vec& want, double tol, const char* what) {
  double scale = 1e-12;
  for (double w : want) scale = std::max(scale, std::abs(w));
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], want[i], tol * scale) << what << " element " << i;
}

TEST(Backward, RmsNorm) {
  const int64_t n = 37;
  const float eps = 1e-5f;
  auto x = random_floats(n, 1), w = random_floats(n, 2, 0.5f, 1.5f), dy = random_floats(n, 3);
  std::vector<float> dx(n), dw(n, 0.25f);  // dw accumulates onto what is there
  rmsnorm_backward(x.data(), w.data(), dy.data(), n, eps, dx.data(), dw.data());
  auto fwd = [&](const Vec& xv, const Vec& wv) {
    double ss = 0;
    for (double v : xv) ss += v * v;
    const double r = 1 / std::sqrt(ss / n + eps);
    Vec y(n);
    for (int64_t i = 0; i < n; ++i) y[i] = xv[i] * r * wv[i];
    return y;
  };
  const Vec wd(w.begin(), w.end()), xd(x.begin(), x.end());
  expect_close(dx, numeric_grad([&](const Vec& v) { return fwd(v, wd); }, x, dy), 1e-6, "dx");
  Vec dw_want = numeric_grad([&](const Vec& v) { return fwd(xd, v); }, w, dy);
  for (double& g : dw_want) g += 0.25;
  expect_close(dw, dw_want, 1e-6, "dw");
  // Without a weight: the gradient of the plain normalisation.
  std::vector<float> dx1(n);
  rmsnorm_backward(x.data(), nullptr, dy.data(), n, eps, dx1.data(), nullptr);
  expect_close(dx1, numeric_grad([&](const Vec& v) { return fwd(v, Vec(n, 1.0)); }, x, dy), 1e-6, "dx unweighted");
}

TEST(Backward, LayerNorm) {
  const int64_t n = 29;
  const float eps = 1e-5f;
  auto x = random_floats(n, 4), w = random_floats(n, 5, 0.5f, 1.5f), b = random_floats(n, 6), dy = random_floats(n, 7);
  std::vector<float> dx(n), dw(n, 0.0f), db(n, 0.0f);
  layer_norm_backward(x.data(), w.data(), dy.data(), n, eps, dx.data(), dw.data(), db.data());
  auto fwd = [&](const Vec& xv, const Vec& wv, const Vec& bv) {
    double mean = 0;
    for (double v : xv) mean += v;
    mean /= n;
    double var = 0;
    for (double v : xv) var += (v - mean) * (v - mean);
    const double r = 1 / std::sqrt(var / n + eps);
    Vec y(n);
    for (int64_t i = 0; i < n; ++i) y[i] = (xv[i] - mean) * r * wv[i] + bv[i];
    return y;
  };
  const Vec xd(x.begin(), x.end()), wd(w.begin(), w.end()), bd(b.begin(), b.end());
  expect_close(dx, numeric_grad([&](const Vec& v) { return fwd(v, wd, bd); }, x, dy), 1e-6, "dx");
  expect_close(dw, numeric_grad([&](const Vec& v) { return fwd(xd, v, bd); }, w, dy), 1e-6, "dw");
  expect_close(db, numeric_grad([&](const Vec& v) { return fwd(xd, wd, v); }, b, dy), 1e-6, "db");
}

TEST(Backward, RopeIsTheInverseRotationInBothModes) {
  const int64_t heads = 3, hd = 16;
  for (const int64_t n_rot : {int64_t{16}, int64_t{8}}) {  // full and partial rotary dims
    for (const bool neox : {false, true}) {
      std::vector<float> cs(n_rot / 2), sn(n_rot / 2);
      simd::rope_angles(n_rot, 7, 10000.0f, 1.0f, cs.data(), sn.data());
      auto dy = random_floats(heads * hd, 8);
      auto fwd = [&](const Vec& xv) {  // the forward rotation in double
        Vec y = xv;
        for (int64_t h = 0; h < heads; ++h)
          for (int64_t i = 0; i < n_rot / 2; ++i) {
            const int64_t a = h * hd + (neox ? i : 2 * i), b = h * hd + (neox ? i + n_rot / 2 : 2 * i + 1);
            y[a] = xv[a] * cs[i] - xv[b] * sn[i];
            y[b] = xv[a] * sn[i] + xv[b] * cs[i];
          }
        return y;
      };
      std::vector<float> d = dy;
      rope_backward(d.data(), heads, hd, n_rot, cs.data(), sn.data(), neox);
      expect_close(d, numeric_grad(fwd, random_floats(heads * hd, 9), dy), 1e-7, "rope");
      // And rotating back undoes the simd forward rotation.
      auto x = random_floats(heads * hd, 10), y = x;
      simd::best().flt.rope(y.data(), heads, hd, n_rot, cs.data(), sn.data(), neox);
      rope_backward(y.data(), heads, hd, n_rot, cs.data(), sn.data(), neox);
      for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(y[i], x[i], 1e-6);
    }
  }
}

TEST(Backward, SwiGluAndGeGlu) {
  const int64_t n = 41;
  auto g = random_floats(n, 11, -6.0f, 6.0f), u = random_floats(n, 12), dy = random_floats(n, 13);
  const double kA = 0.044715, kC = std::sqrt(2.0 / M_PI);
  const std::function<double(double)> acts[] = {
      [](double x) { return x / (1 + std::exp(-x)); },
      [&](double x) { return 0.5 * x * (1 + std::tanh(kC * (x + kA * x * x * x))); },
  };
  for (int which = 0; which < 2; ++which) {
    std::vector<float> dg(n), du(n);
    (which == 0 ? swiglu_backward : geglu_backward)(g.data(), u.data(), dy.data(), n, dg.data(), du.data());
    const auto& act = acts[which];
    const Vec gd(g.begin(), g.end()), ud(u.begin(), u.end());
    auto fwd = [&](const Vec& gv, const Vec& uv) {
      Vec y(n);
      for (int64_t i = 0; i < n; ++i) y[i] = act(gv[i]) * uv[i];
      return y;
    };
    expect_close(dg, numeric_grad([&](const Vec& v) { return fwd(v, ud); }, g, dy), 1e-6, which ? "geglu dg" : "swiglu dg");
    expect_close(du, numeric_grad([&](const Vec& v) { return fwd(gd, v); }, u, dy), 1e-6, which ? "geglu du" : "swiglu du");
  }
  // The forward kernel's SiLU is the function differentiated (up to exp_poly's rounding).
  std::vector<float> out(n);
  swiglu(g.data(), u.data(), out.data(), n);
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(out[i], acts[0](g[i]) * u[i], 1e-5);
}

TEST(Backward, SoftCap) {
  const int64_t n = 19;
  const float cap = 3.0f;
  auto x = random_floats(n, 14, -8.0f, 8.0f), dy = random_floats(n, 15);
  std::vector<float> y(n), dx(n);
  for (int64_t i = 0; i < n; ++i) y[i] = cap * std::tanh(x[i] / cap);
  softcap_backward(y.data(), dy.data(), n, cap, dx.data());
  auto fwd = [&](const Vec& xv) {
    Vec o(n);
    for (int64_t i = 0; i < n; ++i) o[i] = cap * std::tanh(xv[i] / cap);
    return o;
  };
  expect_close(dx, numeric_grad(fwd, x, dy), 1e-5, "softcap");
}

// One query head over n keys/values laid out with strides (GQA rows), with and without a cap.
TEST(Backward, Attention) {
  const int64_t n = 11, hd = 8;
  const size_t stride = 3 * hd;  // three KV heads per row; this head is the middle one
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  for (const float cap : {0.0f, 2.0f}) {
    auto q = random_floats(hd, 16), kv_k = random_floats(n * stride, 17), kv_v = random_floats(n * stride, 18);
    auto dout = random_floats(hd, 19);
    const float* k = kv_k.data() + hd;
    const float* v = kv_v.data() + hd;
    // Softmax weights and the forward, in double, over (q, keys of this head, values of this head).
    auto weights = [&](const Vec& qv, const Vec& kh) {
      Vec s(n);
      double mx = -1e300;
      for (int64_t j = 0; j < n; ++j) {
        double z = 0;
        for (int64_t e = 0; e < hd; ++e) z += qv[e] * kh[j * hd + e];
        s[j] = scale * (cap > 0 ? cap * std::tanh(z / cap) : z);
        mx = std::max(mx, s[j]);
      }
      double sum = 0;
      for (double& sj : s) sum += (sj = std::exp(sj - mx));
      for (double& sj : s) sj /= sum;
      return s;
    };
    auto fwd = [&](const Vec& qv, const Vec& kh, const Vec& vh) {
      const Vec w = weights(qv, kh);
      Vec out(hd, 0.0);
      for (int64_t j = 0; j < n; ++j)
        for (int64_t e = 0; e < hd; ++e) out[e] += w[j] * vh[j * hd + e];
      return out;
    };
    std::vector<float> kh(n * hd), vh(n * hd);
    for (int64_t j = 0; j < n; ++j)
      for (int64_t e = 0; e < hd; ++e) {
        kh[j * hd + e] = k[j * stride + e];
        vh[j * hd + e] = v[j * stride + e];
      }
    const Vec qd(q.begin(), q.end()), khd(kh.begin(), kh.end()), vhd(vh.begin(), vh.end());
    // The forward's softmax weights in float, as a training tape would hold them.
    const Vec wd = weights(qd, khd);
    const std::vector<float> p(wd.begin(), wd.end());
    std::vector<float> dq(hd), dk(n * stride, 0.0f), dv(n * stride, 0.0f);
    attention_backward(q.data(), k, stride, v, stride, p.data(), dout.data(), n, hd, scale, cap, dq.data(),
                       dk.data() + hd, dv.data() + hd);
    std::vector<float> dkh(n * hd), dvh(n * hd);
    for (int64_t j = 0; j < n; ++j)
      for (int64_t e = 0; e < hd; ++e) {
        dkh[j * hd + e] = dk[j * stride + hd + e];
        dvh[j * hd + e] = dv[j * stride + hd + e];
        EXPECT_EQ(dk[j * stride + e], 0.0f) << "another head's keys were written";
        EXPECT_EQ(dv[j * stride + 2 * hd + e], 0.0f) << "another head's values were written";
      }
    expect_close(dq, numeric_grad([&](const Vec& x) { return fwd(x, khd, vhd); }, q, dout), 1e-5, "dq");
    expect_close(dkh, numeric_grad([&](const Vec& x) { return fwd(qd, x, vhd); }, kh, dout), 1e-5, "dk");
    expect_close(dvh, numeric_grad([&](const Vec& x) { return fwd(qd, khd, x); }, vh, dout), 1e-5, "dv");
  }
}

// The whole-sequence attention (blocks of queries through gemm) against the per-query
// references attention_head / attention_weights / attention_backward, query by query: with and
// without a soft-cap and a sliding window, over more than one block of queries.
TEST(Backward, SequenceAttentionEqualsThePerQueryReferences) {
  const int64_t n = kSeqAttnRows + 37, hd = 16;
  const size_t qs = 2 * hd, ks = 3 * hd;  // strided rows, as heads of a wider matrix
  const float scale = 0.25f;
  for (const float cap : {0.0f, 3.0f})
    for (const int64_t window : {int64_t{0}, int64_t{20}}) {
      const auto q = random_floats(n * qs, 31), k = random_floats(n * ks, 32), v = random_floats(n * ks, 33);
      const auto dout = random_floats(n * hd, 34);
      std::vector<float> lse(n), out(n * hd), dq(n * hd), dk(n * ks, 0.0f), dv(n * ks, 0.0f), scratch;
      SeqAttention a{.n = n, .head_dim = hd, .scale = scale, .softcap = cap, .window = window, .q = q.data(),
                     .q_stride = qs, .k = k.data(), .k_stride = ks, .v = v.data(), .v_stride = ks, .lse = lse.data()};
      attention_forward_seq(a, out.data(), hd, lse.data(), scratch);
      attention_backward_seq(a, dout.data(), hd, dq.data(), hd, dk.data(), dv.data(), scratch);

      std::vector<float> want_dk(n * ks, 0.0f), want_dv(n * ks, 0.0f), p(n), sc(n), o(hd), dqi(hd);
      for (int64_t i = 0; i < n; ++i) {
        const int64_t first = window > 0 ? std::max<int64_t>(0, i - window + 1) : 0, m = i + 1 - first;
        const float* qi = q.data() + i * qs;
        const float l = attention_head(qi, k.data() + first * ks, ks, v.data() + first * ks, ks, m, hd, scale, cap,
                                       sc.data(), o.data());
        EXPECT_NEAR(lse[i], l, 1e-5f * std::max(1.0f, std::abs(l))) << "lse of query " << i;
        for (int64_t e = 0; e < hd; ++e) EXPECT_NEAR(out[i * hd + e], o[e], 2e-5f) << "query " << i;
        attention_weights(qi, k.data() + first * ks, ks, m, hd, scale, cap, lse[i], p.data());
        attention_backward(qi, k.data() + first * ks, ks, v.data() + first * ks, ks, p.data(), dout.data() + i * hd, m,
                           hd, scale, cap, dqi.data(), want_dk.data() + first * ks, want_dv.data() + first * ks);
        for (int64_t e = 0; e < hd; ++e) EXPECT_NEAR(dq[i * hd + e], dqi[e], 2e-5f) << "dq of query " << i;
      }
      for (size_t j = 0; j < dk.size(); ++j) {
        EXPECT_NEAR(dk[j], want_dk[j], 5e-5f) << "dk element " << j << " cap " << cap << " window " << window;
        EXPECT_NEAR(dv[j], want_dv[j], 5e-5f) << "dv element " << j;
      }
    }
}

TEST(Backward, CrossEntropyInChunksEqualsTheWholeRow) {
  const int64_t V = 1000, chunk = 128;
  auto logits = random_floats(V, 20, -12.0f, 12.0f);
  const int64_t target = 517;
  LogSumExp lse;
  for (int64_t c = 0; c < V; c += chunk) lse.add(logits.data() + c, std::min(chunk, V - c));
  double mx = -1e300, sum = 0;
  for (float x : logits) mx = std::max(mx, static_cast<double>(x));
  for (float x : logits) sum += std::exp(x - mx);
  const double want_lse = mx + std::log(sum);
  EXPECT_NEAR(lse.value(), want_lse, 1e-5 * std::abs(want_lse));
  std::vector<float> d(V);
  for (int64_t c = 0; c < V; c += chunk) {
    const int64_t t = target >= c && target < c + chunk ? target - c : -1;
    xent_backward_chunk(logits.data() + c, std::min(chunk, V - c), lse.value(), t, 0.5f, d.data() + c);
  }
  // The gradient of 0.5 * (logsumexp(x) - x[target]).
  std::vector<float> dy{0.5f};
  auto fwd = [&](const Vec& x) {
    double m = -1e300, s = 0;
    for (double v : x) m = std::max(m, v);
    for (double v : x) s += std::exp(v - m);
    return Vec{m + std::log(s) - x[target]};
  };
  expect_close(d, numeric_grad(fwd, logits, dy), 1e-5, "dlogits");
  // Chunks fed in another order (largest logit last) give the same sum.
  LogSumExp rev;
  for (int64_t c = (V - 1) / chunk * chunk; c >= 0; c -= chunk) rev.add(logits.data() + c, std::min(chunk, V - c));
  EXPECT_NEAR(rev.value(), lse.value(), 1e-5 * std::abs(want_lse));
}

}  // namespace
}  // namespace edgelm::kernels
