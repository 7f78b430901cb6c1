#include <algorithm>
#include <cmath>

#include "edgelm/error.hpp"
#include "edgelm/train.hpp"

namespace edgelm::train {

namespace {
// Dot product with eight independent partial sums, so the compiler can vectorise it without
// -ffast-math; the summation order is fixed, so results are reproducible.
float dot(const float* a, const float* b, int n) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) s[k] += a[i + k] * b[i + k];
  float r = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (; i < n; ++i) r += a[i] * b[i];
  return r;
}
void axpy(float a, const float* x, float* y, int n) {
  for (int i = 0; i < n; ++i) y[i] += a * x[i];
}
}  // namespace

const char* pooling_name(Pooling p) {
  switch (p) {
    case Pooling::Last: return "last";
    case Pooling::Mean: return "mean";
    case Pooling::Attention: return "attention";
  }
  return "?";
}

Pooling parse_pooling(const std::string& s) {
  if (s == "last") return Pooling::Last;
  if (s == "mean") return Pooling::Mean;
  if (s == "attention") return Pooling::Attention;
  throw Error("unknown pooling '" + s + "'", "use last, mean or attention");
}

ClassifierHead::ClassifierHead(HeadShape shape) : shape_(shape) {
  if (shape_.n_embd <= 0 || shape_.n_class < 2 || shape_.n_hidden < 0 || shape_.n_embd > (1 << 16) ||
      shape_.n_hidden > (1 << 16) || shape_.n_class > (1 << 16))
    throw Error("classifier head shape is invalid (" + std::to_string(shape_.n_embd) + " inputs, " +
                    std::to_string(shape_.n_hidden) + " hidden, " + std::to_string(shape_.n_class) + " classes)",
                "a head needs at least 2 classes and positive sizes");
  const int d = shape_.n_embd, h = shape_.n_hidden, c = shape_.n_class;
  in_mean.assign(d, 0.0f);
  in_scale.assign(d, 1.0f);
  query.name = "cls.pool.query";
  query.decay = false;
  if (shape_.pooling == Pooling::Attention) query.resize(d);
  w1.name = "cls.fc1.weight";
  b1.name = "cls.fc1.bias";
  b1.decay = false;
  if (h > 0) {
    w1.resize(static_cast<size_t>(h) * d);
    b1.resize(h);
  }
  w2.name = "cls.out.weight";
  b2.name = "cls.out.bias";
  b2.decay = false;
  w2.resize(static_cast<size_t>(c) * (h > 0 ? h : d));
  b2.resize(c);
}

std::vector<Param*> ClassifierHead::params() {
  std::vector<Param*> p;
  if (shape_.pooling == Pooling::Attention) p.push_back(&query);
  if (shape_.n_hidden > 0) {
    p.push_back(&w1);
    p.push_back(&b1);
  }
  p.push_back(&w2);
  p.push_back(&b2);
  return p;
}

void ClassifierHead::init(Rng& rng) {
  auto fill = [&](Param& p, int fan_in) {
    const float bound = 1.0f / std::sqrt(static_cast<float>(fan_in));
    for (float& v : p.value) v = (2.0f * rng.uniform() - 1.0f) * bound;
  };
  std::fill(query.value.begin(), query.value.end(), 0.0f);
  if (shape_.n_hidden > 0) {
    fill(w1, shape_.n_embd);
    std::fill(b1.value.begin(), b1.value.end(), 0.0f);
  }
  fill(w2, shape_.n_hidden > 0 ? shape_.n_hidden : shape_.n_embd);
  std::fill(b2.value.begin(), b2.value.end(), 0.0f);
}

void ClassifierHead::pool(const float* tokens, int n_tokens, float* out, Trace* trace) const {
  if (n_tokens <= 0) throw Error("internal: pooling over no tokens");
  const int d = shape_.n_embd;
  const float* mean = in_mean.data();
  const float* scale = in_scale.data();
  switch (shape_.pooling) {
    case Pooling::Last: {
      const float* h = tokens + static_cast<size_t>(n_tokens - 1) * d;
      for (int i = 0; i < d; ++i) out[i] = (h[i] - mean[i]) * scale[i];
      break;
    }
    case Pooling::Mean: {
      std::fill(out, out + d, 0.0f);
      for (int t = 0; t < n_tokens; ++t) axpy(1.0f, tokens + static_cast<size_t>(t) * d, out, d);
      const float inv = 1.0f / static_cast<float>(n_tokens);
      for (int i = 0; i < d; ++i) out[i] = (out[i] * inv - mean[i]) * scale[i];
      break;
    }
    case Pooling::Attention: {
      std::vector<float> local_x, local_a;
      std::vector<float>& x = trace ? trace->x : local_x;
      std::vector<float>& a = trace ? trace->attn : local_a;
      x.resize(static_cast<size_t>(n_tokens) * d);
      a.resize(n_tokens);
      for (int t = 0; t < n_tokens; ++t) {
        const float* h = tokens + static_cast<size_t>(t) * d;
        float* xt = x.data() + static_cast<size_t>(t) * d;
        for (int i = 0; i < d; ++i) xt[i] = (h[i] - mean[i]) * scale[i];
        a[t] = dot(query.value.data(), xt, d);
      }
      softmax(a.data(), a.data(), n_tokens);
      std::fill(out, out + d, 0.0f);
      for (int t = 0; t < n_tokens; ++t) axpy(a[t], x.data() + static_cast<size_t>(t) * d, out, d);
      break;
    }
  }
  if (trace) trace->n_tokens = n_tokens;
}

