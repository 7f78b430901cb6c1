// Training primitives: finite-difference gradient checks for the head (linear, MLP, attention
// pooling), the optimiser and schedules against hand-worked values, and a tiny learnable task.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

#include "edgelm/error.hpp"
#include "edgelm/train.hpp"

namespace edgelm::train {
namespace {

struct Case {
  Pooling pooling;
  int hidden;
};

// Loss of one example as a function of the head's parameters.
double loss_of(const ClassifierHead& h, const std::vector<float>& tokens, int n_tokens, int label) {
  std::vector<float> logits(h.shape().n_class);
  h.forward(tokens.data(), n_tokens, logits.data());
  return softmax_cross_entropy(logits.data(), h.shape().n_class, label, nullptr);
}

class HeadGradient : public ::testing::TestWithParam<Case> {};

TEST_P(HeadGradient, MatchesFiniteDifferences) {
  const Case c = GetParam();
  const int d = 7, n_tokens = 4, n_class = 5;
  ClassifierHead h({d, c.hidden, n_class, c.pooling});
  Rng rng(123);
  h.init(rng);
  // Non-trivial standardisation and a non-zero query so every path is exercised.
  for (int i = 0; i < d; ++i) {
    h.in_mean[i] = 0.3f * rng.normal();
    h.in_scale[i] = 0.5f + rng.uniform();
  }
  for (float& q : h.query.value) q = 0.5f * rng.normal();
  for (float& b : h.b1.value) b = 0.1f * rng.normal();
  std::vector<float> tokens(static_cast<size_t>(n_tokens) * d);
  for (float& x : tokens) x = rng.normal();
  const int label = 2;

  ClassifierHead::Trace tr;
  std::vector<float> logits(n_class), dlogits(n_class);
  h.forward(tokens.data(), n_tokens, logits.data(), &tr);
  softmax_cross_entropy(logits.data(), n_class, label, dlogits.data());
  for (Param* p : h.params()) std::fill(p->grad.begin(), p->grad.end(), 0.0f);
  h.backward(tr, dlogits.data());

  const float eps = 1e-2f;
  int checked = 0;
  for (Param* p : h.params()) {
    for (size_t i = 0; i < p->value.size(); ++i) {
      const float saved = p->value[i];
      p->value[i] = saved + eps;
      const double up = loss_of(h, tokens, n_tokens, label);
      p->value[i] = saved - eps;
      const double down = loss_of(h, tokens, n_tokens, label);
      p->value[i] = saved;
      const double numeric = (up - down) / (2 * eps);
      EXPECT_NEAR(p->grad[i], numeric, 2e-3 + 2e-2 * std::fabs(numeric)) << p->name << "[" << i << "]";
      ++checked;
    }
  }
  EXPECT_GT(checked, n_class * d);
}

INSTANTIATE_TEST_SUITE_P(Heads, HeadGradient,
                         ::testing::Values(Case{Pooling::Mean, 0}, Case{Pooling::Last, 0}, Case{Pooling::Mean, 6},
                                           Case{Pooling::Attention, 0}, Case{Pooling::Attention, 6}),
                         [](const auto& info) {
                           return std::string(pooling_name(info.param.pooling)) +
                                  (info.param.hidden ? "_mlp" : "_linear");
                         });

TEST(HeadGradient, DropoutMaskIsPartOfTheGradient) {
  const int d = 6, n_class = 3;
  ClassifierHead h({d, 4, n_class, Pooling::Attention});
  Rng rng(7);
  h.init(rng);
  for (float& q : h.query.value) q = 0.3f * rng.normal();
  std::vector<float> tokens(3 * d);
  for (float& x : tokens) x = rng.normal();
  ClassifierHead::Trace tr;
  std::vector<float> logits(n_class), dlogits(n_class);
  Rng drop(99);
  h.forward(tokens.data(), 3, logits.data(), &tr, 0.5f, &drop);
  ASSERT_EQ(tr.mask.size(), static_cast<size_t>(d));
  softmax_cross_entropy(logits.data(), n_class, 1, dlogits.data());
  h.backward(tr, dlogits.data());
  // With the same mask replayed, the loss must move as the gradient says.
  for (Param* p : h.params()) {
    for (size_t i = 0; i < p->value.size(); i += 3) {
      auto loss_at = [&](float v) {
        const float saved = p->value[i];
        p->value[i] = v;
        Rng replay(99);
        std::vector<float> lg(n_class);
        h.forward(tokens.data(), 3, lg.data(), nullptr, 0.5f, &replay);
        p->value[i] = saved;
        return softmax_cross_entropy(lg.data(), n_class, 1, nullptr);
      };
      const double numeric = (loss_at(p->value[i] + 1e-2f) - loss_at(p->value[i] - 1e-2f)) / 2e-2;
      EXPECT_NEAR(p->grad[i], numeric, 2e-3 + 2e-2 * std::fabs(numeric)) << p->name << "[" << i << "]";
    }
  }
}

TEST(Loss, CrossEntropyValueAndGradient) {
  const float logits[3] = {1.0f, 2.0f, 0.5f};
  float d[3];
  const float loss = softmax_cross_entropy(logits, 3, 1, d, 0.5f);
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(0.5);
  EXPECT_NEAR(loss, -std::log(std::exp(2.0) / z), 1e-6);
  EXPECT_NEAR(d[0], 0.5 * std::exp(1.0) / z, 1e-6);
  EXPECT_NEAR(d[1], 0.5 * (std::exp(2.0) / z - 1), 1e-6);
  EXPECT_THROW(softmax_cross_entropy(logits, 3, 3, d), Error);
}

TEST(Optim, AdamWFirstStepAndDecoupledDecay) {
  Param w;
  w.resize(2);
  w.value = {1.0f, -2.0f};
  w.grad = {0.5f, 0.0f};
  AdamW opt({&w}, {.lr = 0.1f, .weight_decay = 0.5f});
  opt.step();
  // First step: m_hat = g, v_hat = g^2, so the update is lr * sign(g); decay multiplies by 1 - lr*wd.
  EXPECT_NEAR(w.value[0], 1.0f * (1 - 0.05f) - 0.1f, 1e-6);
  EXPECT_NEAR(w.value[1], -2.0f * (1 - 0.05f), 1e-6);  // zero gradient: only the decay acts
  Param b;
  b.resize(1);
  b.value = {3.0f};
  b.decay = false;
  AdamW opt2({&b}, {.lr = 0.1f, .weight_decay = 0.5f});
  opt2.step();
  EXPECT_EQ(b.value[0], 3.0f);
}

TEST(Optim, ClipGradNorm) {
  Param a, b;
  a.resize(1);
  b.resize(1);
  a.grad = {3.0f};
  b.grad = {4.0f};
  std::vector<Param*> ps{&a, &b};
  EXPECT_NEAR(clip_grad_norm(ps, 1.0f), 5.0f, 1e-6);
  EXPECT_NEAR(a.grad[0], 0.6f, 1e-5);
  EXPECT_NEAR(b.grad[0], 0.8f, 1e-5);
  EXPECT_NEAR(clip_grad_norm(ps, 10.0f), 1.0f, 1e-5);
  EXPECT_NEAR(a.grad[0], 0.6f, 1e-5);  // under the limit: untouched
}

TEST(Optim, ReduceLROnPlateauAndEarlyStopping) {
  Param p;
  p.resize(1);
  AdamW opt({&p}, {.lr = 1.0f});
  ReduceLROnPlateau s(0.5f, 2);
  EXPECT_FALSE(s.step(1.0f, opt));
  EXPECT_FALSE(s.step(0.9f, opt));   // better
  EXPECT_FALSE(s.step(0.95f, opt));  // bad 1
  EXPECT_FALSE(s.step(0.95f, opt));  // bad 2
  EXPECT_TRUE(s.step(0.95f, opt));   // bad 3 > patience
  EXPECT_FLOAT_EQ(opt.lr(), 0.5f);
  EarlyStopping e(2);
  EXPECT_TRUE(e.update(1.0f));
  EXPECT_FALSE(e.update(1.5f));
  EXPECT_FALSE(e.should_stop());
  EXPECT_TRUE(e.update(0.5f));
  EXPECT_FALSE(e.update(0.6f));
  EXPECT_FALSE(e.update(0.7f));
  EXPECT_TRUE(e.should_stop());
}

// PyTorch's ReduceLROnPlateau semantics, case by case (torch/optim/lr_scheduler.py).
TEST(Optim, ReduceLROnPlateauFollowsPyTorch) {
  Param p;
  p.resize(1);
  using M = PlateauOptions::Mode;
  using T = PlateauOptions::ThresholdMode;
  {  // mode max, absolute threshold: only a rise of more than 0.1 is better
    AdamW opt({&p}, {.lr = 1.0f});
    ReduceLROnPlateau s({.mode = M::kMax, .factor = 0.5, .patience = 1, .threshold = 0.1, .threshold_mode = T::kAbs});
    EXPECT_FALSE(s.step(1.0, opt));   // first: better than -inf
    EXPECT_FALSE(s.step(1.05, opt));  // not above 1.1: bad 1
    EXPECT_FALSE(s.step(1.2, opt));   // better
    EXPECT_EQ(s.bad_epochs(), 0);
    EXPECT_FALSE(s.step(1.25, opt));  // bad 1
    EXPECT_TRUE(s.step(1.29, opt));   // bad 2 > patience 1
    EXPECT_EQ(opt.lr(), 0.5f);
    EXPECT_EQ(s.best(), 1.2);
  }
  {  // cooldown: the epochs after a reduction do not count as bad
    AdamW opt({&p}, {.lr = 1.0f});
    ReduceLROnPlateau s({.factor = 0.5, .patience = 0, .cooldown = 2});
    EXPECT_FALSE(s.step(1.0, opt));
    EXPECT_TRUE(s.step(1.0, opt));  // bad 1 > 0
    EXPECT_FALSE(s.step(1.0, opt));  // cooldown 2 -> 1
    EXPECT_FALSE(s.step(1.0, opt));  // cooldown 1 -> 0
    EXPECT_TRUE(s.step(1.0, opt));
    EXPECT_EQ(opt.lr(), 0.25f);
  }
  {  // relative threshold in mode min: 0.9999 * best is needed
    AdamW opt({&p}, {.lr = 1.0f});
    ReduceLROnPlateau s({.factor = 0.5, .patience = 0, .threshold = 1e-4});
    s.step(1.0, opt);
    EXPECT_TRUE(s.step(0.99995, opt));  // not below 0.9999
    EXPECT_FALSE(s.step(0.9998, opt));  // below: better
    EXPECT_EQ(s.best(), 0.9998);
    EXPECT_TRUE(s.step(std::numeric_limits<double>::quiet_NaN(), opt));  // NaN is never better
  }
  {  // min_lr floors the rate; a change of eps or less is not made
    AdamW opt({&p}, {.lr = 1e-3f});
    ReduceLROnPlateau s({.factor = 0.5, .patience = 0, .min_lr = 9.99e-4});
    s.step(1.0, opt);
    EXPECT_TRUE(s.step(1.0, opt));
    EXPECT_FLOAT_EQ(opt.lr(), 9.99e-4f);
    EXPECT_FALSE(s.step(1.0, opt));  // max(lr / 2, min_lr) is lr again (within eps)
    EXPECT_FLOAT_EQ(opt.lr(), 9.99e-4f);
  }
  EXPECT_THROW(ReduceLROnPlateau({.factor = 1.0}), Error);
  EXPECT_THROW(ReduceLROnPlateau({.patience = -1}), Error);
}

TEST(Rng, ReproducibleAndUniform) {
  Rng a(5), b(5), c(6);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.next(), b.next());
  EXPECT_NE(a.next(), c.next());
  std::vector<int> counts(7, 0);
  Rng r(1);
  for (int i = 0; i < 70000; ++i) ++counts[r.below(7)];
  for (int n : counts) EXPECT_NEAR(n, 10000, 500);
  std::vector<int> v{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  r.shuffle(v);
  std::vector<int> sorted = v;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

// A sequence task only attention pooling solves well: the class is carried by one "marker"
// token at a random position among noise tokens; the marker is recognisable by dimension 0.
struct Task {
  std::vector<std::vector<float>> x;
  std::vector<int> y;
};
Task make_task(int n, int d, int n_class, uint64_t seed) {
  Rng fixed(2024), r(seed);  // the same class centres for the train and test draws
  std::vector<std::vector<float>> centres(n_class, std::vector<float>(d));
  for (auto& c : centres)
    for (int k = 1; k < d; ++k) c[k] = 1.5f * fixed.normal();
  Task t;
  for (int i = 0; i < n; ++i) {
    const int label = static_cast<int>(r.below(n_class));
    const int len = 6, marker = static_cast<int>(r.below(len));
    std::vector<float> seq(static_cast<size_t>(len) * d);
    for (int p = 0; p < len; ++p)
      for (int k = 0; k < d; ++k) seq[p * d + k] = p == marker ? (k == 0 ? 3.0f : centres[label][k] + 0.3f * r.normal()) : 2.0f * r.normal() * (k > 0);
    t.x.push_back(seq);
    t.y.push_back(label);
  }
  return t;
}

double train_and_score(Pooling pooling, int hidden, uint64_t seed, std::vector<float>* final_weights = nullptr) {
  const int d = 8, n_class = 4;
  const Task train = make_task(400, d, n_class, 11), test = make_task(200, d, n_class, 12);
  ClassifierHead h({d, hidden, n_class, pooling});
  Rng rng(seed);
  h.init(rng);
  auto params = h.params();
  AdamW opt(params, {.lr = 0.03f, .weight_decay = 0.0f});
  std::vector<int> order(train.x.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::vector<float> logits(n_class), dl(n_class);
  ClassifierHead::Trace tr;
  for (int epoch = 0; epoch < 30; ++epoch) {
    rng.shuffle(order);
    for (size_t b = 0; b < order.size(); b += 16) {
      opt.zero_grad();
      for (size_t k = b; k < std::min(order.size(), b + 16); ++k) {
        h.forward(train.x[order[k]].data(), 6, logits.data(), &tr);
        softmax_cross_entropy(logits.data(), n_class, train.y[order[k]], dl.data(), 1.0f / 16);
        h.backward(tr, dl.data());
      }
      clip_grad_norm(params, 5.0f);
      opt.step();
    }
  }
  int right = 0;
  for (size_t i = 0; i < test.x.size(); ++i) {
    h.forward(test.x[i].data(), 6, logits.data());
    right += std::max_element(logits.begin(), logits.end()) - logits.begin() == test.y[i];
  }
  if (final_weights) {
    final_weights->clear();
    for (auto* p : params) final_weights->insert(final_weights->end(), p->value.begin(), p->value.end());
  }
  return static_cast<double>(right) / test.x.size();
}

TEST(Learning, AttentionPoolingFindsTheMarkerToken) {
  const double attention = train_and_score(Pooling::Attention, 0, 3);
  const double mean = train_and_score(Pooling::Mean, 0, 3);
  std::printf("held-out accuracy: attention %.3f, mean %.3f (chance 0.25)\n", attention, mean);
  EXPECT_GT(attention, 0.95);  // chance is 0.25
  EXPECT_GT(attention, mean);  // the marker is diluted by noise under mean pooling
}

TEST(Learning, MlpHeadConverges) { EXPECT_GT(train_and_score(Pooling::Attention, 16, 4), 0.95); }

TEST(Learning, SameSeedSameWeights) {
  std::vector<float> a, b, c;
  train_and_score(Pooling::Attention, 8, 9, &a);
  train_and_score(Pooling::Attention, 8, 9, &b);
  train_and_score(Pooling::Attention, 8, 10, &c);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)));
  EXPECT_NE(0, std::memcmp(a.data(), c.data(), a.size() * sizeof(float)));
}

TEST(Head, RejectsBadShapeAndPooling) {
  EXPECT_THROW(ClassifierHead({0, 0, 3, Pooling::Mean}), Error);
  EXPECT_THROW(ClassifierHead({4, 0, 1, Pooling::Mean}), Error);
  EXPECT_THROW(parse_pooling("max"), Error);
  EXPECT_EQ(parse_pooling("attention"), Pooling::Attention);
}

}  // namespace
}  // namespace edgelm::train
