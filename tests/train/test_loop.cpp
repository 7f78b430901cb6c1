// The one training loop (train::TrainingLoop) on a toy problem: gradient accumulation is the
// mean of the batches' gradients, validation cadence and early stopping, a run stopped and
// resumed from its state gives the same weights, and a loss that is not finite is an error.
#include <cmath>
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "edgelm/error.hpp"
#include "edgelm/train.hpp"

namespace edgelm {
namespace {

// One weight w; example i has the loss (w - i)^2 / 2, so the gradient of a batch's mean loss is
// w - mean(i).
struct Toy {
  train::Param w;
  std::vector<std::vector<int>> batches;  // the ids of each batch, in order
  Toy() {
    w.name = "w";
    w.resize(1);
    w.value[0] = 10.0f;
  }
  train::BatchLoss batch(std::span<const int> ids) {
    batches.emplace_back(ids.begin(), ids.end());
    double loss = 0, mean_id = 0;
    for (int i : ids) {
      loss += 0.5 * (w.value[0] - i) * (w.value[0] - i);
      mean_id += i;
    }
    mean_id /= static_cast<double>(ids.size());
    w.grad[0] += static_cast<float>(w.value[0] - mean_id);
    return {.sum = loss, .count = static_cast<double>(ids.size()), .tokens = static_cast<int64_t>(ids.size())};
  }
};

TEST(TrainingLoop, GradientAccumulationAveragesTheBatches) {
  // 8 examples, batches of 2, 4 accumulated: one update per epoch from the mean of all 8.
  // Plain SGD-like check through AdamW's first step: its size is lr whatever the gradient's, so
  // compare the direction over a run against one batch of 8 with the same shuffling.
  Toy a, b;
  train::AdamW oa({&a.w}, {.lr = 0.1f}), ob({&b.w}, {.lr = 0.1f});
  train::TrainingLoop la({&a.w}, {&oa}, {.epochs = 3, .batch = 2, .grad_accum = 4});
  train::TrainingLoop lb({&b.w}, {&ob}, {.epochs = 3, .batch = 8});
  train::Rng ra(3), rb(3);
  int updates_a = 0;
  la.run(8, ra, {.train_batch = [&](std::span<const int> ids) { return a.batch(ids); },
                 .on_update = [&](const train::LoopUpdate& u) {
                   ++updates_a;
                   EXPECT_EQ(u.total_updates, 3);
                 }});
  lb.run(8, rb, {.train_batch = [&](std::span<const int> ids) { return b.batch(ids); }});
  EXPECT_EQ(updates_a, 3);
  EXPECT_EQ(la.state().updates, 3);
  EXPECT_FLOAT_EQ(a.w.value[0], b.w.value[0]);
  EXPECT_EQ(a.batches.size(), 12u);
  EXPECT_EQ(b.batches.size(), 3u);
}

TEST(TrainingLoop, ValidatesEveryNUpdatesAndStopsEarly) {
  Toy t;
  train::AdamW opt({&t.w}, {.lr = 0.1f});
  train::TrainingLoop loop({&t.w}, {&opt}, {.epochs = 10, .batch = 2, .eval_every = 3, .patience = 2});
  const std::vector<double> val = {5, 4, 4.5, 4.2, 3.0};
  size_t n_val = 0;
  std::vector<train::LoopValidation> seen;
  int n_epochs = 0, n_checkpoints = 0;
  train::Rng rng(1);
  const bool stopped = loop.run(6, rng, {.train_batch = [&](std::span<const int> ids) { return t.batch(ids); },
                                         .validate = [&] { return val.at(n_val++); },
                                         .on_validation = [&](const train::LoopValidation& v) { seen.push_back(v); },
                                         .on_epoch = [&](const train::LoopEpoch&) { ++n_epochs; },
                                         .checkpoint = [&] { ++n_checkpoints; }});
  // 3 updates per epoch: a validation at each epoch's end; 5, 4 (best), 4.5, 4.2: two without a
  // lower loss after the best stop the run after epoch 4.
  EXPECT_TRUE(stopped);
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen[1].update, 6);
  EXPECT_EQ(seen[3].epoch, 4);
  EXPECT_TRUE(seen[0].best && seen[1].best);
  EXPECT_FALSE(seen[2].best || seen[3].best);
  EXPECT_EQ(n_epochs, 4);
  EXPECT_EQ(n_checkpoints, 4);  // at each epoch's end (the validations fall on them)
  EXPECT_THROW(train::TrainingLoop({&t.w}, {&opt}, {.batch = 0}), Error);
  train::TrainingLoop needs_val({&t.w}, {&opt}, {.patience = 1});
  EXPECT_THROW(needs_val.run(4, rng, {.train_batch = [&](std::span<const int> ids) { return t.batch(ids); }}), Error);
}

TEST(TrainingLoop, AResumedRunEqualsAStraightOne) {
  auto hooks = [](Toy& t) {
    return train::LoopHooks{.train_batch = [&t](std::span<const int> ids) { return t.batch(ids); }};
  };
  Toy straight;
  train::AdamW os({&straight.w}, {.lr = 0.05f});
  train::Rng rs(9);
  train::TrainingLoop({&straight.w}, {&os}, {.epochs = 3, .batch = 3}).run(7, rs, hooks(straight));

  // Stopped after its second update of epoch 2 (by a checkpoint hook throwing), then resumed
  // from the saved state, weights, optimizer and generator.
  Toy first;
  train::AdamW of({&first.w}, {.lr = 0.05f});
  train::Rng rf(9);
  train::TrainingLoop lf({&first.w}, {&of}, {.epochs = 3, .batch = 3, .eval_every = 5});
  train::LoopState saved;
  std::array<uint64_t, 4> rng_state{};
  auto hf = hooks(first);
  hf.validate = [] { return 1.0; };
  hf.checkpoint = [&] {
    if (lf.state().next_batch == 2) {  // after update 5: epoch 2, batch 2 of 3 (not an epoch's end)
      saved = lf.state();
      rng_state = rf.state();
      throw Error("interrupted");
    }
  };
  EXPECT_THROW(lf.run(7, rf, hf), Error);
  ASSERT_EQ(saved.epoch, 2);
  ASSERT_EQ(saved.next_batch, 2);
  Toy second;
  second.w.value = first.w.value;
  train::AdamW o2({&second.w}, {.lr = 0.05f});
  o2.set_steps(of.steps());
  o2.moment1(0) = of.moment1(0);
  o2.moment2(0) = of.moment2(0);
  train::Rng r2(0);
  r2.set_state(rng_state);
  train::TrainingLoop l2({&second.w}, {&o2}, {.epochs = 3, .batch = 3});
  l2.state() = saved;
  l2.run(7, r2, hooks(second));
  EXPECT_EQ(second.w.value[0], straight.w.value[0]);
  EXPECT_EQ(l2.state().updates, 9);
}

TEST(TrainingLoop, ANonFiniteLossIsAnErrorWithTheHint) {
  Toy t;
  train::AdamW opt({&t.w}, {.lr = 0.1f});
  train::TrainingLoop loop({&t.w}, {&opt}, {.epochs = 2, .first_epoch = 4, .batch = 2, .diverged_hint = "lower --block-lr"});
  train::Rng rng(1);
  try {
    loop.run(4, rng, {.train_batch = [](std::span<const int>) { return train::BatchLoss{.sum = NAN}; }});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("diverged at epoch 4 (the loss is not finite)"), std::string::npos) << e.what();
    EXPECT_EQ(e.hint(), "lower --block-lr");
  }
}

}  // namespace
}  // namespace edgelm