void ClassifierHead::forward(const float* tokens, int n_tokens, float* logits, Trace* trace, float dropout,
                             Rng* rng) const {
  Trace local;
  Trace* tr = trace ? trace : &local;
  tr->pooled.resize(shape_.n_embd);
  pool(tokens, n_tokens, tr->pooled.data(), tr);
  head_forward(tr->pooled.data(), logits, trace, dropout, rng);
}

void ClassifierHead::forward_pooled(const float* pooled, float* logits, Trace* trace, float dropout, Rng* rng) const {
  if (trace) {
    trace->pooled.assign(pooled, pooled + shape_.n_embd);
    trace->n_tokens = 0;
    pooled = trace->pooled.data();
  }
  head_forward(pooled, logits, trace, dropout, rng);
}

void ClassifierHead::head_forward(const float* in, float* logits, Trace* trace, float dropout, Rng* rng) const {
  const int d = shape_.n_embd, h = shape_.n_hidden, c = shape_.n_class;
  std::vector<float> dropped;
  if (dropout > 0 && rng) {
    std::vector<float> local_mask;
    std::vector<float>& mask = trace ? trace->mask : local_mask;
    mask.resize(d);
    const float keep = 1.0f - dropout;
    for (int i = 0; i < d; ++i) mask[i] = rng->uniform() < keep ? 1.0f / keep : 0.0f;
    dropped.resize(d);
    for (int i = 0; i < d; ++i) dropped[i] = in[i] * mask[i];
    in = dropped.data();
  } else if (trace) {
    trace->mask.clear();
  }
  const float* top = in;
  int n_top = d;
  std::vector<float> local_hidden;
  if (h > 0) {
    std::vector<float>& hid = trace ? trace->hidden : local_hidden;
    hid.resize(h);
    for (int j = 0; j < h; ++j)
      hid[j] = std::max(0.0f, b1.value[j] + dot(w1.value.data() + static_cast<size_t>(j) * d, in, d));
    top = hid.data();
    n_top = h;
  }
  for (int k = 0; k < c; ++k) logits[k] = b2.value[k] + dot(w2.value.data() + static_cast<size_t>(k) * n_top, top, n_top);
}

void ClassifierHead::backward(const Trace& tr, const float* dlogits, float* dtokens) {
  const int d = shape_.n_embd, h = shape_.n_hidden, c = shape_.n_class;
  // Input to the layers as seen in forward (after dropout).
  std::vector<float> in(tr.pooled);
  if (!tr.mask.empty())
    for (int i = 0; i < d; ++i) in[i] *= tr.mask[i];
  const bool need_din = shape_.pooling == Pooling::Attention || dtokens;
  std::vector<float> din(need_din ? d : 0, 0.0f);
  if (h > 0) {
    std::vector<float> dh(h, 0.0f);
    for (int k = 0; k < c; ++k) {
      if (dlogits[k] == 0.0f) continue;
      b2.grad[k] += dlogits[k];
      axpy(dlogits[k], tr.hidden.data(), w2.grad.data() + static_cast<size_t>(k) * h, h);
      axpy(dlogits[k], w2.value.data() + static_cast<size_t>(k) * h, dh.data(), h);
    }
    for (int j = 0; j < h; ++j) {
      if (tr.hidden[j] <= 0.0f || dh[j] == 0.0f) continue;  // ReLU gate
      b1.grad[j] += dh[j];
      axpy(dh[j], in.data(), w1.grad.data() + static_cast<size_t>(j) * d, d);
      if (need_din) axpy(dh[j], w1.value.data() + static_cast<size_t>(j) * d, din.data(), d);
    }
  } else {
    for (int k = 0; k < c; ++k) {
      if (dlogits[k] == 0.0f) continue;
      b2.grad[k] += dlogits[k];
      axpy(dlogits[k], in.data(), w2.grad.data() + static_cast<size_t>(k) * d, d);
      if (need_din) axpy(dlogits[k], w2.value.data() + static_cast<size_t>(k) * d, din.data(), d);
    }
  }
  if (!need_din) return;
  if (!tr.mask.empty())
    for (int i = 0; i < d; ++i) din[i] *= tr.mask[i];
  const int n = tr.n_tokens;
  if (dtokens && n <= 0) throw Error("internal: token gradients need a trace from forward(), not forward_pooled()");
  if (dtokens) std::fill(dtokens, dtokens + static_cast<size_t>(n) * d, 0.0f);
  // Through the standardisation x = (h - mean) * scale: dh = dx * scale.
  std::vector<float> dscaled(d);
  for (int i = 0; i < d; ++i) dscaled[i] = din[i] * in_scale[i];
  switch (shape_.pooling) {
    case Pooling::Last:
      std::copy(dscaled.begin(), dscaled.end(), dtokens + static_cast<size_t>(n - 1) * d);
      return;
    case Pooling::Mean: {
      const float inv = 1.0f / static_cast<float>(n);
      for (int t = 0; t < n; ++t) axpy(inv, dscaled.data(), dtokens + static_cast<size_t>(t) * d, d);
      return;
    }
    case Pooling::Attention: break;
  }
  // Attention pooling: p = sum_t a_t x_t, a = softmax(q . x_t).
  const float gp = dot(din.data(), tr.pooled.data(), d);
  for (int t = 0; t < n; ++t) {
    const float* xt = tr.x.data() + static_cast<size_t>(t) * d;
    const float ds = tr.attn[t] * (dot(din.data(), xt, d) - gp);
    axpy(ds, xt, query.grad.data(), d);
    if (dtokens) {
      // dx_t = a_t dp + ds_t q, then times scale.
      float* dt = dtokens + static_cast<size_t>(t) * d;
      for (int i = 0; i < d; ++i) dt[i] = (tr.attn[t] * din[i] + ds * query.value[i]) * in_scale[i];
    }
  }
}

}  // namespace edgelm::train
