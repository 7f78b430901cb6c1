#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <thread>

#include "edgelm/error.hpp"
#include "edgelm/train.hpp"

namespace edgelm::train {

void softmax(const float* in, float* out, int n) {
  float mx = in[0];
  for (int i = 1; i < n; ++i) mx = std::max(mx, in[i]);
  double sum = 0;
  for (int i = 0; i < n; ++i) {
    out[i] = std::exp(in[i] - mx);
    sum += out[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int i = 0; i < n; ++i) out[i] *= inv;
}

float softmax_cross_entropy(const float* logits, int n_class, int label, float* dlogits, float scale) {
  if (label < 0 || label >= n_class) throw Error("internal: label " + std::to_string(label) + " outside 0.." + std::to_string(n_class - 1));
  float mx = logits[0];
  for (int i = 1; i < n_class; ++i) mx = std::max(mx, logits[i]);
  double sum = 0;
  for (int i = 0; i < n_class; ++i) sum += std::exp(static_cast<double>(logits[i] - mx));
  const double log_z = std::log(sum) + mx;
  if (dlogits) {
    for (int i = 0; i < n_class; ++i)
      dlogits[i] = scale * static_cast<float>(std::exp(static_cast<double>(logits[i]) - log_z));
    dlogits[label] -= scale;
  }
  return static_cast<float>(log_z - logits[label]);
}

float clip_grad_norm(std::span<Param* const> params, float max_norm) {
  double sq = 0;
  for (const Param* p : params)
    for (float g : p->grad) sq += static_cast<double>(g) * g;
  const float norm = static_cast<float>(std::sqrt(sq));
  if (max_norm > 0 && norm > max_norm) {
    const float s = max_norm / (norm + 1e-6f);
    for (Param* p : params)
      for (float& g : p->grad) g *= s;
  }
  return norm;
}

AdamW::AdamW(std::vector<Param*> params, AdamWOptions opts) : params_(std::move(params)), opts_(opts) {
  for (const Param* p : params_) {
    m_.emplace_back(p->value.size(), 0.0f);
    v_.emplace_back(p->value.size(), 0.0f);
  }
}

void AdamW::zero_grad() {
  for (Param* p : params_) std::fill(p->grad.begin(), p->grad.end(), 0.0f);
}

void AdamW::step() {
  ++t_;
  const float b1 = opts_.beta1, b2 = opts_.beta2;
  const float bc1 = 1.0f - static_cast<float>(std::pow(static_cast<double>(b1), static_cast<double>(t_)));
  const float bc2 = 1.0f - static_cast<float>(std::pow(static_cast<double>(b2), static_cast<double>(t_)));
  const float step = opts_.lr / bc1;
  const float inv_sqrt_bc2 = 1.0f / std::sqrt(bc2);
  // Elements [i0, i1) of param k.
  auto update = [&](size_t k, size_t i0, size_t i1) {
    Param& p = *params_[k];
    float* m = m_[k].data();
    float* v = v_[k].data();
    const float decay = p.decay ? 1.0f - opts_.lr * opts_.weight_decay : 1.0f;
    const float center = p.decay_center;
    for (size_t i = i0; i < i1; ++i) {
      const float g = p.grad[i];
      m[i] = b1 * m[i] + (1.0f - b1) * g;
      v[i] = b2 * v[i] + (1.0f - b2) * g * g;
      const float denom = std::sqrt(v[i]) * inv_sqrt_bc2 + opts_.eps;
      const float w = center == 0.0f ? p.value[i] * decay : (p.value[i] - center) * decay + center;
      p.value[i] = w - step * m[i] / denom;
    }
  };
  // Pieces of at most kPiece elements, dealt out to the threads in turn.
  constexpr size_t kPiece = size_t{1} << 16;
  std::vector<std::array<size_t, 3>> pieces;
  for (size_t k = 0; k < params_.size(); ++k)
    for (size_t i = 0; i < params_[k]->value.size(); i += kPiece)
      pieces.push_back({k, i, std::min(params_[k]->value.size(), i + kPiece)});
  const int nth = std::max(1, std::min(opts_.n_threads, static_cast<int>(pieces.size())));
  auto work = [&](int ith) {
    for (size_t j = static_cast<size_t>(ith); j < pieces.size(); j += static_cast<size_t>(nth))
      update(pieces[j][0], pieces[j][1], pieces[j][2]);
  };
  std::vector<std::jthread> threads;
  for (int ith = 1; ith < nth; ++ith) threads.emplace_back(work, ith);
  work(0);
}

ReduceLROnPlateau::ReduceLROnPlateau(PlateauOptions o) : o_(o) {
  if (!(o_.factor < 1.0)) throw Error("the plateau factor must be below 1 (got " + std::to_string(o_.factor) + ")");
  if (o_.patience < 0 || o_.cooldown < 0 || o_.min_lr < 0 || o_.eps < 0)
    throw Error("plateau patience, cooldown, min_lr and eps must not be negative");
  best_ = o_.mode == PlateauOptions::Mode::kMin ? std::numeric_limits<double>::infinity()
                                                : -std::numeric_limits<double>::infinity();
}

ReduceLROnPlateau::ReduceLROnPlateau(float factor, int patience, float threshold, float min_lr)
    : ReduceLROnPlateau(PlateauOptions{.factor = factor, .patience = patience, .threshold = threshold,
                                       .min_lr = min_lr}) {}

bool ReduceLROnPlateau::better(double a) const {
  const bool rel = o_.threshold_mode == PlateauOptions::ThresholdMode::kRel;
  if (o_.mode == PlateauOptions::Mode::kMin) return rel ? a < best_ * (1.0 - o_.threshold) : a < best_ - o_.threshold;
  return rel ? a > best_ * (1.0 + o_.threshold) : a > best_ + o_.threshold;
}

bool ReduceLROnPlateau::step(double metric, AdamW& opt) {
  if (better(metric)) {
    best_ = metric;
    bad_ = 0;
  } else {
    ++bad_;
  }
  if (cooldown_left_ > 0) {  // bad epochs in the cooldown do not count
    --cooldown_left_;
    bad_ = 0;
  }
  if (bad_ <= o_.patience) return false;
  cooldown_left_ = o_.cooldown;
  bad_ = 0;
  const double old_lr = opt.lr(), new_lr = std::max(old_lr * o_.factor, o_.min_lr);
  if (old_lr - new_lr <= o_.eps) return false;
  opt.set_lr(static_cast<float>(new_lr));
  return true;
}

bool EarlyStopping::update(float metric) {
  if (!has_best_ || metric < best_) {
    best_ = metric;
    has_best_ = true;
    bad_ = 0;
    return true;
  }
  ++bad_;
  return false;
}

}  // namespace edgelm::train
