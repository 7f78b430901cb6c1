// The epoch loop both train-classifier phases share: epoch numbering and progress calls, the
// best checkpoint (in memory and on disk), early stopping, the schedule, the divergence error.
#include "apps/intent/epoch_loop.hpp"

#include <filesystem>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "edgelm/error.hpp"
#include "edgelm/intent.hpp"
#include "support/scratch_dir.hpp"

namespace edgelm::intent {
namespace {

Head tiny_head() {
  Head h;
  h.labels = {"a", "b"};
  h.net = train::ClassifierHead({4, 0, 2, train::Pooling::Mean});
  train::Rng rng(1);
  h.net.init(rng);
  h.backbone_name = "tiny";
  h.backbone_sha256 = std::string(64, 'a');
  h.oos_threshold = 0.5f;
  return h;
}

// Every example pushes every gradient up by one, so each step moves the weights.
void push_grads(const std::vector<train::Param*>& params, std::span<const int> batch, double& loss_sum) {
  for (size_t k = 0; k < batch.size(); ++k) {
    for (train::Param* p : params)
      for (float& g : p->grad) g += 1.0f;
    loss_sum += 1.0;
  }
}

TEST(EpochLoop, KeepsTheBestEpochStopsEarlyAndReports) {
  Head h = tiny_head();
  const std::string path = test::scratch_path("epoch_loop_head.gguf");
  std::vector<train::Param*> params = h.net.params();
  train::AdamW opt(params, {.lr = 0.1f});
  train::ReduceLROnPlateau sched(0.5f, 1);
  EpochLoop loop(params, {{&opt, &sched}}, /*patience=*/2, h, path);

  const std::vector<double> val = {1.0, 0.5, 0.6, 0.7, 0.8, 0.9};
  size_t n_eval = 0;
  std::vector<float> at_best;
  auto evaluate = [&](double& loss, double& acc) {
    loss = val.at(n_eval++);
    acc = 0.25;
    if (loss == 0.5) at_best = params[0]->value;
  };
  std::vector<std::string> progress;
  TrainCallbacks cb;
  cb.on_progress = [&](const char* stage, size_t done, size_t total) {
    progress.push_back(std::string(stage) + " " + std::to_string(done) + "/" + std::to_string(total));
  };
  int n_on_epoch = 0;
  cb.on_epoch = [&](const EpochStats&) { ++n_on_epoch; };
  TrainReport rep;
  train::Rng rng(7);
  loop.run({.first_epoch = 5, .n_epochs = 6, .batch_size = 3, .clip = 0, .progress_every = 2, .stage = "tune",
            .diverged_hint = "lower --lr"},
           7, rng, [&](std::span<const int> b, float, double& s) { push_grads(params, b, s); }, evaluate, cb, rep);

  // Epochs 7 and 8 are no better than 6: patience 2 stops after epoch 8.
  ASSERT_EQ(rep.epochs.size(), 4u);
  EXPECT_EQ(n_on_epoch, 4);
  for (size_t e = 0; e < 4; ++e) {
    EXPECT_EQ(rep.epochs[e].epoch, static_cast<int>(5 + e));
    EXPECT_DOUBLE_EQ(rep.epochs[e].train_loss, 1.0);
    EXPECT_DOUBLE_EQ(rep.epochs[e].val_loss, val[e]);
    EXPECT_DOUBLE_EQ(rep.epochs[e].val_acc, 0.25);
    EXPECT_FLOAT_EQ(static_cast<float>(rep.epochs[e].lr), 0.1f);
    EXPECT_EQ(rep.epochs[e].best, e < 2);
    EXPECT_EQ(rep.epochs[e].lr_reduced, e == 3);  // lr patience 1: the second epoch without progress
  }
  EXPECT_FLOAT_EQ(opt.lr(), 0.05f);
  EXPECT_EQ(rep.best_epoch, 6);
  EXPECT_DOUBLE_EQ(rep.best_val_loss, 0.5);
  // 7 examples in batches of 3: progress after batches 1 and 3 (every 2nd, and the last).
  std::vector<std::string> want;
  for (int e = 1; e <= 4; ++e)
    for (const char* d : {" 1/3", " 3/3"}) want.push_back("tune " + std::to_string(e) + "/6" + d);
  EXPECT_EQ(progress, want);

  // The weights moved after epoch 6; restore_best brings back epoch 6's, which are also on disk.
  ASSERT_FALSE(at_best.empty());
  EXPECT_NE(params[0]->value, at_best);
  loop.restore_best();
  EXPECT_EQ(params[0]->value, at_best);
  Head saved = load_head(path);
  EXPECT_EQ(saved.oos_threshold, 0.0f);
  EXPECT_EQ(saved.net.params()[0]->value, at_best);
}

TEST(EpochLoop, StartFromIsTheCheckpointToBeat) {
  Head h = tiny_head();
  std::vector<train::Param*> params = h.net.params();
  const std::vector<float> start = params[0]->value;
  train::AdamW opt(params, {.lr = 0.1f});
  train::ReduceLROnPlateau sched;
  EpochLoop loop(params, {{&opt, &sched}}, /*patience=*/0, h, test::scratch_path("never_written.gguf"));
  loop.start_from(0.4);
  TrainReport rep;
  train::Rng rng(7);
  loop.run({.first_epoch = 1, .n_epochs = 3, .batch_size = 4, .progress_every = 1, .stage = "tune",
            .diverged_hint = "lower --lr"},
           4, rng, [&](std::span<const int> b, float, double& s) { push_grads(params, b, s); },
           [](double& loss, double& acc) { loss = 0.5, acc = 0; }, {}, rep);
  ASSERT_EQ(rep.epochs.size(), 3u);  // patience 0: never stops early
  for (const EpochStats& st : rep.epochs) EXPECT_FALSE(st.best);
  EXPECT_NE(params[0]->value, start);
  loop.restore_best();
  EXPECT_EQ(params[0]->value, start);
  EXPECT_FALSE(std::filesystem::exists(test::scratch_path("never_written.gguf")));
}

TEST(EpochLoop, NonFiniteLossIsAnErrorWithThePhasesHint) {
  Head h = tiny_head();
  std::vector<train::Param*> params = h.net.params();
  train::AdamW opt(params, {.lr = 0.1f});
  train::ReduceLROnPlateau sched;
  EpochLoop loop(params, {{&opt, &sched}}, 2, h, test::scratch_path("diverged.gguf"));
  TrainReport rep;
  train::Rng rng(7);
  try {
    loop.run({.first_epoch = 3, .n_epochs = 2, .batch_size = 2, .progress_every = 1, .stage = "tune",
              .diverged_hint = "lower --block-lr"},
             2, rng, [&](std::span<const int> b, float, double& s) { push_grads(params, b, s); },
             [](double& loss, double& acc) { loss = std::numeric_limits<double>::quiet_NaN(), acc = 0; }, {}, rep);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("diverged at epoch 3"), std::string::npos) << e.what();
    EXPECT_EQ(e.hint(), "lower --block-lr");
  }
}

}  // namespace
}  // namespace edgelm::intent
